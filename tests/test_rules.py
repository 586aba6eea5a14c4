"""The rules of docs/rules.md, rule by rule, through the service layer."""

import pytest

from chatcrm import actions, listing, service
from chatcrm.errors import NotFound, Refused
from tests.helpers import chats, close_, complete_, deal, ingest, msg
from chatcrm.store import queries
from tests.helpers import said


def t(minute: int, hour: int = 9) -> str:
    return f"2026-11-24T{hour:02d}:{minute:02d}:00Z"


NOW = "2026-11-24T12:00:00Z"


# --------------------------------------------------------------------- R1


def test_R1_a_client_message_opens_an_unread_session_and_an_active_activity(store):
    ingest(store, [msg("tg:1", t(15))])
    d = deal(store, "tg:1")
    [chat] = chats(store, "tg:1")
    assert d["created_at"] == t(15)
    assert chat["opened_at"] == t(15) and chat["closed_at"] is None
    assert chat["activity_created_at"] == t(15) and chat["completed_at"] is None
    assert d["status"] == "unread"
    assert d["waiting_since"] == t(15)


def test_R1_a_session_the_employee_opened_starts_read(store):
    ingest(store, [msg("tg:1", t(15), "agent", "Your order shipped")])
    d = deal(store, "tg:1")
    [chat] = chats(store, "tg:1")
    assert chat["opened_by"] == "agent"
    assert d["status"] == "green"
    assert d["waiting_since"] is None


def test_R1_every_chat_key_has_its_own_deal_unless_events_name_one(store):
    ingest(store, [msg("tg:1", t(1)), msg("wa:2", t(2)), msg("web:3", t(3), deal="D-7"), msg("tg:4", t(4), deal="D-7")])
    assert deal(store, "tg:1")["deal_key"] == "tg:1"
    assert deal(store, "wa:2")["deal_key"] == "wa:2"
    shared = deal(store, "D-7")
    assert [c["chat_key"] for c in queries.deal_chats(store, shared["deal_id"])] == ["web:3", "tg:4"]
    assert shared["created_at"] == t(3)


# --------------------------------------------------------------------- R2


def test_R2_unread_until_an_agent_message_follows_and_waiting_since_is_the_first_unanswered(store):
    ingest(store, [msg("tg:1", t(1)), msg("tg:1", t(2)), msg("tg:1", t(3))])
    assert deal(store, "tg:1")["waiting_since"] == t(1)


def test_R2_a_client_message_at_the_same_instant_as_an_agent_message_counts_as_answered(store):
    ingest(store, [msg("tg:1", t(1)), msg("tg:1", t(5), "agent"), msg("tg:1", t(5), "client", "ok")])
    assert deal(store, "tg:1")["status"] == "green"


def test_R2_a_deals_waiting_since_is_the_earliest_of_its_unread_sessions(store):
    ingest(store, [msg("tg:1", t(30), deal="D"), msg("wa:1", t(10), deal="D"), msg("web:1", t(20), deal="D")])
    d = deal(store, "D")
    assert d["status"] == "unread"
    assert d["waiting_since"] == t(10)
    assert d["open_chats"] == 3


# --------------------------------------------------------------------- R3


def test_R3_a_reply_makes_the_session_read_and_the_deal_keeps_a_green_counter(store):
    ingest(store, [msg("tg:1", t(15))])
    actions.reply(store, "tg:1", "Hola", now=t(20), author="Luis")
    d = deal(store, "tg:1")
    assert d["status"] == "green"
    assert d["waiting_since"] is None
    assert d["active_activities"] == 1


def test_R3_an_imported_agent_message_also_makes_it_read(store):
    ingest(store, [msg("tg:1", t(15)), msg("tg:1", t(16), "agent")])
    assert deal(store, "tg:1")["status"] == "green"


def test_R3_reply_needs_an_open_chat(store):
    ingest(store, [msg("tg:1", t(15)), close_("tg:1", t(16))])
    with pytest.raises(Refused, match="no open chat"):
        actions.reply(store, "tg:1", "Hola", now=t(20), author="Luis")


# --------------------------------------------------------------------- R4


