"""R11 — follow-ups (`chatcrm remind`) and the statuses due and pending, rule by rule."""

import itertools
import json
import sqlite3

import pytest

from chatcrm import actions, listing, render, service, times
from chatcrm.errors import Refused
from chatcrm.rules import statuses
from chatcrm.store import open_store, queries
from tests.helpers import complete_, deal, ingest, msg, run, said, write_jsonl


def t(hour, minute=0, second=0):
    return f"2026-11-24T{hour:02d}:{minute:02d}:{second:02d}Z"


def answered(chat, opened=t(9)):
    """A chat whose client was answered: green, its activity active."""
    return [msg(chat, opened, id=f"{chat}-1"), msg(chat, t(9, 5), "agent", author="Luis", id=f"{chat}-2")]


def remind_record(chat, at, due=None, **extra):
    record = {"type": "remind", "chat": chat, "at": at, **extra}
    if due is None:
        record["clear"] = True
    else:
        record["due"] = due
    return record


def status(store, ref, now):
    return actions.find_deal(store, str(ref), now)["status"]


def test_R11_set_a_follow_up_makes_the_deal_pending_until_its_time(store):
    ingest(store, answered("tg:1"))
    outcome = actions.remind(store, "tg:1", now=t(10), due_at=t(11), note="llamar")
    assert said(outcome) == "deal 1: activity 1 follows up at 2026-11-24T11:00:00Z"
    assert status(store, "tg:1", t(10)) == "pending"
    row = listing.queue(store, now=t(10)).rows[0]
    assert (row["status"], row["due_at"]) == ("pending", t(11))
    assert queries.deal_chats(store, 1)[0]["follow_up_note"] == "llamar"


def test_R11_due_at_the_exact_instant_not_a_second_before(store):
    ingest(store, answered("tg:1"))
    actions.remind(store, "tg:1", now=t(10), due_at=t(11))
    assert status(store, "tg:1", t(10, 59, 59)) == "pending"
    assert status(store, "tg:1", t(11)) == "due"
    assert listing.queue(store, now=t(11), status="due").rows[0]["deal_key"] == "tg:1"
    assert listing.queue(store, now=t(10, 59, 59), status="due").rows == []


def test_R11_a_later_reminder_replaces_the_earlier_one(store):
    ingest(store, answered("tg:1"))
    actions.remind(store, "tg:1", now=t(10), due_at=t(11))
    outcome = actions.remind(store, "tg:1", now=t(10, 30), due_at=t(15))
    assert said(outcome) == "deal 1: activity 1 follows up at 2026-11-24T15:00:00Z (was 2026-11-24T11:00:00Z)"
    assert status(store, "tg:1", t(12)) == "pending"  # 11:00 was replaced
    assert deal(store, "tg:1")["due_at"] == t(15)


def test_R11_clear_removes_the_follow_up_and_a_second_clear_changes_nothing(store):
    ingest(store, answered("tg:1"))
    actions.remind(store, "tg:1", now=t(10), due_at=t(11))
    cleared = actions.remind(store, "tg:1", now=t(10, 30), due_at=None)
    assert said(cleared).startswith("deal 1: cleared the follow-up of activity 1 (was 2026-11-24T11:00:00Z)")
    assert status(store, "tg:1", t(12)) == "green"
    again = actions.remind(store, "tg:1", now=t(10, 40), due_at=None)
    assert (again.changed, again.reason) == (False, "no_follow_up")


def test_R11_a_client_message_over_a_due_follow_up_makes_the_deal_unread_then_the_follow_up_decides_again(store):
    ingest(store, answered("tg:1"))
    actions.remind(store, "tg:1", now=t(10), due_at=t(11))
    assert status(store, "tg:1", t(12)) == "due"
    ingest(store, [msg("tg:1", t(11, 30), id="again")])
    assert status(store, "tg:1", t(12)) == "unread"  # R4 first
    assert listing.queue(store, now=t(12), status="due").rows == []
    actions.reply(store, "tg:1", "Dime", now=t(12), author="Luis")
    assert status(store, "tg:1", t(12)) == "due"  # still set: due again


