"""End to end through the console script: the seed's story, exit codes, exact output."""

import json
import os
import stat
import subprocess
import sys

import pytest

from tests.helpers import FIXTURES, ROOT, close_, complete_, msg, run, write_jsonl


def status_of(deal_key: str) -> str:
    rows = run("list", "--format", "json").json()
    return next(r["status"] for r in rows if r["deal_key"] == deal_key)


def test_the_seed_story_end_to_end(tmp_path, monkeypatch):
    """Client writes → Unread; reply → green; writes again → Unread; close → green;
    complete → grey; a client writing after close opens a new session."""
    monkeypatch.setenv("CHATCRM_NOW", "2026-11-24T09:30:00Z")
    first = write_jsonl(tmp_path / "a.jsonl", [msg("tg:5550001", "2026-11-24T09:15:00Z", author="Ana", contact="Ana")])
    assert run("ingest", first).code == 0
    assert status_of("tg:5550001") == "unread"

    assert run("reply", "tg:5550001", "¡Hola! Sí, la tenemos.", "--at", "2026-11-24T09:20:00Z").code == 0
    assert status_of("tg:5550001") == "green"

    again = write_jsonl(tmp_path / "b.jsonl", [msg("tg:5550001", "2026-11-24T09:25:00Z", text="¿Me la reserváis?")])
    run("ingest", again)
    assert status_of("tg:5550001") == "unread"
    refused = run("close", "tg:5550001")
    assert refused.code == 4 and "waiting since" in refused.err

    run("reply", "1", "Reservada.", "--at", "2026-11-24T09:28:00Z")
    assert run("close", "1", "--at", "2026-11-24T09:40:00Z").code == 0
    assert status_of("tg:5550001") == "green"

    assert run("complete", "1", "--at", "2026-11-24T09:41:00Z").code == 0
    assert status_of("tg:5550001") == "grey"

    later = write_jsonl(tmp_path / "c.jsonl", [msg("tg:5550001", "2026-11-24T16:05:00Z", text="Hola otra vez")])
    run("ingest", later)
    assert status_of("tg:5550001") == "unread"
    entries = run("timeline", "1", "--format", "json").json()
    opened = [e for e in entries if e["kind"] == "chat_opened"]
    assert [e["at"] for e in opened] == ["2026-11-24T09:15:00Z", "2026-11-24T16:05:00Z"]
    # each activity row shows the state it had then: both created Unread (a client opened
    # them), the first completed white at 09:41
    assert [e["state"] for e in entries if e["kind"] == "activity_created"] == ["unread", "unread"]
    assert [(e["at"], e["state"]) for e in entries if e["kind"] == "activity_completed"] == [
        ("2026-11-24T09:41:00Z", "completed")
    ]


SMALL = [
    msg("tg:1", "2026-11-24T09:15:00Z", author="Ana Pérez", contact="Ana Pérez", channel="telegram", text="¿Talla M?"),
    msg("tg:1", "2026-11-24T09:20:00Z", "agent", author="Luis", text="Sí, la tenemos."),
    msg("wa:2", "2026-11-24T10:00:00Z", author="Marta", contact="Marta", channel="whatsapp", text="Hola\nmi pedido no llega"),
    msg("web:3", "2026-11-24T08:00:00Z", author="Jorge", contact="Jorge", channel="webchat", text="Gracias"),
    close_("web:3", "2026-11-24T08:30:00Z"),
    complete_("web:3", "2026-11-24T08:31:00Z"),
]

GOLDEN_LIST = """\
ID    STATUS    DEAL                  WAITING    AGENT    OPEN    ACTIVE    LAST AT           LAST MESSAGE
----  --------  --------------------  ---------  -------  ------  --------  ----------------  ---------------------------------
3     UNREAD    Marta (whatsapp)      1h 00m              1       1         2026-11-24 10:00  client: Hola ⏎ mi pedido no llega
2     green     Ana Pérez (telegram)             Luis     1       1         2026-11-24 09:20  agent: Sí, la tenemos.
1     grey      Jorge (webchat)                           0       0         2026-11-24 08:00  client: Gracias
1 unread · 0 due · 1 green · 0 pending · 1 grey
"""