def test_R4_the_client_writes_again_and_the_deal_is_unread_again(store):
    ingest(store, [msg("tg:1", t(15))])
    actions.reply(store, "tg:1", "Hola", now=t(20), author="Luis")
    ingest(store, [msg("tg:1", t(25), text="¿Y en talla L?")])
    d = deal(store, "tg:1")
    assert d["status"] == "unread"
    assert d["waiting_since"] == t(25)
    assert len(chats(store, "tg:1")) == 1


# --------------------------------------------------------------------- R5


def test_R5_close_sets_closed_at_and_the_activity_stays_active(store):
    ingest(store, [msg("tg:1", t(15)), msg("tg:1", t(16), "agent")])
    outcome = actions.close(store, "tg:1", now=t(40))
    [chat] = chats(store, "tg:1")
    assert outcome.changed
    assert chat["closed_at"] == t(40)
    assert chat["completed_at"] is None
    assert deal(store, "tg:1")["status"] == "green"


def test_R5_a_message_at_the_instant_of_the_close_belongs_to_the_session(store):
    ingest(store, [msg("tg:1", t(15)), msg("tg:1", t(16), "agent"), close_("tg:1", t(40)), msg("tg:1", t(40), text="bye")])
    [chat] = chats(store, "tg:1")
    assert chat["messages"] == 3
    assert chat["closed_at"] == t(40)


def test_R5_a_closed_session_is_never_unread(store):
    ingest(store, [msg("tg:1", t(15)), close_("tg:1", t(40))])
    d = deal(store, "tg:1")
    assert d["status"] == "green"
    assert d["waiting_since"] is None


def test_R5_close_refuses_while_the_client_waits_unless_forced(store):
    ingest(store, [msg("tg:1", t(15))])
    with pytest.raises(Refused, match="waiting since"):
        actions.close(store, "tg:1", now=t(40))
    assert chats(store, "tg:1")[0]["closed_at"] is None
    actions.close(store, "tg:1", now=t(40), force=True)
    assert chats(store, "tg:1")[0]["closed_at"] == t(40)


def test_R5_an_imported_close_is_a_fact_and_always_recorded(store):
    report = ingest(store, [msg("tg:1", t(15)), close_("tg:1", t(40))])
    assert report.events_added == 1
    assert chats(store, "tg:1")[0]["closed_at"] == t(40)


def test_R5_a_close_with_no_open_session_changes_nothing(store):
    ingest(store, [close_("tg:1", t(10)), msg("tg:1", t(15)), msg("tg:1", t(16), "agent"), close_("tg:1", t(20)), close_("tg:1", t(30))])
    [chat] = chats(store, "tg:1")
    assert chat["opened_at"] == t(15) and chat["closed_at"] == t(20)
    outcome = actions.close(store, "tg:1", now=t(50))
    assert not outcome.changed and "nothing to close" in said(outcome)


# --------------------------------------------------------------------- R6


def test_R6_a_message_after_close_opens_a_new_session_and_activity_on_the_same_deal(store):
    ingest(store, [msg("tg:1", t(15)), msg("tg:1", t(16), "agent"), close_("tg:1", t(40)), complete_("tg:1", t(41))])
    assert deal(store, "tg:1")["status"] == "grey"
    ingest(store, [msg("tg:1", t(5, 10), text="Hola otra vez")])
    d = deal(store, "tg:1")
    first, second = chats(store, "tg:1")
    assert first["closed_at"] == t(40) and first["completed_at"] == t(41)
    assert second["opened_at"] == t(5, 10) and second["closed_at"] is None and second["completed_at"] is None
    assert second["activity_id"] != first["activity_id"]
    assert d["status"] == "unread" and d["waiting_since"] == t(5, 10)


# --------------------------------------------------------------------- R7


def test_R7_complete_sets_completed_at_and_the_deal_turns_grey(store):
    ingest(store, [msg("tg:1", t(15)), msg("tg:1", t(16), "agent"), close_("tg:1", t(40))])
    actions.complete(store, "tg:1", now=t(41))
    [chat] = chats(store, "tg:1")
    assert chat["completed_at"] == t(41)
    assert deal(store, "tg:1")["status"] == "grey"


