"""Every change can be undone (issue 12, point 8): each write is recorded as a change with
what it brought; `chatcrm changes` lists them; `chatcrm undo CHANGE` removes exactly the
facts only that change brought, every state follows, and the undo is recorded too; a file
imported again with other options says so, or is refused when it would add a shifted copy;
`chatcrm check` verifies the log."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.helpers import ROOT, msg, run, write_jsonl

DAY = ROOT / "fixtures" / "support-day.jsonl"
WHATSAPP = ROOT / "fixtures" / "whatsapp" / "WhatsApp Chat with Marta Gómez.txt"
NOW = "2026-11-24T17:00:00Z"


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    monkeypatch.setenv("CHATCRM_NOW", NOW)


def ok(*args, input=None):
    result = run(*args, input=input)
    assert result.code == 0, (args, result.err)
    return result


def changes_json():
    return ok("changes", "--format", "json").json()


def rows(db: Path, sql: str, params=()):
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def state(db: Path) -> tuple:
    """Everything a user sees, ids included: the queue, every fact exported, every chat."""
    queue = ok("list", "--db", db, "--format", "json").out
    exported = ok("export", "--db", db).out
    chats = rows(db, "SELECT id, chat_key, deal_id, opened_at, closed_at, waiting_since, responsible FROM chats ORDER BY id")
    keys = rows(db, "SELECT key, deal_id, channel, contact, title, first_at FROM chat_keys ORDER BY key")
    return queue, exported, chats, keys


def db_path(tmp_path: Path) -> Path:
    return tmp_path / "chatcrm.db"


# ------------------------------------------------------------------ recording


def test_recording_every_write_is_a_change_with_its_time_what_it_was_and_what_it_added(tmp_path):
    ok("ingest", DAY)
    ok("reply", "3", "Hola Marta")
    ok("close", "3")
    ok("complete", "3", "--at", "2026-11-24T17:05:00Z")
    ok("assign", "8", "Elena")
    ok("undo", "2")
    log = changes_json()
    assert [c["command"] for c in log] == ["undo", "assign", "complete", "close", "reply", "ingest"]
    assert [c["change_id"] for c in log] == [6, 5, 4, 3, 2, 1]
    # its time is the command's now (--at for complete), never SQLite's clock
    assert [c["at"] for c in log] == [NOW, NOW, "2026-11-24T17:05:00Z", NOW, NOW, NOW]
    ingest = log[-1]
    assert ingest["files"] == [{
        "name": str(DAY), "input": str(DAY), "sha256": hashlib.sha256(DAY.read_bytes()).hexdigest(), "format": "jsonl",
        "tz": "UTC", "agents": [], "chat": None,
    }]
    assert ingest["arguments"] == {"files": [str(DAY)], "tz": "UTC", "agents": [], "chat": None, "skip_invalid": False}
    assert (ingest["messages_added"], ingest["events_added"], ingest["facts"]) == (23, 5, 28)
    reply = log[-2]
    assert reply["arguments"] == {"deal": 3, "chat": 3, "text": "Hola Marta", "author": "Luis"}
    assert (reply["messages_added"], reply["facts"], reply["undone_by"]) == (1, 0, 6)
    assert log[0]["undoes"] == 2 and log[0]["removed"] == 1
    assert log[1]["arguments"] == {"deal": 8, "chat": 9, "agent": "Elena"} and log[1]["events_added"] == 1
    # each fact is linked to the change that brought it
    linked = rows(db_path(tmp_path), "SELECT change_id, fact_table, count(*) FROM change_facts GROUP BY 1, 2 ORDER BY 1, 2")
    assert linked == [(1, "chat_events", 5), (1, "messages", 23), (3, "chat_events", 1), (4, "chat_events", 1),
                      (5, "assignments", 1)]


def test_recording_a_dry_run_and_a_command_that_changes_nothing_record_nothing(tmp_path):
    ok("ingest", DAY)
    ok("ingest", "--dry-run", DAY)
    ok("close", "1")  # deal 1 has no open chat: nothing to close
    assert run("reply", "1", "hola").code == 4  # refused by a rule
    assert run("ingest", write_jsonl(tmp_path / "bad.jsonl", [{"chat": "x", "at": "nope"}])).code == 5
    assert [c["command"] for c in changes_json()] == ["ingest"]


def test_recording_a_fact_brought_by_two_imports_is_linked_to_both(tmp_path):
    ok("ingest", DAY)
    second = ok("ingest", DAY)
    assert "28 already present" in second.err
    log = changes_json()
    assert [(c["messages_added"] + c["events_added"], c["present"], c["facts"]) for c in log] == [(0, 28, 28), (28, 0, 28)]
    both = rows(db_path(tmp_path), "SELECT count(*) FROM (SELECT fact_table, fact_id FROM change_facts "
                                   "GROUP BY 1, 2 HAVING count(*) = 2)")
    assert both == [(28,)]


# ------------------------------------------------------------------ listing


def test_listing_changes_newest_first_with_limit_and_stable_fields(tmp_path):
    ok("ingest", DAY)
    ok("reply", "3", "=HYPERLINK(\"http://x\")\x1b[2J")
    table = ok("changes").out.splitlines()
    assert table[0].split() == ["ID", "AT", "COMMAND", "WHAT", "ADDED", "UNDONE"]
    assert table[2].split()[:4] == ["2", "2026-11-24", "17:00", "reply"]
    assert "\x1b" not in "".join(table)  # a reply's text is shown escaped
    assert table[3].split()[3:5] == ["ingest", str(DAY)]
    assert [c["change_id"] for c in ok("changes", "--limit", "1", "-f", "json").json()] == [2]
    from chatcrm.render import CHANGE_FIELDS

    for line in ok("changes", "-f", "jsonl").out.splitlines():
        assert tuple(json.loads(line)) == CHANGE_FIELDS
    parsed = list(csv.DictReader(io.StringIO(ok("changes", "-f", "csv").out)))
    assert tuple(parsed[0]) == CHANGE_FIELDS
    assert json.loads(parsed[1]["files"])[0]["format"] == "jsonl"
    assert ok("changes", "--limit", str(10**20), "-f", "json").json()[-1]["change_id"] == 1
    assert run("changes", "--limit", "-1").code == 2


# ------------------------------------------------------------------ undo


def test_undo_removes_only_what_only_that_change_brought(tmp_path):
    first = write_jsonl(tmp_path / "first.jsonl", [msg("wa:1", "2026-11-24T08:00:00Z", id="a"),
                                                  msg("wa:1", "2026-11-24T08:01:00Z", id="b")])
    second = write_jsonl(tmp_path / "second.jsonl", [msg("wa:1", "2026-11-24T08:01:00Z", id="b"),
                                                    msg("wa:1", "2026-11-24T08:02:00Z", id="c")])
    ok("ingest", first)
    ok("ingest", second)
    result = ok("undo", "2")
    assert result.out == ("undid change 2 (ingest): removed 1 message(s) and 0 other event(s); 1 fact(s) that "
                          "another change also brought stay; recorded as change 3\n")
    assert rows(db_path(tmp_path), "SELECT uid FROM messages ORDER BY uid") == [("id:a",), ("id:b",)]
    assert ok("check").out.startswith("ok:")


def test_undo_shared_facts_stay_until_every_change_that_brought_them_is_undone(tmp_path):
    ok("ingest", DAY)
    ok("ingest", DAY)
    assert "removed 0 message(s) and 0 other event(s); 28 fact(s)" in ok("undo", "1").out
    assert len(ok("list", "-f", "json").json()) == 8
    assert "removed 23 message(s) and 5 other event(s)" in ok("undo", "2").out
    assert ok("list", "-f", "json").json() == []
    assert rows(db_path(tmp_path), "SELECT (SELECT count(*) FROM deals) + (SELECT count(*) FROM chats) + "
                                   "(SELECT count(*) FROM chat_keys) + (SELECT count(*) FROM change_facts)") == [(0,)]
    assert ok("check").out.startswith("ok:")


def test_undo_states_follow_and_the_ids_of_what_remains_stay(tmp_path):
    ok("ingest", DAY)
    before = {d["deal_id"]: d for d in ok("list", "-f", "json").json()}
    ok("reply", "3", "Hola Marta, lo miro")  # change 2
    ok("close", "3")  # change 3
    assert ok("list", "--status", "grey", "-f", "json").json()[0]["deal_id"] in (1, 3)
    ok("undo", "3")  # the close goes: the chat is open again, green
    ok("undo", "2")  # the reply goes: the client waits again, as before it
    after = {d["deal_id"]: d for d in ok("list", "-f", "json").json()}
    assert after == before
    assert ok("check").out.startswith("ok:")


def test_undo_an_import_after_a_reply_on_its_chat_keeps_the_reply_and_states_follow(tmp_path):
    ok("ingest", DAY)
    ok("reply", "3", "Hola Marta")
    result = ok("undo", "1")
    assert "7 deal(s) with nothing left are gone" in result.out
    queue = ok("list", "-f", "json").json()
    # the reply stays a fact: its deal (same id) holds one chat an employee opened
    assert [(d["deal_id"], d["deal_key"], d["status"], d["last_message"]) for d in queue] == [
        (3, "wa:34600111222", "green", "Hola Marta")
    ]
    assert [e["kind"] for e in ok("timeline", "3", "-f", "json").json()] == [
        "deal_created", "chat_opened", "activity_created", "message"
    ]
    assert run("timeline", "1").code == 3
    assert ok("check").out.startswith("ok:")


def test_undo_is_recorded_and_an_undo_is_not_undone(tmp_path):
    ok("ingest", DAY)
    ok("undo", "1")
    log = changes_json()
    assert (log[0]["command"], log[0]["undoes"], log[0]["removed"], log[1]["undone_by"]) == ("undo", 1, 28, 2)
    refused = run("undo", "2")
    assert refused.code == 4 and refused.out == ""
    assert refused.err.startswith("Error: change 2 is an undo (of change 1); an undo is not undone")
    again = ok("undo", "1")
    assert again.out == "change 1 (ingest) was already undone by change 2; nothing to do\n"
    assert len(changes_json()) == 2  # neither the refusal nor "nothing to do" is a change


def test_undo_an_unknown_change_is_not_found_and_a_bad_number_is_usage(tmp_path):
    ok("ingest", DAY)
    for ref, code in (("99", 3), ("0", 3), (str(10**30), 3), ("abc", 2), ("", 2)):
        result = run("undo", ref)
        assert (result.code, result.out) == (code, ""), ref
        assert result.err.startswith("Error: ") and result.err.count("\n") == 1
    assert len(changes_json()) == 1


def test_order_independence_undoing_then_importing_again_is_the_state_of_one_import(tmp_path, monkeypatch):
    once, redone = tmp_path / "once.db", tmp_path / "redone.db"
    ok("ingest", "--db", once, DAY)
    ok("ingest", "--db", redone, DAY)
    ok("undo", "--db", redone, "1")
    ok("ingest", "--db", redone, DAY)
    assert state(redone) == state(once)


def test_order_independence_undoing_a_later_import_gives_the_state_without_it(tmp_path):
    """The later import names the chat's contact and title earlier, and adds a deal: undone,
    the names and the deals are those of the first import alone."""
    first = write_jsonl(tmp_path / "a.jsonl", [msg("wa:1", "2026-11-24T09:00:00Z", id="1", contact="Ana"),
                                              msg("wa:1", "2026-11-24T09:05:00Z", "agent", id="2", author="Luis")])
    later = write_jsonl(tmp_path / "b.jsonl", [msg("wa:1", "2026-11-24T08:00:00Z", id="0", contact="Anita",
                                                   title="Pedido 7"),
                                               msg("wa:2", "2026-11-24T08:30:00Z", id="x", contact="Bea")])
    alone, undone = tmp_path / "alone.db", tmp_path / "undone.db"
    ok("ingest", "--db", alone, first)
    ok("ingest", "--db", undone, first)
    ok("ingest", "--db", undone, later)
    titles = {d["deal_key"]: d["title"] for d in ok("list", "--db", undone, "-f", "json").json()}
    assert titles == {"wa:1": "Pedido 7", "wa:2": "Bea (whatsapp)"}
    ok("undo", "--db", undone, "2")
    assert state(undone) == state(alone)
    assert ok("check", "--db", undone).out.startswith("ok:")


# ------------------------------------------------------------------ importing a file again


def test_reimport_with_another_tz_is_refused_naming_the_change(tmp_path):
    ok("ingest", WHATSAPP)
    before = state(db_path(tmp_path))
    result = run("ingest", "--tz", "Europe/Madrid", WHATSAPP)
    assert (result.code, result.out) == (5, "")
    assert result.err == (
        f"Error: {WHATSAPP}: these bytes were imported by change 1 with --tz UTC; with --tz Europe/Madrid they "
        "would add a shifted copy. Undo it first (chatcrm undo 1), then import the file again\n"
    )
    assert state(db_path(tmp_path)) == before and len(changes_json()) == 1
    ok("undo", "1")
    assert "added 6 message(s)" in ok("ingest", "--tz", "Europe/Madrid", WHATSAPP).err


def test_reimport_with_another_chat_is_refused_and_a_copy_elsewhere_is_the_same_file(tmp_path):
    ok("ingest", "--agent", "Tienda Sol", "--chat", "wa:34600111222", WHATSAPP)
    copy = tmp_path / "renamed.txt"
    shutil.copy(WHATSAPP, copy)
    result = run("ingest", "--agent", "Tienda Sol", copy)  # same bytes: the chat key would come from the name
    assert result.code == 5
    assert "imported by change 1 with --chat wa:34600111222; with --chat (none)" in result.err
    # same options: an ordinary re-import
    assert "added 0 message(s)" in ok("ingest", "--agent", "Tienda Sol", "--chat", "wa:34600111222", copy).err


def test_reimport_with_another_tz_that_adds_nothing_goes_on(tmp_path):
    """Times with an offset read the same in every zone: no shifted copy, no refusal."""
    ok("ingest", DAY)
    assert "28 already present" in ok("ingest", "--tz", "Europe/Madrid", DAY).err


def test_reimport_with_other_agents_says_so_changes_directions_and_undo_gives_them_back(tmp_path):
    ok("ingest", "--agent", "Tienda Sol", WHATSAPP)
    directions = rows(db_path(tmp_path), "SELECT uid, direction FROM messages ORDER BY uid")
    result = ok("ingest", "--agent", "Marta Gómez", WHATSAPP)
    assert result.err.splitlines()[0] == (
        f"note: {WHATSAPP} was imported by change 1 with --agent Tienda Sol; now with --agent Marta Gómez: "
        "the messages whose author's role changed change direction"
    )
    assert "6 already present; 6 message(s) changed direction" in result.err
    assert rows(db_path(tmp_path), "SELECT count(*) FROM messages") == [(6,)]  # never duplicated
    log = changes_json()
    assert (log[0]["directions_changed"], log[0]["files"][0]["agents"]) == (6, ["Marta Gómez"])
    assert ok("undo", "2").out == ("undid change 2 (ingest): removed 0 message(s) and 0 other event(s); 6 fact(s) "
                                   "that another change also brought stay; 6 message(s) got their direction back; "
                                   "recorded as change 3\n")
    assert rows(db_path(tmp_path), "SELECT uid, direction FROM messages ORDER BY uid") == directions
    assert ok("list", "-f", "json").json()[0]["status"] == "unread"
    assert ok("check").out.startswith("ok:")


def test_undo_each_message_that_stays_takes_the_direction_of_the_latest_change_that_brought_it(tmp_path):
    def file(name, direction):
        return write_jsonl(tmp_path / name, [msg("wa:1", "2026-11-24T09:00:00Z", direction, id="1"),
                                             msg("wa:1", "2026-11-24T09:01:00Z", "client", id="2")])

    def direction():
        return rows(db_path(tmp_path), "SELECT direction FROM messages WHERE uid = 'id:1'")[0][0]

    ok("ingest", file("a.jsonl", "client"))  # 1
    ok("ingest", file("b.jsonl", "agent"))  # 2: says agent
    ok("ingest", file("c.jsonl", "agent"))  # 3: says agent too
    assert direction() == "agent"
    ok("undo", "2")
    assert direction() == "agent"  # change 3 still says so
    ok("undo", "3")
    assert direction() == "client"  # only change 1 is left
    assert ok("check").out.startswith("ok:")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_reimport_stdin_is_known_by_the_digest_of_the_bytes_piped(tmp_path):
    ok("ingest", "-", input=DAY.read_text(encoding="utf-8"))
    assert changes_json()[0]["files"][0] == {"name": "<stdin>", "input": "<stdin>", "sha256": sha256(DAY.read_bytes()),
                                             "format": "jsonl", "tz": "UTC", "agents": [], "chat": None}
    # the same bytes as a file are the same export
    assert ok("ingest", DAY).err.startswith("added 0 message(s) and 0 other event(s); 28 already present")
    assert changes_json()[0]["files"][0]["sha256"] == sha256(DAY.read_bytes())


def test_reimport_the_same_export_piped_twice_with_another_tz_is_refused_naming_the_change(tmp_path):
    text = WHATSAPP.read_bytes()
    ok("ingest", "--agent", "Tienda Sol", "--chat", "wa:34600111222", "-", input=text)
    before = state(db_path(tmp_path))
    result = run("ingest", "--agent", "Tienda Sol", "--chat", "wa:34600111222", "--tz", "+01:00", "-", input=text)
    assert (result.code, result.out) == (5, "")
    assert result.err == (
        "Error: <stdin>: these bytes were imported by change 1 with --tz UTC; with --tz +01:00 they would add a "
        "shifted copy. Undo it first (chatcrm undo 1), then import the file again\n"
    )
    assert state(db_path(tmp_path)) == before and len(changes_json()) == 1
    # the file itself, read with another zone, is the same export too
    assert run("ingest", "--agent", "Tienda Sol", "--chat", "wa:34600111222", "--tz", "+01:00", WHATSAPP).code == 5
    # other bytes on stdin are another export: a file that adds messages is not refused
    other = text + "24/11/2026, 16:00 - Marta Gómez: ¿Y mañana?\n".encode()
    again = run("ingest", "--agent", "Tienda Sol", "--chat", "wa:34600111222", "--tz", "+01:00", "-", input=other)
    assert again.code == 0, again.err


def test_reimport_a_chat_inside_another_zip_is_the_same_export(tmp_path):
    import zipfile

    ok("ingest", "--agent", "Tienda Sol", WHATSAPP)
    archive = tmp_path / "WhatsApp Chat with Marta Gómez.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(WHATSAPP, WHATSAPP.name)
        z.writestr("IMG-20261124-WA0001.jpg", b"\xff\xd8 not read")
    result = run("ingest", "--agent", "Tienda Sol", "--tz", "Europe/Madrid", archive)
    assert result.code == 5 and f"{archive}/{WHATSAPP.name}: these bytes were imported by change 1 with --tz UTC" in result.err
    ok("ingest", "--agent", "Tienda Sol", archive)  # the same options: an ordinary re-import
    member = changes_json()[0]["files"]
    assert [(f["name"], f["input"], f["sha256"]) for f in member] == [
        (f"{archive}/{WHATSAPP.name}", str(archive), sha256(WHATSAPP.read_bytes()))]


def test_reimport_a_folder_with_another_agent_is_reported_naming_the_change(tmp_path):
    from tests.test_exports_meta import FACEBOOK

    ok("ingest", FACEBOOK, "--agent", "Tienda Sol")
    result = ok("ingest", FACEBOOK, "--agent", "Tienda Sol", "--agent", "Rosa")
    notes = [line for line in result.err.splitlines() if line.startswith("note:")]
    assert notes == [f"note: {FACEBOOK} was imported by change 1 with --agent Tienda Sol; now with --agent Tienda Sol "
                     "--agent Rosa: the messages whose author's role changed change direction"]
    assert "message(s) changed direction" in result.err and "added 0 message(s)" in result.err


# ------------------------------------------------------------------ check


@pytest.mark.parametrize("tamper, problem", [
    ("DELETE FROM change_facts WHERE fact_table = 'messages' AND fact_id = 1",
     "change log: messages row 1 is linked to no change that is not undone"),
    ("INSERT INTO change_facts (change_id, fact_table, fact_id) VALUES (1, 'chat_events', 999)",
     "change log: change 1 is linked to chat_events row 999, which does not exist"),
    ("UPDATE changes SET messages_added = 40 WHERE id = 1",
     "change log: change 1 says it added 45 fact(s) (0 already present) but is linked to 28"),
    ("UPDATE messages SET direction = 'agent' WHERE id = 1 AND direction = 'client'",
     "change log: message 1's direction is not the one the latest change that brought it says"),
    ("UPDATE changes SET undone_by = 1 WHERE id = 1",
     "change log: change 1 is marked undone by change 1, which is no undo of it"),
])
def test_check_verifies_the_change_log(tmp_path, tamper, problem):
    ok("ingest", DAY)
    assert ok("check").out.startswith("ok:")
    conn = sqlite3.connect(db_path(tmp_path))
    with conn:
        conn.execute(tamper)
    conn.close()
    result = run("check")
    assert result.code == 6 and problem in result.out.splitlines()


# ------------------------------------------------------------------ older databases


def test_facts_stored_before_the_change_log_belong_to_one_change_that_can_be_undone(tmp_path, monkeypatch):
    old = tmp_path / "old.db"
    shutil.copy(Path(__file__).parent / "fixtures" / "schema-m002.db", old)
    monkeypatch.setenv("CHATCRM_DB", str(old))
    deals = len(ok("list", "-f", "json").json())
    log = changes_json()
    assert [(c["change_id"], c["command"], c["at"]) for c in log] == [(1, "before_change_log", None)]
    facts = rows(old, "SELECT (SELECT count(*) FROM messages) + (SELECT count(*) FROM chat_events) + "
                      "(SELECT count(*) FROM assignments)")[0][0]
    assert log[0]["facts"] == facts and deals > 0
    assert ok("check").out.startswith("ok:")
    assert "the facts stored before the change log" in ok("changes").out
    ok("reply", "3", "Hola")
    ok("undo", "1")
    assert [d["deal_id"] for d in ok("list", "-f", "json").json()] == [3]
    assert ok("check").out.startswith("ok:")


def test_recording_a_large_first_import_links_in_bulk_and_leaves_the_fact_index_built(tmp_path):
    """(Tests write every 3 messages: this import takes the bulk path a large one takes.)"""
    ok("ingest", DAY)
    indexes = rows(db_path(tmp_path), "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'change_facts'")
    assert ("change_facts_fact",) in indexes
    ok("ingest", DAY)
    plan = rows(db_path(tmp_path), "EXPLAIN QUERY PLAN SELECT change_id FROM change_facts WHERE fact_table = 'messages' "
                                   "AND fact_id = 1")
    assert "change_facts_fact" in plan[0][3]


# ------------------------------------------------------------------ order independence, generated

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from chatcrm import service  # noqa: E402
from chatcrm.store import open_store  # noqa: E402
from tests.helpers import events as as_events  # noqa: E402

_CHATS = ("wa:1", "wa:2", "tg:3")


@st.composite
def _event(draw):
    chat = draw(st.sampled_from(_CHATS))
    minute = draw(st.integers(0, 6))
    at = f"2026-11-24T09:{minute:02d}:00Z"
    kind = draw(st.sampled_from(("message", "message", "message", "close", "complete")))
    record = {"type": kind, "chat": chat, "at": at}
    if kind == "message":
        # One message a minute, the same in every file (the same export, read again): its
        # direction may differ (employees named differently). (A fact two imports share
        # keeps what the first one stored of it: its line, that orders it within its second.)
        record.update({"from": draw(st.sampled_from(("client", "agent"))), "author": "A", "text": f"m{minute}"})
        if minute % 2:
            record["id"] = f"{chat}-{minute}"
    if draw(st.booleans()):
        record["contact"] = draw(st.sampled_from(("Ana", "Bea")))
    if draw(st.integers(0, 4)) == 0:
        record["title"] = draw(st.sampled_from(("Pedido 1", "Pedido 2")))
    return record


def _snapshot(store) -> dict:
    """Every fact and derived state, without ids (which depend on the order things were seen)."""
    queries = {
        "messages": "SELECT chat_key, uid, direction, author, text, sent_at FROM messages",
        "chat_events": "SELECT chat_key, kind, at, session FROM chat_events",
        "chat_keys": "SELECT k.key, d.key, k.channel, k.contact, k.title, k.first_at FROM chat_keys k "
                     "JOIN deals d ON d.id = k.deal_id",
        "deals": "SELECT d.key, d.title, c.name, d.created_at, d.status, d.waiting_since, d.oldest_active_at, "
                 "d.open_chats, d.active_activities, d.last_message_at, d.last_event_at, d.responsible "
                 "FROM deals d LEFT JOIN contacts c ON c.id = d.contact_id",
        "chats": "SELECT c.chat_key, c.opened_at, c.opened_by, c.closed_at, c.waiting_since, c.first_response_at, "
                 "c.first_reply_by, c.last_message_at, c.messages, c.responsible, a.created_at, a.completed_at "
                 "FROM chats c JOIN activities a ON a.chat_id = c.id",
    }
    return {name: sorted(store.conn.execute(sql).fetchall(), key=repr) for name, sql in queries.items()}


def _import(store, records, name):
    service.ingest(store, [(name, "jsonl", as_events(records, name))], now=NOW,
                   files=[service.ImportedFile(name)])


@pytest.mark.slow
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(files=st.lists(st.lists(_event(), min_size=1, max_size=8, unique_by=lambda r: (r["chat"], r["at"], r["type"])),
                      min_size=2, max_size=4), data=st.data())
def test_order_independence_undoing_any_import_gives_the_state_of_importing_the_others(tmp_path_factory, files,
                                                                                       data):
    undone = data.draw(st.integers(0, len(files) - 1))
    folder = tmp_path_factory.mktemp("undo")
    with_undo, without = open_store(folder / "undo.db"), open_store(folder / "without.db")
    try:
        for n, records in enumerate(files):
            _import(with_undo, records, f"f{n}.jsonl")
        service.undo(with_undo, str(undone + 1), now=NOW)
        for n, records in enumerate(files):
            if n != undone:
                _import(without, records, f"f{n}.jsonl")
        assert _snapshot(with_undo) == _snapshot(without)
        from chatcrm.store import verify

        assert verify.check(with_undo) == []
    finally:
        with_undo.close()
        without.close()


def test_recording_a_message_an_import_names_twice_is_linked_with_the_direction_it_keeps(tmp_path):
    ok("ingest", DAY)
    twice = write_jsonl(tmp_path / "twice.jsonl", [msg("wa:9", "2026-11-24T09:00:00Z", "client", id="x"),
                                                  msg("wa:9", "2026-11-24T09:00:00Z", "agent", id="x")])
    ok("ingest", twice)
    ok("ingest", twice)
    kept = rows(db_path(tmp_path), "SELECT direction FROM messages WHERE uid = 'id:x'")[0][0]
    said = rows(db_path(tmp_path), "SELECT l.direction FROM change_facts l JOIN messages m ON m.id = l.fact_id "
                                   "WHERE l.fact_table = 'messages' AND m.uid = 'id:x' ORDER BY l.change_id")
    assert said == [(kept,), (kept,)]
    assert ok("check").out.startswith("ok:")


def _thread_digests(folder: Path) -> dict[str, str]:
    """Each Meta thread of a folder and the digest of its message_N.json files, one after the other."""
    threads: dict[str, list[Path]] = {}
    for file in sorted(folder.rglob("message_*.json")):
        threads.setdefault(file.parent.relative_to(folder).as_posix(), []).append(file)
    return {thread: sha256(b"".join(f.read_bytes() for f in sorted(files, key=lambda f: int(f.stem.split("_")[1]))))
            for thread, files in threads.items()}


def test_recording_a_zip_of_several_chats_names_each_with_the_zip_and_its_own_digest(tmp_path):
    from tests.test_exports_meta import FACEBOOK, zipped

    archive = zipped(FACEBOOK, tmp_path / "facebook.zip")
    ok("ingest", archive, "--agent", "Tienda Sol")
    files = changes_json()[0]["files"]
    assert len(files) >= 2 and len({f["name"] for f in files}) == len(files)
    assert {f["input"] for f in files} == {str(archive)}
    threads = _thread_digests(FACEBOOK)
    assert {f["name"].removeprefix(f"{archive}/"): f["sha256"] for f in files} == threads
    # Meta's times carry their zone: another --tz adds nothing, and is an ordinary re-import
    assert "added 0 message(s)" in ok("ingest", "--tz", "Europe/Madrid", archive, "--agent", "Tienda Sol").err
    ok("undo", "1")
    ok("undo", "2")
    assert ok("list", "-f", "json").json() == []
    folder = ok("ingest", FACEBOOK, "--agent", "Tienda Sol")  # a folder: each thread's digest, as in the ZIP
    assert "added 5 message(s)" in folder.err
    assert {f["name"].removeprefix(f"{FACEBOOK}/"): f["sha256"] for f in changes_json()[0]["files"]} == threads


def test_recording_commands_on_several_deals_and_close_idle_each_can_be_undone(tmp_path):
    ok("ingest", DAY)
    ok("reply", "3", "8", "Enseguida te atendemos.")  # one change per deal, in one transaction
    log = changes_json()
    assert [(c["command"], c["arguments"]["deal"]) for c in log[:2]] == [("reply", 8), ("reply", 3)]
    ok("undo", str(log[1]["change_id"]))
    assert {d["deal_id"]: d["status"] for d in ok("list", "-f", "json").json()}[3] == "unread"
    idle = ok("close", "--idle", "1h")
    latest = changes_json()[0]
    assert latest["command"] == "close" and latest["arguments"]["idle"] == 3600 and latest["events_added"] > 0
    assert f"--idle 1h 00m: chats {', '.join(map(str, latest['arguments']['chats']))}" in ok("changes").out
    before_idle = [d["open_chats"] for d in ok("list", "-f", "json").json()]
    ok("undo", str(latest["change_id"]))
    assert sum(d["open_chats"] for d in ok("list", "-f", "json").json()) == sum(before_idle) + latest["events_added"]
    assert idle.out and ok("check").out.startswith("ok:")


def test_undo_a_follow_up_removes_it_and_the_deal_is_green_again():
    ok("ingest", DAY)
    ok("remind", "7", "1d", "--note", "Confirmar la entrega")
    remind_change = changes_json()[0]
    assert remind_change["command"] == "remind"
    status = lambda: next(r for r in ok("list", "-f", "json").json() if r["deal_id"] == 7)  # noqa: E731
    assert status()["status"] == "pending" and status()["due_at"] == "2026-11-25T17:00:00Z"
    ok("undo", str(remind_change["change_id"]))
    assert status()["status"] == "green" and status()["due_at"] is None
    assert ok("check").code == 0


def test_undo_a_follow_up_two_imports_brought_keeps_it_until_both_are_undone(tmp_path):
    ok("ingest", DAY)
    ok("remind", "7", "1d")
    exported = tmp_path / "deal7.jsonl"
    exported.write_text(ok("export", "--deal", "7").out, encoding="utf-8")
    assert '"type": "remind"' in exported.read_text(encoding="utf-8")
    ok("ingest", exported)  # the same follow-up again: linked to this import too
    remind_change = next(c for c in changes_json() if c["command"] == "remind")
    ok("undo", str(remind_change["change_id"]))
    row = next(r for r in ok("list", "-f", "json").json() if r["deal_id"] == 7)
    assert row["status"] == "pending"  # the import still brings it
    assert ok("check").code == 0


def test_reimport_identity_a_digest_is_known_only_once_its_bytes_were_read_to_the_end_once():
    import io

    from chatcrm.importers.sources import Digest

    data = b"line one\n" * 20000
    digest = Digest()
    stream = digest.watch(io.BytesIO(data))
    stream.read(100)
    assert digest.hexdigest() is None  # not read to its end: no identity
    while stream.read(4096):
        pass
    assert digest.hexdigest() == sha256(data)
    stream.seek(0)  # read again from the start (WhatsApp reads a file twice): hashed once
    assert stream.read() == data
    assert digest.hexdigest() == sha256(data)
    halfway = Digest()  # read part of the way, then again from the start and on to the end
    again = halfway.watch(io.BytesIO(data))
    again.read(100_000)
    again.seek(10)  # (its reads then straddle the bytes hashed so far)
    assert again.read() == data[10:]
    assert halfway.hexdigest() == sha256(data)
    skipped = Digest()
    gap = skipped.watch(io.BytesIO(data))
    gap.read(10)
    gap.seek(150_000)  # bytes never read: no identity
    gap.read()
    assert skipped.hexdigest() is None


def test_the_change_log_table_words_a_reminder_and_takes_the_table_style(tmp_path):
    ok("ingest", DAY)
    ok("remind", "4", "2h")
    ok("remind", "4", "--clear", "--at", "2026-11-24T17:01:00Z")
    table = ok("changes").out
    assert "deal 4, activity 4: follow-up at 2026-11-24T19:00:00Z" in table
    assert "deal 4, activity 4: follow-up cleared" in table
    assert ok("changes", "-f", "grid").out.startswith("+----")
