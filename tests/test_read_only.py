"""Point 5: other applications' files are left alone, and read-only commands never
create or change a database — on a read-only file, folder or mount included."""

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, ROOT, run

READ_ONLY = (["list"], ["list", "-f", "json"], ["timeline", "1"], ["stats"], ["export"], ["export", "-f", "csv"], ["check"])
WRITERS = (["reply", "1", "hola"], ["close", "1", "--force"], ["complete", "1", "--force"], ["assign", "1", "Elena"])
OLD_M002 = ROOT / "tests" / "fixtures" / "schema-m002.db"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def beside(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


@pytest.fixture
def day_db(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATCRM_NOW", "2026-11-24T17:00:00Z")
    db = tmp_path / "day" / "chatcrm.db"
    assert run("ingest", "--db", db, FIXTURES / "support-day.jsonl").code == 0
    conn = sqlite3.connect(db)  # as when the last process closes it: everything in the file itself
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return db


@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_point5_another_applications_sqlite_file_is_refused_and_left_byte_for_byte(tmp_path, journal):
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute(f"PRAGMA journal_mode={journal}")
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO notes (body) VALUES ('mine')")
    conn.commit()
    conn.close()
    before, files = digest(other), beside(other)
    for args in (*READ_ONLY, *WRITERS, ["ingest", FIXTURES / "support-day.jsonl"]):
        result = run(*args, "--db", other)
        assert result.code == 1, (args, result.err)
        assert "another application's SQLite database (it holds notes)" in result.err
        assert result.err.count("\n") == 1 and result.out == ""
        assert digest(other) == before and beside(other) == files, args
    assert sqlite3.connect(other).execute("PRAGMA journal_mode").fetchone()[0] == journal


def test_point5_a_file_that_is_not_sqlite_is_refused_unchanged(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("a shopping list\n" * 200)
    for args in (READ_ONLY[0], WRITERS[0], ["ingest", FIXTURES / "support-day.jsonl"]):
        result = run(*args, "--db", junk)
        assert result.code == 1 and "not a SQLite database" in result.err
    assert junk.read_text() == "a shopping list\n" * 200 and beside(junk) == ["notes.txt"]


def test_point5_no_command_but_ingest_creates_a_database(tmp_path):
    typo = tmp_path / "typo" / "chatcrm.db"
    for args in (*READ_ONLY, *WRITERS, ["list", "--limit", "x"], ["reply", "1", "hi", "--at", "nope"]):
        result = run(*args, "--db", typo)
        assert result.code in (1, 2), args
        assert not typo.parent.exists(), args
    missing = run("list", "--db", typo)
    assert missing.err == (f"Error: no chatcrm database at {typo} (it does not exist); importing creates one: "
                           "chatcrm ingest FILE (with the same --db or $CHATCRM_DB)\n")
    empty = tmp_path / "empty.db"
    empty.touch()
    for args in (["list"], ["reply", "1", "hola"], ["check"]):
        result = run(*args, "--db", empty)
        assert result.code == 1 and "(it is empty)" in result.err and empty.stat().st_size == 0


def test_point5_read_only_commands_leave_the_database_and_its_folder_as_they_were(day_db):
    before, files = digest(day_db), beside(day_db)
    for args in READ_ONLY:
        assert run(*args, "--db", day_db).code == 0, args
        assert digest(day_db) == before and beside(day_db) == files, args


def test_point5_an_older_schema_is_read_through_an_upgraded_copy_and_left_as_it_is(tmp_path):
    old = tmp_path / "m002.db"
    shutil.copyfile(OLD_M002, old)
    before = digest(old)
    listed = run("list", "-f", "json", "--db", old)
    assert listed.code == 0 and len(listed.json()) == 8
    assert "has an older schema; this reads an upgraded copy and leaves the file as it is" in listed.err
    assert run("check", "--db", old).code == 0
    assert digest(old) == before and beside(old) == ["m002.db"]
    names = [r[0] for r in sqlite3.connect(old).execute("SELECT name FROM _sqlite_migrations ORDER BY rowid")]
    assert names == ["m001_initial", "m002_assignments"]


def test_point5_check_reads_a_snapshot_without_blocking_a_writer(day_db, monkeypatch):
    from chatcrm.store import connection

    monkeypatch.setattr(connection, "BUSY_TIMEOUT_SECONDS", 0.5)  # a lock check waited for fails fast
    writer = sqlite3.connect(day_db, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a reply in progress holds the write lock
    writer.execute("UPDATE deals SET title = title")
    try:
        result = run("check", "--db", day_db)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert result.code == 0 and result.out.startswith("ok:"), result.err


def test_point5_problems_found_and_an_unusable_database_have_different_exit_codes(day_db, tmp_path):
    conn = sqlite3.connect(day_db)
    conn.execute("UPDATE deals SET open_chats = 9 WHERE id = 1")
    conn.commit()
    conn.close()
    assert run("check", "--db", day_db).code == 6
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"x" * 4096)
    assert run("check", "--db", junk).code == 1


def _as_nobody(args, env):
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m",
                           "chatcrm", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


def test_point5_read_only_commands_work_on_a_read_only_file_in_a_read_only_folder(day_db):
    """As another user where the tests run as root (root may write anything)."""
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: a read-only folder cannot be made")
    folder = Path(tempfile.mkdtemp(prefix="chatcrm-ro-"))
    try:
        db = folder / "fixture.db"
        shutil.copyfile(day_db, db)
        os.chmod(db, 0o444)
        os.chmod(folder, 0o555)
        before = digest(db)
        env = {**os.environ, "CHATCRM_DB": str(db), "HOME": str(folder)}
        for args in READ_ONLY:
            result = _as_nobody(args, env) if os.geteuid() == 0 else subprocess.run(
                [sys.executable, "-m", "chatcrm", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
            assert result.returncode == 0, (args, result.stderr)
            assert result.stdout
        assert digest(db) == before and os.listdir(folder) == ["fixture.db"]
    finally:
        os.chmod(folder, 0o755)
        shutil.rmtree(folder)


def test_point5_a_wal_database_on_a_read_only_mount_can_be_listed_and_checked(day_db):
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a read-only file system needs root")
    mountpoint = Path(tempfile.mkdtemp(prefix="chatcrm-mnt-"))
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "none", str(mountpoint)], capture_output=True).returncode:
        pytest.skip("this machine does not allow mounting")
    try:
        shutil.copyfile(day_db, mountpoint / "fixture.db")
        assert subprocess.run(["mount", "-o", "remount,ro", str(mountpoint)], capture_output=True).returncode == 0
        env = {**os.environ, "CHATCRM_DB": str(mountpoint / "fixture.db")}
        for args in (["list"], ["check"], ["export"]):
            result = subprocess.run([sys.executable, "-m", "chatcrm", *args], capture_output=True, text=True, env=env,
                                    cwd=ROOT, timeout=120)
            assert result.returncode == 0, (args, result.stderr)
        assert os.listdir(mountpoint) == ["fixture.db"]
    finally:
        subprocess.run(["umount", str(mountpoint)], capture_output=True)
        mountpoint.rmdir()


def test_point5_a_refused_import_into_a_new_database_leaves_no_database(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"chat": "x", "from": "client", "at": "0001-01-01T00:00:00Z"}\n')
    db = tmp_path / "new" / "chatcrm.db"
    assert run("ingest", "--db", db, bad).code == 5
    assert not db.exists() and os.listdir(db.parent) == []


def test_point5_shell_completion_of_employees_reads_without_leaving_files(day_db):
    from chatcrm.store.connection import employee_names_read_only

    before = beside(day_db)
    assert "Elena" in employee_names_read_only(day_db)
    assert beside(day_db) == before


def test_point5_a_read_only_folder_whose_wal_holds_changes_is_refused_not_read_stale(day_db):
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: a read-only folder cannot be made")
    folder = Path(tempfile.mkdtemp(prefix="chatcrm-ro-"))
    writer = sqlite3.connect(day_db)
    try:
        writer.execute("PRAGMA wal_autocheckpoint=0")
        writer.execute("UPDATE deals SET title = 'changed' WHERE id = 1")
        writer.commit()
        shutil.copyfile(day_db, folder / "fixture.db")
        shutil.copyfile(f"{day_db}-wal", folder / "fixture.db-wal")
        assert (folder / "fixture.db-wal").stat().st_size > 0
        for name in os.listdir(folder):
            os.chmod(folder / name, 0o444)
        os.chmod(folder, 0o555)
        env = {**os.environ, "CHATCRM_DB": str(folder / "fixture.db"), "HOME": str(folder)}
        result = _as_nobody(["list"], env) if os.geteuid() == 0 else subprocess.run(
            [sys.executable, "-m", "chatcrm", "list"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
        assert result.returncode == 1 and "its latest changes are in fixture.db-wal" in result.stderr
        assert result.stdout == "" and result.stderr.count("\n") == 1
    finally:
        writer.close()
        os.chmod(folder, 0o755)
        shutil.rmtree(folder)