def test_R7_completing_an_open_session_closes_it_at_the_same_moment(store):
    ingest(store, [msg("tg:1", t(15)), msg("tg:1", t(16), "agent")])
    outcome = actions.complete(store, "tg:1", now=t(30))
    [chat] = chats(store, "tg:1")
    assert chat["closed_at"] == t(30) and chat["completed_at"] == t(30)
    assert "closed its chat" in said(outcome)


def test_R7_complete_refuses_while_the_client_waits_unless_forced(store):
    ingest(store, [msg("tg:1", t(15))])
    with pytest.raises(Refused, match="waiting since"):
        actions.complete(store, "tg:1", now=t(30))
    assert chats(store, "tg:1")[0]["completed_at"] is None
    actions.complete(store, "tg:1", now=t(30), force=True)
    assert deal(store, "tg:1")["status"] == "grey"


def test_R7_close_with_complete_does_both_in_one_step(store):
    ingest(store, [msg("tg:1", t(15)), msg("tg:1", t(16), "agent")])
    actions.close(store, "tg:1", now=t(30), complete=True)
    [chat] = chats(store, "tg:1")
    assert (chat["closed_at"], chat["completed_at"]) == (t(30), t(30))


def test_R7_an_imported_complete_completes_the_latest_session_opened_at_or_before_it(store):
    ingest(
        store,
        [
            msg("tg:1", t(1)), msg("tg:1", t(2), "agent"), close_("tg:1", t(3)),
            msg("tg:1", t(10)), msg("tg:1", t(11), "agent"), close_("tg:1", t(12)),
            complete_("tg:1", t(5)),
        ],
    )
    first, second = chats(store, "tg:1")
    assert first["completed_at"] == t(5)
    assert second["completed_at"] is None


def test_R7_completing_twice_or_closing_a_closed_chat_changes_nothing_and_says_so(store):
    ingest(store, [msg("tg:1", t(15)), msg("tg:1", t(16), "agent")])
    actions.complete(store, "tg:1", now=t(30))
    [chat] = chats(store, "tg:1")
    again = actions.complete(store, "tg:1", now=t(35), activity=str(chat["activity_id"]))
    assert not again.changed and "already completed" in said(again)
    closed = actions.close(store, "tg:1", now=t(36), chat=str(chat["chat_id"]))
    assert not closed.changed and "already closed" in said(closed)
    assert chats(store, "tg:1")[0]["completed_at"] == t(30)


def test_R7_complete_names_an_older_activity_without_touching_the_open_session(store):
    ingest(store, [msg("tg:1", t(1)), msg("tg:1", t(2), "agent"), close_("tg:1", t(3)), msg("tg:1", t(10))])
    first, second = chats(store, "tg:1")
    with pytest.raises(Refused, match="2 active activities"):
        actions.complete(store, "tg:1", now=t(20))
    actions.complete(store, "tg:1", now=t(20), activity=str(first["activity_id"]))
    first, second = chats(store, "tg:1")
    assert first["completed_at"] == t(20)
    assert second["closed_at"] is None and second["completed_at"] is None
    assert deal(store, "tg:1")["status"] == "unread"


def test_R7_an_unknown_activity_is_not_found(store):
    ingest(store, [msg("tg:1", t(1))])
    with pytest.raises(NotFound):
        actions.complete(store, "tg:1", now=t(20), activity="999")


# --------------------------------------------------------------------- R8


def test_R8_green_while_an_activity_is_active_grey_when_none_unread_is_green_too(store):
    ingest(store, [msg("a", t(1)), msg("b", t(1)), msg("b", t(2), "agent"), msg("c", t(1)), msg("c", t(2), "agent"), complete_("c", t(3))])
    a, b, c = deal(store, "a"), deal(store, "b"), deal(store, "c")
    assert (a["status"], a["active_activities"]) == ("unread", 1)
    assert (b["status"], b["active_activities"]) == ("green", 1)
    assert (c["status"], c["active_activities"]) == ("grey", 0)


# --------------------------------------------------------------------- R9