def test_R11_completing_the_activity_ends_its_follow_up(store):
    ingest(store, answered("tg:1"))
    actions.remind(store, "tg:1", now=t(10), due_at=t(11))
    actions.complete(store, "tg:1", now=t(10, 30))
    assert status(store, "tg:1", t(12)) == "grey"
    assert queries.deal_chats(store, 1)[0]["follow_up_at"] is None
    # A reminder at (or after) the completion comes too late to set anything.
    ingest(store, [remind_record("tg:1", t(10, 30), t(13)), remind_record("tg:1", t(10, 45), t(14))])
    assert (status(store, "tg:1", t(15)), deal(store, "tg:1")["due_at"]) == ("grey", None)
    assert queries.deal_chats(store, 1)[0]["follow_up_at"] is None
    with pytest.raises(Refused, match="no active activity"):
        actions.remind(store, "tg:1", now=t(11), due_at=t(12))


def test_R11_pending_needs_every_active_activity_followed_up(store):
    ingest(store, [{**r, "deal": "D-1"} for r in answered("web:c", t(9, 2)) + answered("web:d", t(9, 3))])
    actions.remind(store, "D-1", now=t(10), due_at=t(12), activity="1")
    assert status(store, "D-1", t(11)) == "green"  # activity 2 has none: still green
    actions.remind(store, "D-1", now=t(10), due_at=t(13), activity="2")
    assert status(store, "D-1", t(11)) == "pending"
    assert deal(store, "D-1")["due_at"] == t(12)  # the earliest
    assert status(store, "D-1", t(12)) == "due"


def test_R11_a_green_deal_with_one_follow_up_come_is_due_even_with_another_activity_unfollowed(store):
    ingest(store, [{**r, "deal": "D-1"} for r in answered("web:c") + answered("web:d", t(9, 3))])
    actions.remind(store, "D-1", now=t(10), due_at=t(11), activity="1")
    assert status(store, "D-1", t(11)) == "due"


def test_R11_queue_order_unread_due_earliest_green_pending_soonest_grey(store):
    records = [msg("u", t(8), id="u")]
    for chat in ("due-late", "due-early", "green", "pend-late", "pend-soon"):
        records += answered(chat)
    records += [*answered("grey"), complete_("grey", t(9, 30))]
    records += [remind_record("due-late", t(9, 10), t(10, 30)), remind_record("due-early", t(9, 10), t(10)),
                remind_record("pend-late", t(9, 10), t(15)), remind_record("pend-soon", t(9, 10), t(13))]
    ingest(store, records)
    queue = listing.queue(store, now=t(11))
    assert [(r["deal_key"], r["status"]) for r in queue.rows] == [
        ("u", "unread"), ("due-early", "due"), ("due-late", "due"), ("green", "green"),
        ("pend-soon", "pending"), ("pend-late", "pending"), ("grey", "grey"),
    ]
    assert queue.counts == {"unread": 1, "due": 2, "green": 1, "pending": 2, "grey": 1}
    limited = listing.queue(store, now=t(11), limit=3)
    assert [r["deal_key"] for r in limited.rows] == ["u", "due-early", "due-late"]
    assert [r["deal_key"] for r in listing.queue(store, now=t(11), status="pending").rows] == ["pend-soon", "pend-late"]


def test_R11_the_order_of_reminder_facts_never_changes_the_result(tmp_path):
    base = answered("tg:1")
    reminders = [remind_record("tg:1", t(10), t(12), note="a"), remind_record("tg:1", t(10, 30), t(14)),
                 remind_record("tg:1", t(10, 30)),  # a clear at the same instant: the set wins
                 remind_record("tg:1", t(11), t(13), note="b"), remind_record("tg:1", t(11), t(11, 30))]
    seen = set()
    for n, order in enumerate(itertools.permutations(reminders)):
        if n % 7:  # a sample of the 120 orders, each in its own database
            continue
        store = open_store(tmp_path / f"{n}.db")
        ingest(store, base)
        for record in order:
            ingest(store, [record])
        row = actions.find_deal(store, "tg:1", t(12))
        seen.add((row["due_at"], row["status"], queries.deal_chats(store, 1)[0]["follow_up_note"]))
        store.close()
    assert seen == {(t(13), "pending", "b")}  # at 11:00 the greatest (due, note) wins