GOLDEN_TIMELINE = """\
Deal 2 · Ana Pérez (telegram) · key tg:1 · green counter · 1 open chat(s), 1 active activity · responsible Luis

TIME              EVENT             CHAT    ACTIVITY    FROM         DETAIL
----------------  ----------------  ------  ----------  -----------  --------------------------
2026-11-24 09:15  deal created                                       key tg:1
2026-11-24 09:15  chat opened       2       2                        tg:1 (telegram), by client
2026-11-24 09:15  activity created  2       2                        Unread
2026-11-24 09:15  message           2       2           ← Ana Pérez  ¿Talla M?
2026-11-24 09:20  message           2       2           → Luis       Sí, la tenemos.
"""


@pytest.fixture
def small(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATCRM_NOW", "2026-11-24T11:00:00Z")
    assert run("ingest", write_jsonl(tmp_path / "small.jsonl", SMALL)).code == 0


def test_list_table_is_exact(small):
    result = run("list")
    assert result.code == 0
    assert result.out == GOLDEN_LIST
    assert result.err == ""


def test_timeline_table_is_exact(small):
    assert run("timeline", "tg:1").out == GOLDEN_TIMELINE


def test_list_json_is_exact(small):
    rows = run("list", "--format", "json").json()
    assert rows[0] == {
        "deal_id": 3,
        "deal_key": "wa:2",
        "title": "Marta (whatsapp)",
        "contact": "Marta",
        "channel": "whatsapp",
        "status": "unread",
        "waiting_since": "2026-11-24T10:00:00Z",
        "waiting_seconds": 3600,
        "overdue": None,
        "due_at": None,
        "responsible": None,
        "open_chats": 1,
        "active_activities": 1,
        "last_message_at": "2026-11-24T10:00:00Z",
        "last_message": "Hola\nmi pedido no llega",
        "oldest_active_at": "2026-11-24T10:00:00Z",
        "last_event_at": "2026-11-24T10:00:00Z",
        "created_at": "2026-11-24T10:00:00Z",
    }
    assert [(r["deal_id"], r["status"]) for r in rows] == [(3, "unread"), (2, "green"), (1, "grey")]


def test_timeline_json_is_exact(small):
    entries = run("timeline", "3", "--format", "json").json()
    assert entries == [
        {"at": "2026-11-24T10:00:00Z", "kind": "deal_created", "chat_id": None, "activity_id": None,
         "deal_id": 3, "deal_key": "wa:2"},
        {"at": "2026-11-24T10:00:00Z", "kind": "chat_opened", "chat_id": 3, "activity_id": 3,
         "chat_key": "wa:2", "channel": "whatsapp", "opened_by": "client", "unread": True,
         "waiting_since": "2026-11-24T10:00:00Z"},
        {"at": "2026-11-24T10:00:00Z", "kind": "activity_created", "chat_id": 3, "activity_id": 3, "state": "unread"},
        {"at": "2026-11-24T10:00:00Z", "kind": "message", "chat_id": 3, "activity_id": 3,
         "direction": "client", "author": "Marta", "text": "Hola\nmi pedido no llega"},
    ]


def test_jsonl_and_csv_outputs(small):
    lines = run("list", "--format", "jsonl").out.splitlines()
    assert [json.loads(line)["deal_key"] for line in lines] == ["wa:2", "tg:1", "web:3"]
    csv_out = run("list", "--format", "csv", "--status", "grey").out
    assert csv_out.splitlines()[0].startswith("deal_id,deal_key,title,contact,channel,status")
    assert csv_out.splitlines()[1].startswith("1,web:3,Jorge (webchat),Jorge,webchat,grey")
    assert "Marta" not in csv_out


def test_tabulate_styles_are_accepted(small):
    out = run("list", "--format", "github").out
    assert out.startswith("| ID ")
    assert "1 unread · 0 due · 1 green · 0 pending · 1 grey" in out


def test_limit_says_how_many_are_shown(small):
    out = run("list", "--limit", "1").out
    assert "Marta" in out and "Ana" not in out
    assert out.endswith("1 unread · 0 due · 1 green · 0 pending · 1 grey (showing 1 of 3 deals)\n")


def test_CHATCRM_NOW_makes_builds_byte_identical(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATCRM_NOW", "2026-11-24T18:00:00Z")
    outputs = []
    for build in ("one", "two"):
        monkeypatch.setenv("CHATCRM_DB", str(tmp_path / f"{build}.db"))
        run("ingest", FIXTURES / "support-day.jsonl")
        run("reply", "3", "Lo miro ahora mismo")
        run("complete", "1")
        outputs.append([run("list").out, run("list", "-f", "json").out, run("timeline", "3", "-f", "json").out])
    assert outputs[0] == outputs[1]
    assert '"at": "2026-11-24T18:00:00Z"' in outputs[0][2]


def test_colours_only_on_a_terminal_and_never_with_NO_COLOR(small, monkeypatch):
    from chatcrm import cli

    class Tty:
        def isatty(self):
            return True

    assert cli._color(Tty())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not cli._color(Tty())
    assert "\x1b[" not in run("list").out  # captured output is not a terminal


def test_hostile_text_cannot_break_a_table(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATCRM_NOW", "2026-11-24T11:00:00Z")
    nasty = "a\tb\x1b[31mred\u202eevil\r\nline2"
    run("ingest", write_jsonl(tmp_path / "x.jsonl", [msg("x", "2026-11-24T10:00:00Z", text=nasty, author="'; DROP TABLE deals;--")]))
    out = run("list").out
    assert "\x1b" not in out and "\u202e" not in out and "\t" not in out
    assert "\\x1b[31mred\\u202eevil" in out
    assert run("timeline", "x", "-f", "json").json()[-1]["text"] == nasty
    assert run("timeline", "x", "-f", "json").json()[-1]["author"] == "'; DROP TABLE deals;--"


# ----------------------------------------------------------------- exit codes


def test_exit_0_for_nothing_to_change(small):
    result = run("complete", "web:3")
    assert result.code == 0 and "nothing to complete" in result.out


def test_exit_2_for_wrong_usage(small):
    for args in (["list", "--format", "xml"], ["list", "--limit", "x"], ["list", "--status", "red"],
                 ["reply", "1", "hi", "--at", "yesterday"], ["bogus"], ["ingest", "--format", "pdf", "x"],
                 ["ingest", "missing-file.jsonl"], ["list", "--tz", "Mars/Olympus"]):
        result = run(*args)
        assert result.code == 2, args
        assert result.err.startswith("Error: ") and result.err.count("\n") == 1, (args, result.err)
        assert "Traceback" not in result.err


def test_exit_3_for_no_such_deal_chat_or_activity(small):
    for args in (["timeline", "99"], ["reply", "nope", "hi"], ["close", "2", "--chat", "77"], ["complete", "2", "--activity", "77"]):
        result = run(*args)
        assert result.code == 3, args
        assert result.err.count("\n") == 1


def test_exit_4_for_refusals(small, tmp_path):
    assert run("reply", "web:3", "hola").code == 4  # no open chat
    assert run("complete", "wa:2").code == 4  # the client is waiting
    run("ingest", write_jsonl(tmp_path / "two.jsonl", [msg("tg:9", "2026-11-24T10:00:00Z", deal="D"), msg("wa:9", "2026-11-24T10:01:00Z", deal="D")]))
    ambiguous = run("reply", "D", "hola")
    assert ambiguous.code == 4
    assert "2 open chats" in ambiguous.err and "--chat" in ambiguous.err
    chat_ids = [e["chat_id"] for e in run("timeline", "D", "-f", "json").json() if e["kind"] == "chat_opened"]
    for chat_id in chat_ids:
        assert str(chat_id) in ambiguous.err
    assert run("reply", "D", "hola", "--chat", str(chat_ids[1])).code == 0


def test_exit_5_for_invalid_input_and_nothing_is_written(small, tmp_path):
    before = run("list", "-f", "json").out
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(msg("new:1", "2026-11-24T10:00:00Z")) + "\n{not json\n", encoding="utf-8")
    result = run("ingest", bad)
    assert result.code == 5
    assert result.err == f"Error: {bad}:2: bad JSON: unexpected character, expected a string key at column 2\n"
    assert run("list", "-f", "json").out == before


def test_skip_invalid_imports_the_valid_lines_and_reports_the_rest(tmp_path):
    bad = tmp_path / "mixed.jsonl"
    bad.write_text(
        json.dumps(msg("new:1", "2026-11-24T10:00:00Z")) + "\n" + '{"chat": "x", "at": "2026-02-30T10:00:00Z", "from": "client"}\n',
        encoding="utf-8",
    )
    result = run("ingest", "--skip-invalid", bad)
    assert result.code == 0
    assert f"skipped {bad}:2: 'at': unreadable time" in result.err
    assert "added 1 message(s)" in result.err
    assert [r["deal_key"] for r in run("list", "-f", "json").json()] == ["new:1"]


def test_ingest_reads_stdin_and_csv(tmp_path):
    stdin = json.dumps(msg("tg:1", "2026-11-24T10:00:00Z")) + "\n"
    assert run("ingest", "-", input=stdin).code == 0
    csv_file = tmp_path / "events.csv"
    csv_file.write_text("type,chat,from,author,text,at\nmessage,wa:1,client,Eva,\"hola, ¿qué tal?\",2026-11-24T10:05:00Z\n", encoding="utf-8")
    result = run("ingest", csv_file)
    assert result.code == 0 and "(csv)" in result.err
    assert run("timeline", "wa:1", "-f", "json").json()[-1]["text"] == "hola, ¿qué tal?"


def test_dry_run_writes_nothing(tmp_path):
    result = run("ingest", "--dry-run", FIXTURES / "support-day.jsonl")
    assert result.code == 0 and result.err.startswith("would add 23 message(s)")
    # Not even a database is created: `list` says there is none (read-only commands never create one).
    listed = run("list", "-f", "json")
    assert listed.code == 1 and "no chatcrm database at" in listed.err and not (tmp_path / "chatcrm.db").exists()


def test_reply_text_from_stdin(small):
    assert run("reply", "wa:2", "-", input="Hola Marta,\nlo reviso ahora.\n").code == 0
    entries = run("timeline", "wa:2", "-f", "json").json()
    assert entries[-1]["text"] == "Hola Marta,\nlo reviso ahora." and entries[-1]["author"] == "Luis"


# ----------------------------------------------------------------- the database


def test_db_option_env_and_default_path(tmp_path, monkeypatch):
    event = write_jsonl(tmp_path / "e.jsonl", [msg("tg:1", "2026-11-24T10:00:00Z")])
    run("ingest", event, "--db", tmp_path / "explicit.db")
    assert (tmp_path / "explicit.db").exists()
    monkeypatch.delenv("CHATCRM_DB")
    run("ingest", event)
    default = tmp_path / "xdg" / "chatcrm" / "chatcrm.db"
    assert default.exists()
    assert stat.S_IMODE(default.stat().st_mode) == 0o600
    assert stat.S_IMODE(default.parent.stat().st_mode) == 0o700


def test_a_new_database_is_in_wal_mode_with_its_schema(tmp_path):
    import sqlite3

    assert run("ingest", "--db", tmp_path / "new.db", FIXTURES / "support-day.jsonl").code == 0  # only ingest creates one
    conn = sqlite3.connect(tmp_path / "new.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
    assert {"deals", "chats", "activities", "messages", "chat_events", "chat_keys", "contacts", "queue"} <= tables
    assert stat.S_IMODE((tmp_path / "new.db").stat().st_mode) == 0o600


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    result = run("list", "--db", junk)
    assert result.code == 1 and result.err.startswith("Error: ") and "not a usable chatcrm database" in result.err


def test_python_dash_m_and_help_run_as_programs(tmp_path):
    env = {**os.environ, "CHATCRM_DB": str(tmp_path / "p.db")}
    result = subprocess.run([sys.executable, "-m", "chatcrm", "--help"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode == 0
    for command in ("ingest", "reply", "close", "complete", "list", "timeline"):
        assert command in result.stdout
