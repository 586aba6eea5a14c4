"""Every change can be undone, live channels' too (issue 12, point 8): edits of messages and
delivery statuses are facts of the change log — linked to the changes that brought them,
removed by `undo` when only that change brought them, the displayed text and the delivery
state following — and a reply undone before it was delivered leaves the outbox."""

from __future__ import annotations

import json
import sqlite3

import pytest

from chatcrm import actions, importers, service
from chatcrm.errors import Refused
from chatcrm.importers import ImportOptions
from chatcrm.sender import SendResult
from chatcrm.store import open_store
from chatcrm.store import schema
from chatcrm.store import connection
from tests.helpers import FIXTURES, ROOT, run, write_jsonl
from tests.test_live_channels import update, write_updates

LIVE = FIXTURES / "live"
T0 = "2026-11-29T12:00:00Z"
WAMID = "wamid.HBgLMzQ2MDAxMTEyMjIVAgARGBJBQjEyQzM0RDU2RTc4RjkwAA=="


def live(store, *paths):
    """One import (one change) of these live payloads; returns its change id."""
    batches = [importers.read_source(str(path), None, ImportOptions()) for path in paths]
    return service.ingest(store, batches, now=T0).change_id


def texts(store):
    return [tuple(r) for r in store.conn.execute(
        "SELECT uid, text, edited_at FROM messages ORDER BY chat_key, sent_at, uid")]


def problems(store):
    from chatcrm.store import verify

    return verify.check(store)


@pytest.fixture
def updates(tmp_path):
    """An original message (v1) and two edits of it (v2, then v3), each in a file of its own."""
    original = update(1, message_id=5, text="v1")
    edit1 = update(2, "edited_message", message_id=5, text="v2", edit_date=1795943760)
    edit2 = update(3, "edited_message", message_id=5, text="v3", edit_date=1795943820)
    return {name: write_updates(tmp_path / f"{name}.jsonl", [u])
            for name, u in (("original", original), ("edit1", edit1), ("edit2", edit2))}


# ------------------------------------------------------------------ edits


def test_undo_of_an_edit_shows_the_text_before_it_again(store, updates):
    live(store, updates["original"])
    edit = live(store, updates["edit1"])
    assert texts(store) == [("id:bot:5", "v2", "2026-11-29T09:16:00Z")]
    done = service.undo(store, str(edit), now=T0)
    assert (done.edits_removed, done.texts_restored, done.messages_removed, done.kept) == (1, 1, 0, 1)
    assert texts(store) == [("id:bot:5", "v1", None)]
    assert store.conn.execute("SELECT count(*) FROM message_edits").fetchone()[0] == 0
    assert problems(store) == []


def test_undo_of_the_latest_edit_shows_the_previous_edit_then_the_original(store, updates):
    live(store, updates["original"])
    first = live(store, updates["edit1"])
    latest = live(store, updates["edit2"])
    assert texts(store)[0][1] == "v3"
    service.undo(store, str(latest), now=T0)
    assert texts(store) == [("id:bot:5", "v2", "2026-11-29T09:16:00Z")]
    service.undo(store, str(first), now=T0)
    assert texts(store) == [("id:bot:5", "v1", None)]
    assert problems(store) == []


def test_undo_of_an_earlier_edit_leaves_the_latest_shown(store, updates):
    live(store, updates["original"])
    first = live(store, updates["edit1"])
    live(store, updates["edit2"])
    done = service.undo(store, str(first), now=T0)
    assert (done.edits_removed, done.texts_restored) == (1, 0)
    assert texts(store) == [("id:bot:5", "v3", "2026-11-29T09:17:00Z")]
    assert problems(store) == []


def test_undo_an_edit_two_changes_brought_stays_until_both_are_undone(store, updates):
    live(store, updates["original"])
    once = live(store, updates["edit1"])
    again = live(store, updates["edit1"])  # the same update delivered twice
    links = store.conn.execute(
        "SELECT change_id FROM change_facts WHERE fact_table = 'message_edits' ORDER BY change_id").fetchall()
    assert links == [(once,), (again,)]
    done = service.undo(store, str(once), now=T0)
    assert done.edits_removed == 0 and texts(store)[0][1] == "v2"
    service.undo(store, str(again), now=T0)
    assert texts(store)[0][1] == "v1"
    assert problems(store) == []


