"""An older database is upgraded in place with nothing lost; a failed upgrade changes nothing.

`tests/fixtures/schema-m001.db` was made by the first released schema (m001_initial):
the sample day imported, then a reply and a close, with CHATCRM_NOW fixed.
`tests/fixtures/schema-m002.db` was made by the second (m002_assignments), with
CHATCRM_NOW=2026-11-24T18:30:00Z: `ingest fixtures/support-day.jsonl`, `assign 8 Marta`,
`reply 6 "Ahora lo miro" --author Marta --chat 6`, `close 6 --chat 6`.
"""

import shutil
import sqlite3
from pathlib import Path

import pytest

from chatcrm.store import schema
from chatcrm.store import open_store
from tests.helpers import FIXTURES, ROOT, run
from chatcrm.store import verify

OLD = Path(__file__).parent / "fixtures" / "schema-m001.db"
OLD_M002 = Path(__file__).parent / "fixtures" / "schema-m002.db"
FACTS = {
    # an id-less message's identity is named anew by m004 (its digest; not its occurrence)
    "messages": "SELECT id, chat_key, CASE WHEN uid LIKE 'h:%' THEN 'h:#' || substr(uid, instr(uid, '#') + 1) "
    "ELSE uid END, direction, author, text, sent_at, seq FROM messages ORDER BY id",
    "chat_events": "SELECT id, chat_key, kind, at, session FROM chat_events ORDER BY id",
    "chat_keys": "SELECT * FROM chat_keys ORDER BY key",
    "deals": "SELECT id, key, title, contact_id, created_at, status, waiting_since, open_chats, active_activities "
    "FROM deals ORDER BY id",
    "chats": "SELECT id, chat_key, deal_id, opened_at, closed_at, waiting_since FROM chats ORDER BY id",
    # the activities' own columns (m005 adds their follow-ups, none in an older database)
    "activities": "SELECT id, chat_id, deal_id, created_at, completed_at FROM activities ORDER BY id",
}


def read(path: Path, sql: str):
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def migrations_of(path: Path) -> list[str]:
    return [row[0] for row in read(path, "SELECT name FROM _sqlite_migrations ORDER BY id")]


