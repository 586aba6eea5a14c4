"""A large import into an empty database builds the (chat key, uid) index once, at its end.

Every test imports with small flushes (conftest), so the first import of a test takes
this path; here its edges: messages repeated across flushes, a refused import, and the
same result as an import that keeps the index up to date all along.
"""

import sqlite3

import pytest

from chatcrm.store import open_store

from chatcrm import store as store_module
from chatcrm.store import batch as batch_module
from tests.helpers import msg, run, write_jsonl


def index_names(path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    finally:
        conn.close()


def facts(path) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT chat_key, uid, direction, author, text, sent_at FROM messages ORDER BY id").fetchall()
    finally:
        conn.close()


@pytest.fixture
def statements(monkeypatch) -> list[str]:
    """Every SQL statement the commands run from here on."""
    seen: list[str] = []
    real_open = store_module.open_store

    def traced(path=None, **options):
        store = real_open(path, **options)
        store.conn.set_trace_callback(seen.append)
        return store

    monkeypatch.setattr(store_module, "open_store", traced)
    return seen


def index_rebuilt(statements: list[str]) -> bool:
    dropped = "DROP INDEX messages_key" in statements
    assert dropped == any(s.startswith("CREATE UNIQUE INDEX messages_key") for s in statements)
    return dropped


def day_with_repeats() -> list[dict]:
    """Forty messages over four chats, then the same ids again (other text: the first
    stays), and two identical messages without an id (both stay: rules/identity.py)."""
    records = [
        msg(f"wa:{n % 4}", f"2026-11-24T09:{n:02d}:00Z", "client" if n % 3 else "agent", f"m{n}", id=f"m{n}")
        for n in range(40)
    ]
    records += [msg(f"wa:{n % 4}", f"2026-11-24T09:{n:02d}:00Z", "client", "changed", id=f"m{n}") for n in (1, 17, 38)]
    records += [msg("wa:9", "2026-11-24T10:00:00Z", text="ok"), msg("wa:9", "2026-11-24T10:00:00Z", text="ok")]
    return records


@pytest.mark.parametrize("flush_every", [3, 100_000], ids=["index built at the end", "index kept up to date"])
def test_repeated_messages_are_kept_once_and_said_so(flush_every, tmp_path, monkeypatch, statements):
    monkeypatch.setattr(batch_module, "FLUSH_EVERY", flush_every)
    db = tmp_path / "day.db"
    result = run("ingest", "--db", db, write_jsonl(tmp_path / "day.jsonl", day_with_repeats()))
    assert result.code == 0, result.err
    assert result.err.startswith("added 42 message(s) and 0 other event(s); 3 already present; 0 invalid")
    stored = facts(db)
    assert len(stored) == 42
    assert [text for _, uid, _, _, text, _ in stored if uid in ("id:m1", "id:m17", "id:m38")] == ["m1", "m17", "m38"]
    assert [uid.rsplit("#", 1)[1] for key, uid, *_ in stored if key == "wa:9"] == ["1", "2"]
    assert "messages_key" in index_names(db)
    assert index_rebuilt(statements) == (flush_every == 3)
    assert run("check", "--db", db).code == 0


def test_building_the_index_at_the_end_gives_what_keeping_it_gives(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATCRM_NOW", "2026-12-01T12:00:00Z")  # waiting times against one clock
    source = write_jsonl(tmp_path / "day.jsonl", day_with_repeats())
    monkeypatch.setenv("CHATCRM_NOW", "2026-11-24T18:00:00Z")  # both lists at one moment: waits compare
    outputs = []  # message ids differ (each flush is written in index order); nothing else
    monkeypatch.setenv("CHATCRM_NOW", "2026-11-24T12:00:00Z")  # `list` shows waits up to now
    for flush_every in (3, 100_000):
        monkeypatch.setattr(batch_module, "FLUSH_EVERY", flush_every)
        db = tmp_path / f"{flush_every}.db"
        assert run("ingest", "--db", db, source).code == 0
        outputs.append((sorted(facts(db)), run("list", "--db", db, "--format", "json").out, run("timeline", "--db", db, "wa:1").out))
    assert outputs[0] == outputs[1]


def test_a_refused_large_import_leaves_the_new_database_with_its_index_and_nothing_else(tmp_path):
    db = tmp_path / "new.db"
    # An empty database that exists already (a refused import into a missing one leaves none).
    open_store(db).close()
    records = day_with_repeats() + [{"type": "message", "chat": "wa:1", "at": "2026-11-24T11:00:00Z"}]  # no "from"
    result = run("ingest", "--db", db, write_jsonl(tmp_path / "bad.jsonl", records))
    assert result.code == 5
    assert result.err.endswith(f"bad.jsonl:{len(records)}: missing 'from' (client or agent)\n")
    assert facts(db) == []
    assert "messages_key" in index_names(db)


def test_an_import_into_a_database_with_messages_keeps_the_index_all_along(tmp_path, statements):
    db = tmp_path / "day.db"
    assert run("ingest", "--db", db, write_jsonl(tmp_path / "first.jsonl", [msg("wa:1", "2026-11-24T08:00:00Z")])).code == 0
    result = run("ingest", "--db", db, write_jsonl(tmp_path / "day.jsonl", day_with_repeats()))
    assert result.code == 0, result.err
    assert not index_rebuilt(statements)
    assert result.err.startswith("added 42 message(s) and 0 other event(s); 3 already present")