def test_undo_an_edit_that_came_before_its_original_gives_the_original_text(store, updates):
    edit = live(store, updates["edit1"])  # the message is first known by its edit
    original = live(store, updates["original"])  # its original arrives later: it still shows v2
    assert texts(store) == [("id:bot:5", "v2", "2026-11-29T09:16:00Z")]
    service.undo(store, str(edit), now=T0)
    assert texts(store) == [("id:bot:5", "v1", None)]
    assert problems(store) == []
    service.undo(store, str(original), now=T0)
    assert texts(store) == [] and store.conn.execute("SELECT count(*) FROM deals").fetchone()[0] == 0


def test_undo_of_the_only_import_of_a_message_removes_its_edits_with_it(store, updates):
    both = live(store, updates["original"], updates["edit1"], updates["edit2"])
    done = service.undo(store, str(both), now=T0)
    assert (done.messages_removed, done.edits_removed) == (1, 2)
    assert texts(store) == [] and store.conn.execute("SELECT count(*) FROM message_edits").fetchone()[0] == 0
    assert problems(store) == []


def test_undo_of_an_edit_the_search_index_and_the_queue_follow(tmp_path, updates):
    assert run("ingest", updates["original"]).code == 0
    assert run("ingest", updates["edit1"]).code == 0
    assert [r["text"] for r in run("search", "v2", "-f", "json").json()] == ["v2"]
    undone = run("undo", "2")
    assert undone.code == 0, undone.err
    assert undone.out.startswith("undid change 2 (ingest): removed 0 message(s) and 0 other event(s); "
                                 "1 edit(s) removed; 1 message(s) show their earlier text again;")
    assert run("search", "v2", "-f", "json").json() == []
    assert [d["last_message"] for d in run("list", "-f", "json").json()] == ["v1"]


# ------------------------------------------------------------------ delivery statuses


def _sent_whatsapp_reply(store):
    """A WhatsApp chat, a reply on it handed to the channel (its remote id WAMID)."""
    live(store, LIVE / "whatsapp-message.json")
    actions.reply(store, "wa:34600111222", "Confirmado", now=T0, author="Elena")
    service.deliver(store, lambda entry: SendResult(True, remote_id=WAMID), clock=lambda: T0, owner="test")


def _state(store):
    return [e["state"] for e in service.outbox(store, now=T0, everything=True)]


def test_undo_of_an_import_of_statuses_removes_them_and_the_reply_state_follows(store):
    _sent_whatsapp_reply(store)
    assert _state(store) == ["sent"]
    statuses = live(store, LIVE / "whatsapp-statuses.json")
    assert _state(store) == ["read"]
    assert store.conn.execute(
        "SELECT count(*) FROM change_facts WHERE change_id = ? AND fact_table = 'delivery_statuses'",
        [statuses]).fetchone()[0] == 2
    done = service.undo(store, str(statuses), now=T0)
    assert done.statuses_removed == 2
    assert _state(store) == ["sent"]
    assert store.conn.execute("SELECT count(*) FROM delivery_statuses").fetchone()[0] == 0
    assert problems(store) == []


def test_undo_a_status_two_changes_brought_stays_until_both_are_undone(store):
    _sent_whatsapp_reply(store)
    first = live(store, LIVE / "whatsapp-statuses.json")
    second = live(store, LIVE / "whatsapp-statuses.json")
    assert service.undo(store, str(first), now=T0).statuses_removed == 0
    assert _state(store) == ["read"]
    assert service.undo(store, str(second), now=T0).statuses_removed == 2
    assert _state(store) == ["sent"]