def test_R11_the_command_refuses_when_a_reminder_of_the_same_instant_wins(store):
    ingest(store, answered("tg:1"))
    actions.remind(store, "tg:1", now=t(10), due_at=t(14))
    with pytest.raises(Refused, match="wins at that instant"):
        actions.remind(store, "tg:1", now=t(10), due_at=t(12))
    assert deal(store, "tg:1")["due_at"] == t(14)
    assert store.conn.execute("SELECT count(*) FROM reminders").fetchone()[0] == 1  # nothing written


def test_R11_export_then_ingest_gives_the_same_follow_ups_and_timeline(store, tmp_path):
    ingest(store, [*answered("tg:1"), *answered("wa:2")])
    actions.remind(store, "tg:1", now=t(10), due_at=t(11), note="llamar ☎")
    actions.remind(store, "tg:1", now=t(10, 30), due_at=t(12))
    actions.remind(store, "wa:2", now=t(10), due_at=t(15))
    actions.remind(store, "wa:2", now=t(10, 5), due_at=None)
    records = list(service.export(store))
    clears = [r for r in records if r.get("clear")]
    assert [(r["type"], r["chat"], r["at"]) for r in clears] == [("remind", "wa:2", t(10, 5))]
    copy = open_store(tmp_path / "copy.db")
    ingest(copy, json.loads(json.dumps(records)))
    for now in (t(11, 30), t(13)):
        assert listing.queue(copy, now=now).rows == listing.queue(store, now=now).rows
    assert service.timeline(copy, "tg:1", t(13)) == service.timeline(store, "tg:1", t(13))
    assert list(service.export(copy)) == records


def test_R11_the_timeline_shows_set_changed_cleared_and_due(store):
    ingest(store, answered("tg:1"))
    actions.remind(store, "tg:1", now=t(10), due_at=t(10, 30), note="llamar")
    actions.remind(store, "tg:1", now=t(11), due_at=t(12))
    actions.remind(store, "tg:1", now=t(11, 30), due_at=None)
    actions.remind(store, "tg:1", now=t(11, 40), due_at=t(11, 50))
    _, entries = service.timeline(store, "tg:1", t(13))
    follow = [(e["at"], e["kind"], e["due_at"]) for e in entries if e["kind"].startswith("follow_up")]
    assert follow == [
        (t(10), "follow_up_set", t(10, 30)),
        (t(10, 30), "follow_up_due", t(10, 30)),  # came due before it was changed
        (t(11), "follow_up_changed", t(12)),
        (t(11, 30), "follow_up_cleared", None),  # cleared before 12:00: never due
        (t(11, 40), "follow_up_set", t(11, 50)),
        (t(11, 50), "follow_up_due", t(11, 50)),
    ]
    _, earlier = service.timeline(store, "tg:1", t(11, 45))
    assert [e["kind"] for e in earlier if e["kind"] == "follow_up_due"] == ["follow_up_due"]  # 11:50 not yet


def test_R11_the_queue_view_orders_as_list_does_at_sqlites_clock(store):
    now = times.current()
    soon, later = times.from_epoch(times.epoch(now) - 3600), times.from_epoch(times.epoch(now) + 86400)
    ingest(store, [*answered("a"), *answered("b"), *answered("c"), msg("d", t(8), id="d")])
    ingest(store, [remind_record("a", t(9, 10), later), remind_record("b", t(9, 10), soon)])
    viewed = [(r["deal_key"], r["status"], r["due_at"]) for r in store.rows("SELECT * FROM queue")]
    listed = [(r["deal_key"], r["status"], r["due_at"]) for r in listing.queue(store, now=now).rows]
    assert viewed == listed == [("d", "unread", None), ("b", "due", soon), ("c", "green", None), ("a", "pending", later)]


