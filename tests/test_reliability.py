"""Nothing lost under concurrent writers, crashes and bad input."""

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from chatcrm.store import open_store

from tests.helpers import ROOT, msg, run, write_jsonl
from chatcrm.store import verify


def chatcrm(*args, db, env=None, **kwargs) -> subprocess.Popen:
    environment = {**os.environ, "CHATCRM_DB": str(db), "CHATCRM_NOW": "2026-11-25T12:00:00Z", **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "chatcrm", *map(str, args)],
        cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs,
    )


def day(n_chats: int, per_chat: int, prefix: str = "c") -> list[dict]:
    events = []
    for c in range(n_chats):
        for m in range(per_chat):
            frm = "client" if m % 3 != 1 else "agent"
            at = f"2026-11-24T{8 + m // 60:02d}:{m % 60:02d}:{c % 60:02d}Z"
            events.append(msg(f"{prefix}:{c}", at, frm, text=f"message {m} of {c}", id=f"{c}-{m}"))
    return events


def test_check_passes_on_a_healthy_database_and_names_what_is_wrong(tmp_path):
    db = tmp_path / "c.db"
    run("ingest", "--db", db, write_jsonl(tmp_path / "d.jsonl", day(5, 6)))
    ok = run("check", "--db", db)
    assert ok.code == 0 and ok.out.startswith("ok:")
    conn = sqlite3.connect(db)
    conn.execute("UPDATE deals SET status = 'grey', open_chats = 7 WHERE key = 'c:1'")
    conn.commit()
    conn.close()
    bad = run("check", "--db", db)
    assert bad.code == 6  # problems found: its own exit code (1 is a database that cannot be used)
    assert "deal c:1: status is 'grey', the facts give 'unread'" in bad.out
    assert "deal c:1: open_chats is 7, the facts give 1" in bad.out


def test_check_names_missing_stray_and_wrong_sessions_and_changes_nothing(tmp_path):
    db = tmp_path / "c.db"
    run("ingest", "--db", db, write_jsonl(tmp_path / "d.jsonl", day(5, 6)))
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA foreign_keys = OFF")
    gone = conn.execute("SELECT id, chat_key, opened_at FROM chats ORDER BY id LIMIT 1").fetchone()
    conn.execute("DELETE FROM activities WHERE chat_id = ?", [gone[0]])
    conn.execute("DELETE FROM chats WHERE id = ?", [gone[0]])
    conn.execute("UPDATE chats SET responsible = 'Nadie' WHERE chat_key = 'c:2'")
    conn.execute(
        "INSERT INTO chats (chat_key, deal_id, opened_at, opened_by) SELECT key, deal_id, '2030-01-01T00:00:00Z', 'client' "
        "FROM chat_keys WHERE key = 'c:3'"
    )
    conn.commit()
    before = list(conn.iterdump())
    conn.close()
    bad = run("check", "--db", db)
    assert bad.code == 6  # problems found: its own exit code (1 is a database that cannot be used)
    assert f"chat ('{gone[1]}', '{gone[2]}'): missing; the facts give " in bad.out
    assert "chat ('c:3', '2030-01-01T00:00:00Z'): stored, but the facts give no such chat" in bad.out
    assert "responsible is 'Nadie'" in bad.out
    assert bad.err.startswith("Error: ") and bad.err.count("\n") == 1
    conn = sqlite3.connect(db)
    assert list(conn.iterdump()) == before
    conn.close()
    store = open_store(db)
    try:
        capped = verify.check(store, most=1)
    finally:
        store.close()
    assert "chats: there may be more differences than the 1 listed" in capped