def test_R9_unread_longest_waiting_first_then_green_oldest_activity_first_then_grey_most_recent_first(store):
    ingest(
        store,
        [
            # unread, waiting since 9:20 and 9:10
            msg("u1", t(20)),
            msg("u2", t(5)), msg("u2", t(6), "agent"), msg("u2", t(10)),
            # green, oldest active activity 9:02 and 9:01
            msg("g1", t(2)), msg("g1", t(3), "agent"),
            msg("g2", t(1)), msg("g2", t(4), "agent"), close_("g2", t(50)),
            # grey, last event 9:30 and 9:40
            msg("x1", t(0)), msg("x1", t(1), "agent"), complete_("x1", t(30)),
            msg("x2", t(0)), msg("x2", t(1), "agent"), complete_("x2", t(40)),
        ],
    )
    q = listing.queue(store, now=NOW)
    assert [r["deal_key"] for r in q.rows] == ["u2", "u1", "g2", "g1", "x2", "x1"]
    assert q.counts == {"unread": 2, "due": 0, "green": 2, "pending": 0, "grey": 2}
    assert [r["waiting_seconds"] for r in q.rows[:2]] == [2 * 3600 + 50 * 60, 2 * 3600 + 40 * 60]


def test_R9_ties_go_to_the_lower_deal_id(store):
    ingest(store, [msg("b", t(5)), msg("a", t(5)), msg("c", t(5))])
    rows = listing.queue(store, now=NOW).rows
    assert [r["deal_id"] for r in rows] == sorted(r["deal_id"] for r in rows)


def test_R9_status_and_limit_filter_but_the_summary_counts_every_group(store):
    ingest(store, [msg("u1", t(1)), msg("u2", t(2)), msg("g", t(3)), msg("g", t(4), "agent")])
    q = listing.queue(store, now=NOW, status="unread", limit=1)
    assert [r["deal_key"] for r in q.rows] == ["u1"]
    assert q.counts == {"unread": 2, "due": 0, "green": 1, "pending": 0, "grey": 0}


# --------------------------------------------------------------------- R10


def test_R10_the_timeline_shows_the_cards_history_in_time_order(store):
    ingest(
        store,
        [
            msg("tg:1", t(15), author="Ana", text="¿Talla M?"),
            msg("tg:1", t(20), "agent", author="Luis", text="Sí"),
            close_("tg:1", t(40)),
            complete_("tg:1", t(41)),
            msg("tg:1", t(5, 10), author="Ana", text="Otra pregunta"),
        ],
    )
    card, entries = service.timeline(store, "tg:1")
    first, second = chats(store, "tg:1")
    assert [(e["at"], e["kind"]) for e in entries] == [
        (t(15), "deal_created"),
        (t(15), "chat_opened"),
        (t(15), "activity_created"),
        (t(15), "message"),
        (t(20), "message"),
        (t(40), "chat_closed"),
        (t(41), "activity_completed"),
        (t(5, 10), "chat_opened"),
        (t(5, 10), "activity_created"),
        (t(5, 10), "message"),
    ]
    # each activity row shows its state at that moment: created Unread, completed white
    assert entries[2]["state"] == "unread" and entries[2]["activity_id"] == first["activity_id"]
    assert entries[6]["state"] == "completed" and entries[6]["activity_id"] == first["activity_id"]
    assert entries[8]["state"] == "unread" and entries[8]["activity_id"] == second["activity_id"]
    assert entries[7]["unread"] is True and entries[7]["waiting_since"] == t(5, 10)
    assert entries[1]["unread"] is False
    assert (entries[4]["direction"], entries[4]["author"], entries[4]["text"]) == ("agent", "Luis", "Sí")
    assert entries[9]["chat_id"] == second["chat_id"]
    assert card["status"] == "unread"


def test_R10_an_active_activity_of_a_read_session_is_yellow(store):
    ingest(store, [msg("tg:1", t(15)), msg("tg:1", t(16), "agent")])
    card, entries = service.timeline(store, "tg:1")
    [activity] = [e for e in entries if e["kind"] == "activity_created"]
    assert activity["state"] == "unread"  # as it was created: the client opened it
    assert card["status"] == "green"  # today: answered, active (yellow), a green counter
    ingest(store, [msg("tg:2", t(15), "agent")])
    _, entries = service.timeline(store, "tg:2")
    [activity] = [e for e in entries if e["kind"] == "activity_created"]
    assert activity["state"] == "active"  # the employee wrote first: created active