def test_R11_the_pure_status_rule_agrees_with_the_stored_columns():
    """rules/statuses.py's status_of (the reference) and its SQL over stored columns."""
    from chatcrm import derive

    now = t(12)
    conn = sqlite3.connect(":memory:")
    cases = itertools.product((None, t(9)), [(), (None,), (t(11),), (t(13),), (None, t(11)), (None, t(13)),
                                             (t(13), t(14)), (t(11), t(13))])
    for waiting, follow_ups in cases:
        chats = [derive.ChatState(t(9), None, waiting if n == 0 else None, t(9), None, None, None, None, f)
                 for n, f in enumerate(follow_ups)]
        state = derive.derive_deal(chats, t(9))
        expected = statuses.status_of(waiting if follow_ups else None, follow_ups, now)
        got = conn.execute(
            f"SELECT {statuses.status_sql('?3')} FROM (SELECT ?1 AS status_rank, ?2 AS due_key)",
            [state.status_rank, state.due_key, times.epoch(now)],
        ).fetchone()[0]
        assert got == expected, (waiting, follow_ups)


def test_R11_due_is_red_on_a_terminal_and_plain_without_colour(store):
    ingest(store, answered("tg:1"))
    actions.remind(store, "tg:1", now=t(10), due_at=t(11))
    queue = listing.queue(store, now=t(12))
    coloured = render.queue_output(queue, "simple", times.UTC, True)
    assert "\x1b[31mDUE\x1b[0m" in coloured and "\x1b[31m1 due\x1b[0m" in coloured
    assert "\x1b[" not in render.queue_output(queue, "simple", times.UTC, False)


# ------------------------------------------------------------------ the command line