def test_a_status_reported_again_later_is_a_fact_of_its_own_and_the_earliest_report_is_its_time(store, tmp_path):
    _sent_whatsapp_reply(store)
    payload = json.loads((LIVE / "whatsapp-statuses.json").read_text(encoding="utf-8"))
    later = payload["entry"][0]["changes"][0]["value"]["statuses"][1]
    later["timestamp"] = str(int(later["timestamp"]) + 600)  # `read`, reported again 10 minutes on
    path = tmp_path / "later.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    early = live(store, LIVE / "whatsapp-statuses.json")
    live(store, path)
    from chatcrm.store import outbox

    assert [(e["status_rank"], e["status_at"]) for e in outbox.entries(store, everything=True)] == [
        (3, "2026-11-29T11:32:00Z")]  # read, first reported at 11:32
    service.undo(store, str(early), now=T0)  # the later reports stay, and `read` is now of 11:42
    assert store.rows("SELECT status, at FROM delivery_statuses ORDER BY id") == [
        {"status": "delivered", "at": "2026-11-29T11:31:00Z"}, {"status": "read", "at": "2026-11-29T11:42:00Z"}]
    assert [e["status_at"] for e in outbox.entries(store, everything=True)] == ["2026-11-29T11:42:00Z"]


# ------------------------------------------------------------------ replies in the outbox


def test_undo_of_a_queued_reply_takes_it_out_of_the_outbox_and_it_is_never_delivered(store):
    live(store, LIVE / "telegram-getupdates.json")
    outcome = actions.reply(store, "tg:5550001", "Sí, en azul", now=T0, author="Luis")
    assert outcome.queued == 1
    change = store.conn.execute("SELECT max(id) FROM changes").fetchone()[0]
    done = service.undo(store, str(change), now=T0)
    assert (done.messages_removed, done.replies_unqueued) == (1, 1)
    assert service.outbox(store, now=T0, everything=True) == []
    given = []
    service.deliver(store, lambda entry: given.append(entry) or SendResult(True, remote_id="r1"),
                    clock=lambda: T0, owner="test")
    assert given == []
    assert problems(store) == []


def test_undo_of_a_reply_that_was_given_up_takes_it_out_of_the_outbox(store):
    live(store, LIVE / "telegram-getupdates.json")
    actions.reply(store, "tg:5550001", "Sí, en azul", now=T0, author="Luis")
    change = store.conn.execute("SELECT max(id) FROM changes").fetchone()[0]
    store.conn.execute("UPDATE outbox SET given_up_at = ?, tries = 5", [T0])
    store.conn.commit()
    assert service.undo(store, str(change), now=T0).replies_unqueued == 1


def test_undo_of_a_delivered_reply_is_refused_and_changes_nothing(store):
    _sent_whatsapp_reply(store)
    change = store.conn.execute("SELECT id FROM changes WHERE command = 'reply'").fetchone()[0]
    before = store.conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    with pytest.raises(Refused) as refused:
        service.undo(store, str(change), now=T0)
    assert refused.value.exit_code == 4
    assert "brought reply 1, which was delivered to the client at" in str(refused.value)
    assert store.conn.execute("SELECT count(*) FROM messages").fetchone()[0] == before
    assert store.conn.execute("SELECT count(*) FROM changes WHERE command = 'undo'").fetchone()[0] == 0


def test_undo_of_a_reply_a_deliver_run_holds_is_refused_until_its_lease_runs_out(store):
    from chatcrm.store import outbox

    live(store, LIVE / "telegram-getupdates.json")
    actions.reply(store, "tg:5550001", "Sí, en azul", now=T0, author="Luis")
    change = store.conn.execute("SELECT max(id) FROM changes").fetchone()[0]
    with store.write():
        outbox.claim(store, T0, "run-1", 90)
    with pytest.raises(Refused, match="is being delivered by a `chatcrm deliver` run"):
        service.undo(store, str(change), now=T0)
    after_lease = "2026-11-29T12:01:31Z"
    assert service.undo(store, str(change), now=after_lease).replies_unqueued == 1


def test_undo_of_a_delivered_reply_on_the_command_line_exits_4(tmp_path):
    db = tmp_path / "chatcrm.db"
    store = open_store(db)
    try:
        _sent_whatsapp_reply(store)
    finally:
        store.close()
    result = run("undo", "2")
    assert result.code == 4 and result.out == ""
    assert result.err.startswith("Error: change 2 (reply) brought reply 1, which was delivered to the client at ")


# ------------------------------------------------------------------ check