def dump(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def opens_current_and_sound(path: Path) -> None:
    """Opening brings the file to the current schema, and `check` finds nothing wrong."""
    store = open_store(path)
    try:
        assert verify.check(store) == []
    finally:
        store.close()
    assert migrations_of(path) == [m.name for m in schema.migrations._migrations]


@pytest.fixture
def old_db(tmp_path) -> Path:
    path = tmp_path / "old.db"
    shutil.copyfile(OLD, path)
    assert migrations_of(path) == ["m001_initial"]
    return path


def test_an_m001_database_is_upgraded_in_place_with_nothing_lost(old_db):
    before = {table: read(old_db, sql) for table, sql in FACTS.items()}
    assert len(before["messages"]) == 24 and len(before["chat_events"]) == 6

    opens_current_and_sound(old_db)
    for table, sql in FACTS.items():
        assert read(old_db, sql) == before[table], table
    # What the new schema derives from the old facts: each chat's responsible employee.
    responsible = dict(read(old_db, "SELECT key, responsible FROM deals"))
    assert responsible["wa:34600111222"] == "Luis"  # the reply recorded before the upgrade
    assert responsible["tg:5550001"] == "Luis" and responsible["wa:34611222333"] == "Elena"


def test_the_upgraded_database_keeps_working_through_the_commands(old_db, monkeypatch):
    monkeypatch.setenv("CHATCRM_DB", str(old_db))
    monkeypatch.setenv("CHATCRM_NOW", "2026-11-24T18:30:00Z")
    rows = run("list", "--format", "json").json()
    assert [r["deal_id"] for r in rows] == [6, 8, 2, 3, 4, 5, 7, 1]
    assert run("assign", "8", "Marta").code == 0
    assert [r["deal_id"] for r in run("list", "--agent", "Marta", "--format", "json").json()] == [8]
    assert run("check").code == 0


def test_a_failed_upgrade_leaves_the_old_database_intact(old_db, monkeypatch):
    before = dump(old_db)

    # m002 runs all its statements, then the upgrade fails part-way.
    with monkeypatch.context() as patch:
        patch.setattr(schema.migrations, "_migrations", _failing_upgrade(RuntimeError("disk on fire")))
        with pytest.raises(RuntimeError, match="disk on fire"):
            open_store(old_db)

    assert dump(old_db) == before
    assert migrations_of(old_db) == ["m001_initial"]
    # Once the cause is gone, the same file upgrades normally.
    opens_current_and_sound(old_db)


def _failing_upgrade(error: BaseException):
    def broken(db):
        schema.m002_assignments(db)
        raise error

    return [
        schema.migrations._Migration(m.name, broken if m.name == "m002_assignments" else m.fn, m.transactional)
        for m in schema.migrations._migrations
    ]


def test_a_failed_upgrade_through_the_cli_is_one_line_and_changes_nothing(old_db, monkeypatch):
    before = dump(old_db)
    monkeypatch.setenv("CHATCRM_DB", str(old_db))
    monkeypatch.setattr(schema.migrations, "_migrations", _failing_upgrade(sqlite3.OperationalError("database or disk is full")))
    result = run("reply", "1", "hola")  # a command that writes upgrades the file in place
    assert result.code == 1
    assert result.err == f"Error: cannot bring {old_db} to the current schema: database or disk is full; it is unchanged\n"
    assert result.out == ""
    assert dump(old_db) == before


def test_a_new_database_gets_every_migration(tmp_path):
    store = open_store(tmp_path / "new.db")
    store.close()
    assert migrations_of(tmp_path / "new.db") == [m.name for m in schema.migrations._migrations]


def test_an_m002_database_is_upgraded_in_place_with_nothing_lost(tmp_path, monkeypatch):
    path = tmp_path / "m002.db"
    shutil.copyfile(OLD_M002, path)
    assert migrations_of(path) == ["m001_initial", "m002_assignments"]
    facts = {**FACTS, "assignments": "SELECT * FROM assignments ORDER BY id"}
    before = {table: read(path, sql) for table, sql in facts.items()}
    assert len(before["messages"]) == 24 and len(before["assignments"]) == 1

    opens_current_and_sound(path)
    for table, sql in facts.items():
        assert read(path, sql) == before[table], table
    # m003: a message's (chat key, uid) is unique through a named index now.
    indexes = {row[0] for row in read(path, "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages'")}
    assert indexes == {"messages_key"}
    monkeypatch.setenv("CHATCRM_DB", str(path))
    again = run("ingest", ROOT / "fixtures" / "support-day.jsonl")
    assert again.code == 0 and again.err.startswith("added 0 message(s) and 0 other event(s); 28 already present")
    assert dict(read(path, "SELECT key, responsible FROM deals"))["web:77aa"] == "Marta"


def test_upgrading_a_large_database_says_so_on_stderr_only(old_db, monkeypatch):
    from chatcrm.store import connection

    monkeypatch.setenv("CHATCRM_DB", str(old_db))
    day = FIXTURES / "support-day.jsonl"
    quiet = run("ingest", "--db", m002_copy(old_db.parent), day)  # a command that writes upgrades in place
    assert quiet.code == 0 and "upgrading" not in quiet.err  # a small one: no word of it
    monkeypatch.setattr(connection, "UPGRADE_NOTICE_BYTES", 0)
    result = run("ingest", day)
    assert result.code == 0 and result.out == ""
    assert result.err.startswith(
        f"upgrading {old_db} (0 MiB) to the current schema (m002_assignments, m003_messages_key_index, "
        "m004_identity_without_direction, m005_search_and_idle_index, m006_stored_waits, "
        "m007_follow_ups, m008_live_channels, m009_change_log, m010_live_facts_in_the_change_log, "
        "m011_chat_channels, m012_first_repliers, m013_queue_counts); "
        "this happens once and may take a minute\n"
    )
    assert run("list").err == ""  # once


def m002_copy(folder: Path) -> Path:
    path = folder / "m002-copy.db"
    shutil.copyfile(OLD_M002, path)
    return path