@pytest.fixture
def day(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATCRM_NOW", t(12))
    records = [*answered("tg:1", t(8, 50)), *[{**r, "deal": "D-2"} for r in answered("wa:2") + answered("wa:3", t(9, 1))],
               *answered("fb:4"), complete_("fb:4", t(9, 30))]
    assert run("ingest", write_jsonl(tmp_path / "day.jsonl", records)).code == 0
    return tmp_path


def facts_count(tmp_path) -> int:
    conn = sqlite3.connect(tmp_path / "chatcrm.db")
    try:
        return conn.execute("SELECT count(*) FROM reminders").fetchone()[0]
    finally:
        conn.close()


def test_remind_from_the_command_line_with_a_duration_and_a_time(day):
    assert run("remind", "tg:1", "90m", "--note", "llamar").out == "deal 1: activity 1 follows up at 2026-11-24T13:30:00Z\n"
    result = run("remind", "D-2", "2026-11-24T15:00", "--tz", "Europe/Madrid", "--activity", "3")
    assert result.out == "deal 2: activity 3 follows up at 2026-11-24T15:00:00+01:00\n"
    rows = run("list", "--status", "pending", "-f", "json").json()
    assert [(r["deal_key"], r["due_at"]) for r in rows] == [("tg:1", t(13, 30))]
    assert "follow-up set" in run("timeline", "tg:1").out


@pytest.mark.parametrize(
    "args, code, message",
    [
        (("remind", "tg:1"), 2, "give WHEN (5m, 2h, 1d or a time), or --clear"),
        (("remind", "tg:1", "5m", "--clear"), 2, "give WHEN or --clear, not both"),
        (("remind", "tg:1", "--clear", "--note", "x"), 2, "--note goes with a WHEN"),
        (("remind", "tg:1", "5x"), 2, "WHEN: unreadable '5x'"),
        (("remind", "tg:1", "2026-11-24T11:00:00Z"), 2, "is not later than now"),
        (("remind", "D-2", "5m"), 4, "has 2 active activities"),
        (("remind", "fb:4", "5m"), 4, "has no active activity to follow up"),
        (("remind", "D-2", "5m", "--activity", "99"), 3, "has no activity '99'"),
        (("remind", "nobody", "5m"), 3, "no deal 'nobody'"),
        (("remind", "tg:1", "5m", "--at", "2026-11-24T08:00:00Z"), 4, "chat 1 opened later"),
    ],
)
def test_remind_refusals_are_one_line_with_their_exit_code_and_write_nothing(day, args, code, message):
    result = run(*args)
    assert (result.code, result.out) == (code, "")
    assert result.err.startswith("Error: ") and message in result.err and result.err.count("\n") == 1
    assert facts_count(day) == 0


def test_an_invalid_remind_line_names_its_file_and_line(day):
    bad = write_jsonl(day / "bad.jsonl", [remind_record("tg:1", t(10), t(11)), {"type": "remind", "chat": "tg:1", "at": t(10)}])
    result = run("ingest", bad)
    assert result.code == 5 and f"{bad}:2: a remind event needs a 'due' time, or 'clear': true" in result.err
    also = write_jsonl(day / "bad2.jsonl", [remind_record("tg:1", t(10), "soon")])
    assert run("ingest", also).code == 5
    assert facts_count(day) == 0


def test_a_remind_csv_round_trips(day):
    assert run("remind", "tg:1", "1h", "--note", 'dice "luego"').code == 0
    assert run("remind", "D-2", "--activity", "4", "2h").code == 0
    assert run("remind", "D-2", "--activity", "4", "--clear", "--at", "2026-11-24T12:00:05Z").code == 0
    exported = run("export", "--format", "csv").out
    assert "remind" in exported and "true" in exported
    (day / "copy.csv").write_text(exported, encoding="utf-8")
    copy = day / "copy.db"
    assert run("ingest", day / "copy.csv", "--db", copy).code == 0
    assert run("list", "-f", "json", "--db", copy).out == run("list", "-f", "json").out
    assert run("check", "--db", copy).code == 0


def test_R11_the_store_keeps_r8_s_status_and_the_pending_rank(store):
    ingest(store, [*answered("tg:1"), remind_record("tg:1", t(9, 10), t(9, 20))])
    assert store.conn.execute("SELECT status, status_rank FROM deals").fetchall() == [("green", statuses.RANK["pending"])]


def test_R11_at_one_instant_the_greatest_reminder_wins_whatever_the_arrival():
    """The derivation itself (the store happens to read reminders in index order)."""
    from chatcrm import derive

    opened = derive.MessageFact(t(9), 0, "client", 1)
    same_instant = [derive.ChatEventFact(t(10), "remind", "", due_at=t(13), note="b"),
                    derive.ChatEventFact(t(10), "remind", "", due_at=t(11, 30)),
                    derive.ChatEventFact(t(10), "remind", "", due_at=None)]
    for order in itertools.permutations(same_instant):
        session, = derive.derive_sessions([opened], order)
        assert (session.follow_up_at, session.follow_up_note) == (t(13), "b")


def test_R11_an_employees_queue_knows_due_and_pending(store):
    ingest(store, [*answered("a"), *answered("b"), *answered("c"),
                   {"type": "assign", "chat": "c", "at": t(9, 6), "agent": "Elena"},
                   remind_record("a", t(9, 10), t(15)), remind_record("b", t(9, 10), t(10)),
                   remind_record("c", t(9, 10), t(10))])
    queue = listing.queue(store, now=t(11), agent="Luis", sla_seconds=900)
    assert [(r["deal_key"], r["status"]) for r in queue.rows] == [("b", "due"), ("a", "pending")]
    assert queue.counts == {"unread": 0, "due": 1, "green": 0, "pending": 1, "grey": 0} and queue.overdue == 0


def test_R11_search_status_knows_due_and_pending(store):
    ingest(store, [*answered("a"), *answered("b"), remind_record("a", t(9, 10), t(10)),
                   remind_record("b", t(9, 10), t(15))])
    due = service.search(store, "hello", now=t(11), status="due", limit=10)
    assert {h["deal_key"] for h in due.hits} == {"a"} and {h["status"] for h in due.hits} == {"due"}
    pending = service.search(store, "hello", now=t(11), status="pending", limit=10)
    assert {h["deal_key"] for h in pending.hits} == {"b"}