@pytest.mark.parametrize("tamper, problem", [
    ("DELETE FROM change_facts WHERE fact_table = 'message_edits'",
     "change log: message_edits row 1 is linked to no change that is not undone"),
    ("DELETE FROM change_facts WHERE fact_table = 'delivery_statuses' AND fact_id = 1",
     "change log: delivery_statuses row 1 is linked to no change that is not undone"),
    ("INSERT INTO change_facts (change_id, fact_table, fact_id) VALUES (1, 'delivery_statuses', 99)",
     "change log: change 1 is linked to delivery_statuses row 99, which does not exist"),
    ("UPDATE messages SET text = 'v1' WHERE uid = 'id:bot:5'",
     "edits: message 1 does not show its latest edit (of 2026-11-29T09:16:00Z)"),
    ("DELETE FROM message_edits",
     "edits: message 1 is shown as edited, but no edit of it is stored"),
])
def test_check_verifies_the_links_of_edits_and_statuses(store, updates, tamper, problem):
    live(store, updates["original"], updates["edit1"], LIVE / "whatsapp-statuses.json")
    assert problems(store) == []
    with store.conn:
        store.conn.execute(tamper)
    assert problem in problems(store)


# ------------------------------------------------------------------ the migration


def _m009_database_with_an_edit_and_a_status(path, monkeypatch):
    """A database of m009 where change 1 imported the day and message 1 was edited (its
    text written over), a status stored: what live imports left before m010."""
    # every migration but m010 (later ones, such as m011's chats.channel, are what the
    # current code writes; m010 is what this database has not seen)
    upto = [m for m in schema.migrations._migrations if not m.name.startswith("m010")]
    with monkeypatch.context() as patch:
        patch.setattr(schema.migrations, "_migrations", upto)
        patch.setattr(connection, "SCHEMA", tuple(m.name for m in upto))
        old = open_store(path)
        service.ingest(old, [("day", "jsonl", importers.read_source(str(ROOT / "fixtures" / "support-day.jsonl"),
                                                                       None, ImportOptions())[2])], now=T0)
        with old.conn:
            old.conn.execute("UPDATE messages SET text = 'edited', edited_at = '2026-11-24T09:20:00Z' WHERE id = 1")
            old.conn.execute("INSERT INTO delivery_statuses (remote_id, status, at) VALUES ('r1', 'read', ?)", [T0])
        old.close()


def test_the_migration_links_stored_edits_and_statuses_to_the_change_before_the_change_log(tmp_path, monkeypatch):
    """A database of m009 (edits written over their message, statuses unlinked) opened now:
    each edit becomes a fact, and both are linked to a `before_change_log` change."""
    path = tmp_path / "m009.db"
    _m009_database_with_an_edit_and_a_status(path, monkeypatch)
    store = open_store(path)
    try:
        assert store.rows("SELECT message_id, edited_at, text FROM message_edits") == [
            {"message_id": 1, "edited_at": "2026-11-24T09:20:00Z", "text": "edited"}]
        before = store.rows("SELECT id, command, at FROM changes WHERE command = 'before_change_log'")
        assert before == [{"id": 2, "command": "before_change_log", "at": None}]
        assert store.rows("SELECT fact_table, fact_id FROM change_facts WHERE change_id = 2 ORDER BY 1") == [
            {"fact_table": "delivery_statuses", "fact_id": 1}, {"fact_table": "message_edits", "fact_id": 1}]
        assert problems(store) == []
        service.undo(store, "2", now=T0)  # its own text was not kept: the message keeps the one it shows
        assert store.rows("SELECT text, edited_at FROM messages WHERE id = 1") == [{"text": "edited", "edited_at": None}]
        assert problems(store) == []
    finally:
        store.close()


def test_undo_a_message_that_goes_takes_its_edits_with_it_whichever_change_brought_them(tmp_path, monkeypatch):
    """After the migration the edit of message 1 belongs to `before_change_log` (change 2),
    the message to the import (change 1): undoing the import removes both."""
    path = tmp_path / "m009.db"
    _m009_database_with_an_edit_and_a_status(path, monkeypatch)
    store = open_store(path)
    try:
        done = service.undo(store, "1", now=T0)
        assert (done.messages_removed, done.edits_removed) == (23, 1)
        assert store.rows("SELECT count(*) AS n FROM message_edits") == [{"n": 0}]
        assert store.rows("SELECT count(*) AS n FROM change_facts WHERE fact_table = 'message_edits'") == [{"n": 0}]
        assert problems(store) == []
    finally:
        store.close()