@pytest.mark.slow
def test_four_ingests_and_four_commands_at_once_lose_and_double_nothing(tmp_path):
    db = tmp_path / "busy.db"
    base = day(5, 3, prefix="r")  # chats with open sessions, for the replies and the close
    run("ingest", "--db", db, write_jsonl(tmp_path / "base.jsonl", base))
    everything = day(60, 20)
    files = []
    for n in range(4):  # overlapping quarters: each file shares half its events with the next
        start = n * len(everything) // 5
        files.append(write_jsonl(tmp_path / f"part{n}.jsonl", everything[start : start + 2 * len(everything) // 5]))
    workers = [chatcrm("ingest", f, db=db) for f in files]
    workers += [chatcrm("reply", f"r:{n}", f"reply {n}", "--author", "Luis", db=db) for n in range(4)]
    workers += [chatcrm("close", "r:4", "--force", "--at", "2026-11-25T13:00:00Z", db=db)]
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        assert "locked" not in err
    conn = sqlite3.connect(db)
    imported = {row[0] for row in conn.execute("SELECT uid FROM messages WHERE chat_key LIKE 'c:%'")}
    covered = set()
    for f in files:
        covered |= {"id:" + json.loads(line)["id"] for line in f.read_text().splitlines()}
    assert imported == covered
    assert conn.execute("SELECT count(*) FROM messages WHERE chat_key LIKE 'c:%'").fetchone()[0] == len(covered)
    replies = conn.execute("SELECT text FROM messages WHERE direction = 'agent' AND text LIKE 'reply %'").fetchall()
    assert sorted(r[0] for r in replies) == [f"reply {n}" for n in range(4)]
    conn.close()
    assert run("check", "--db", db).code == 0


@pytest.mark.slow
def test_a_killed_ingest_leaves_all_or_nothing_and_a_rerun_reaches_the_same_state(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATCRM_NOW", "2026-11-25T12:00:00Z")
    big = write_jsonl(tmp_path / "big.jsonl", day(1000, 60))
    first = write_jsonl(tmp_path / "first.jsonl", day(2, 3))  # an earlier batch, committed before the kill
    reference = tmp_path / "reference.db"
    assert run("ingest", "--db", reference, first).code == 0
    assert run("ingest", "--db", reference, big).code == 0
    expected = run("list", "--db", reference, "-f", "json").out
    expected_timeline = run("timeline", "--db", reference, "c:7", "-f", "json").out
    rng = random.Random(20261125)
    for attempt in range(3):
        db = tmp_path / f"killed{attempt}.db"
        run("ingest", "--db", db, first)
        worker = chatcrm("ingest", big, db=db)
        time.sleep(rng.uniform(0.3, 1.5))
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        count = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        conn.close()
        assert count in (6, 6 + 1000 * 60 - 6)  # the earlier batch, and none or all of the killed one
        print(f"kill {attempt}: {count} messages after SIGKILL")
        assert run("ingest", "--db", db, big).code == 0
        assert run("check", "--db", db).code == 0
        assert run("list", "--db", db, "-f", "json").out == expected
        assert run("timeline", "--db", db, "c:7", "-f", "json").out == expected_timeline


# ----------------------------------------------------------------- bad input

GOOD = json.dumps(msg("ok:1", "2026-11-24T10:00:00Z", id="1"))


def line(**record) -> str:
    return json.dumps(record, ensure_ascii=False)


# (name, file name, bytes, extra args, exit code, what stderr must say)
CORPUS = [
    ("broken JSON", "a.jsonl", GOOD + "\n{\"chat\": \n", [], 5, "a.jsonl:2: bad JSON"),
    ("not an object", "a.jsonl", GOOD + "\n[1, 2]\n", [], 5, "a.jsonl:2: expected a JSON object"),
    ("a string line", "a.jsonl", GOOD + '\n"hello"\n', [], 5, "a.jsonl:2: expected a JSON object"),
    ("chat is a list", "a.jsonl", line(chat=["x"], at="2026-11-24T10:00:00Z", **{"from": "client"}), [], 5, "a.jsonl:1: 'chat' must be a string"),
    ("text is a number", "a.jsonl", line(chat="x", at="2026-11-24T10:00:00Z", text=5, **{"from": "client"}), [], 5, "a.jsonl:1: 'text' must be a string"),
    ("at is a number", "a.jsonl", line(chat="x", at=1700000000, **{"from": "client"}), [], 5, "a.jsonl:1: 'at': time must be a string"),
    ("impossible date", "a.jsonl", line(chat="x", at="2026-02-30T10:00:00Z", **{"from": "client"}), [], 5, "a.jsonl:1: 'at': unreadable time"),
    ("hour 25", "a.jsonl", line(chat="x", at="2026-02-03T25:00:00Z", **{"from": "client"}), [], 5, "a.jsonl:1: 'at': unreadable time"),
    ("a date with no time", "a.jsonl", line(chat="x", at="2026-02-03", **{"from": "client"}), [], 5, "a.jsonl:1: 'at': unreadable time"),
    ("words for a time", "a.jsonl", line(chat="x", at="yesterday", **{"from": "client"}), [], 5, "a.jsonl:1: 'at': unreadable time"),
    ("unknown direction", "a.jsonl", line(chat="x", at="2026-11-24T10:00:00Z", **{"from": "bot"}), [], 5, "a.jsonl:1: unknown 'from' 'bot'"),
    ("unknown type", "a.jsonl", line(type="reopen", chat="x", at="2026-11-24T10:00:00Z"), [], 5, "a.jsonl:1: unknown type 'reopen'"),
    ("missing chat", "a.jsonl", line(at="2026-11-24T10:00:00Z", **{"from": "client"}), [], 5, "a.jsonl:1: missing 'chat'"),
    ("empty chat", "a.jsonl", line(chat=" ", at="2026-11-24T10:00:00Z", **{"from": "client"}), [], 5, "a.jsonl:1: missing 'chat'"),
    ("missing at", "a.jsonl", line(chat="x", **{"from": "client"}), [], 5, "a.jsonl:1: missing 'at'"),
    ("missing from", "a.jsonl", line(chat="x", at="2026-11-24T10:00:00Z"), [], 5, "a.jsonl:1: missing 'from'"),
    ("bad session time", "a.jsonl", line(type="complete", chat="x", at="2026-11-24T10:00:00Z", session="soon"), [], 5, "a.jsonl:1: 'session'"),
    ("invalid UTF-8", "a.jsonl", GOOD + "\n" + '{"chat": "x", "text": "\xff"}', [], 5, "a.jsonl:2: not UTF-8"),
    ("lone surrogate", "a.jsonl", '{"chat": "x", "at": "2026-11-24T10:00:00Z", "from": "client", "text": "\\ud800"}', [], 5, "a.jsonl:1: a string holds an unpaired"),
    ("binary garbage", "a.jsonl", "\x00\x01\x02\x89PNG\r\n\x1a\n", [], 5, "a.jsonl:1:"),
    ("a huge line", "a.jsonl", GOOD + "\n{" + "x" * (3 << 20) + "\n", [], 5, "a.jsonl:2: bad JSON"),
    ("an empty file", "empty.jsonl", "", [], 5, "empty.jsonl: the file is empty"),
    ("only blank lines", "blank.jsonl", "\n\n  \n", [], 5, "blank.jsonl: the file is empty"),
    ("CSV with a wrong header", "e.csv", "kind,chat,when\nmessage,x,2026-11-24T10:00:00Z\n", ["--format", "csv"], 5, "e.csv:1: wrong CSV header"),
    ("CSV short row", "e.csv", "chat,at,from\nx,2026-11-24T10:00:00Z\n", [], 5, "e.csv:2: 2 cells where the header has 3"),
    ("a chat bound to another deal", "a.jsonl", line(chat="x", at="2026-11-24T10:00:00Z", deal="A", **{"from": "client"}) + "\n" + line(chat="x", at="2026-11-24T10:01:00Z", deal="B", **{"from": "client"}), [], 5, "a.jsonl:2: chat 'x' belongs to deal 'A'"),
    ("a known chat named on another deal", "a.jsonl", line(chat="seed:1", at="2026-11-24T10:00:00Z", deal="B", **{"from": "client"}), [], 5, "a.jsonl:1: chat 'seed:1' belongs to deal 'seed:1'"),
    ("a truncated Telegram export", "result.json", '{"name": "Ana", "type": "personal_chat", "id": 1, "messages": [{"id": 1, "type": "message", "date_unixtime": "1763971200", "from": "Ana", "from_id": "user1", "text": "hola"}, {"id": 2,', [], 5, "result.json:1: broken Telegram export"),
    ("a JSON array", "a.json", "[1, 2, 3]", [], 5, "a.json:1: a JSON array"),
    ("an unknown JSON document", "a.json", '{\n "hello": "world"\n}', [], 5, "a.json:1: a JSON document chatcrm does not recognise"),
    ("text that is no export", "notes.md", "# my notes\nnothing here\n", [], 5, "notes.md:1: cannot tell the format"),
    ("a WhatsApp file with no headers", "chat.txt", "just some\ntext\n", ["--format", "whatsapp", "--agent", "x"], 5, "chat.txt:1: not a WhatsApp chat export"),
    ("a broken Messenger export", "message_1.json", '{"participants": [{"name": "a"}], "messages": [', ["--format", "messenger"], 5, "message_1.json:1: broken Messenger export"),
    ("a missing file", None, None, [], 2, "cannot read"),
    ("a folder", ".", None, [], 5, "holds no export chatcrm reads"),
    ("an unknown --format", "a.jsonl", GOOD, ["--format", "xml"], 2, "unknown format 'xml'"),
    ("an unknown --tz", "a.jsonl", GOOD, ["--tz", "Mars/Base"], 2, "unknown time zone"),
]


@pytest.fixture
def seeded(tmp_path):
    db = tmp_path / "seeded.db"
    assert run("ingest", "--db", db, write_jsonl(tmp_path / "seed.jsonl", [msg("seed:1", "2026-11-24T09:00:00Z", id="s")])).code == 0
    return db


def dump(db) -> str:
    conn = sqlite3.connect(db)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


@pytest.mark.parametrize("name, filename, content, extra, code, says", CORPUS, ids=[c[0] for c in CORPUS])
def test_bad_input_is_refused_with_one_line_and_nothing_written(name, filename, content, extra, code, says, seeded, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if filename is None:
        target = tmp_path / "does-not-exist.jsonl"
    elif content is None:
        target = tmp_path
    else:
        target = tmp_path / filename
        target.write_bytes(content.encode("utf-8", "surrogateescape") if "\xff" not in content else content.encode("latin-1"))
    before = dump(seeded)
    result = run("ingest", "--db", seeded, *extra, target)
    assert result.code == code, result.err
    assert result.err.startswith("Error: ") and result.err.endswith("\n") and result.err.count("\n") == 1, result.err
    assert says in result.err
    assert "Traceback" not in result.err and result.out == ""
    assert dump(seeded) == before


@pytest.mark.parametrize(
    "args, code, says",
    [
        (["reply", "nobody", "hi"], 3, "no deal 'nobody'"),
        (["close", "seed:1", "--chat", "99"], 3, "has no chat '99'"),
        (["complete", "seed:1", "--activity", "99"], 3, "has no activity '99'"),
        (["reply", "seed:1", "hi", "--at", "2026-13-01T00:00:00"], 2, "--at: unreadable time"),
        (["reply", "seed:1", "hi", "--at", "2026-11-24T08:00:00Z"], 4, "opened later"),
        (["reply", "seed:1", "   "], 2, "the reply text is empty"),
        (["close", "seed:1"], 4, "waiting since"),
        (["list", "--format", "yaml"], 2, "unknown --format 'yaml'"),
        (["list", "--limit", "-3"], 2, "--limit must be 0 or more"),
        (["timeline", "seed:1", "--format", "pdf"], 2, "unknown --format 'pdf'"),
    ],
)
def test_bad_commands_are_refused_with_one_line_and_nothing_written(args, code, says, seeded):
    before = dump(seeded)
    result = run(*args, "--db", seeded)
    assert result.code == code, result.err
    assert result.err.startswith("Error: ") and result.err.count("\n") == 1
    assert says in result.err
    assert dump(seeded) == before


def test_bad_CHATCRM_NOW_is_a_usage_error(seeded, monkeypatch):
    monkeypatch.setenv("CHATCRM_NOW", "tomorrow")
    result = run("reply", "seed:1", "hi", "--db", seeded)
    assert result.code == 2 and "CHATCRM_NOW" in result.err


def test_hostile_text_is_stored_and_shown_back_exactly(tmp_path):
    texts = [
        "'); DROP TABLE messages; --",
        'quotes " \' ` and \\ backslashes',
        "control \x00\x07\x1b[2J chars",
        "right-to-left \u202egnp.exe\u202c and \u200f marks",
        "x" * (1 << 20),
    ]
    events = [msg("h:1", f"2026-11-24T10:00:{n:02d}Z", text=t, author=t[:50], id=str(n)) for n, t in enumerate(texts)]
    assert run("ingest", write_jsonl(tmp_path / "h.jsonl", events)).code == 0
    shown = [e for e in run("timeline", "h:1", "-f", "json").json() if e["kind"] == "message"]
    assert [e["text"] for e in shown] == texts
    assert [e["author"] for e in shown] == [t[:50] for t in texts]
    table = run("timeline", "h:1").out
    assert "\x1b" not in table and "\u202e" not in table and "\x00" not in table
    assert run("check").code == 0
