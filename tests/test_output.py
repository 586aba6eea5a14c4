"""Point 3: `--output` writes to what is there (chatcrm/output.py)."""

import os
import shutil
import stat
import subprocess
import sys
import threading

import pytest

from tests.helpers import ROOT, msg, run, write_jsonl


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATCRM_NOW", "2026-11-24T12:00:00Z")
    records = [msg("tg:1", "2026-11-24T10:00:00Z", text="hola"), msg("tg:2", "2026-11-24T10:05:00Z", text="hey")]
    assert run("ingest", write_jsonl(tmp_path / "in.jsonl", records)).code == 0
    return tmp_path / "chatcrm.db"


def chatcrm(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "chatcrm", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=60, **kwargs)


def test_point3_a_device_is_written_in_place_never_replaced(db):
    result = run("export", "-o", os.devnull)
    assert result.code == 0, result.err
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
    full = run("export", "-o", "/dev/full")
    assert full.code == 1 and full.err.startswith("Error: cannot write /dev/full: No space left on device")
    assert full.err.count("\n") == 1 and stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_point3_a_named_pipe_is_written_to_its_reader(db, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text(encoding="utf-8")))
    reader.start()
    result = run("export", "-o", fifo)
    reader.join(10)
    assert result.code == 0, result.err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert got and got[0].count("\n") == 2 and '"hola"' in got[0]


def test_point3_dev_stdout_and_a_process_substitution_receive_the_export(db, tmp_path):
    env = {**os.environ, "CHATCRM_DB": str(db)}
    to_stdout = chatcrm("export", "-o", "/dev/stdout", env=env)
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert to_stdout.stdout.count("\n") == 2 and "exported 2 event(s) to /dev/stdout" in to_stdout.stderr
    bash = shutil.which("bash")
    if bash:
        script = f'"{sys.executable}" -m chatcrm export -o >(gzip > "{tmp_path}/x.gz"); wait'
        done = subprocess.run([bash, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        unzipped = subprocess.run(["gzip", "-dc", str(tmp_path / "x.gz")], capture_output=True, text=True, timeout=30)
        assert unzipped.stdout.count("\n") == 2


def test_point3_a_symlink_is_followed_and_an_existing_file_keeps_its_mode(db, tmp_path):
    target = tmp_path / "real.jsonl"
    target.write_text("old\n")
    os.chmod(target, 0o640)
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    before = os.stat(target).st_ino
    assert run("export", "-o", link).code == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text().count("\n") == 2
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    assert os.stat(target).st_ino != before  # replaced through a rename, not rewritten in place
    dangling = tmp_path / "dangling.jsonl"
    dangling.symlink_to(tmp_path / "made.jsonl")
    assert run("export", "-o", dangling).code == 0
    assert dangling.is_symlink() and (tmp_path / "made.jsonl").read_text().count("\n") == 2
    assert stat.S_IMODE(os.stat(tmp_path / "made.jsonl").st_mode) == 0o600
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".chatcrm-")]


def test_point3_a_folder_or_an_unwritable_place_is_a_clean_usage_error(db, tmp_path):
    for place in (tmp_path, tmp_path / "missing" / "x.jsonl", ""):
        result = run("export", "-o", place)
        assert result.code == 2, (place, result.err)
        assert result.err.startswith("Error: ") and result.err.count("\n") == 1
    assert "it is a folder" in run("export", "-o", tmp_path).err
    if os.geteuid() != 0:  # root may write anything
        locked = tmp_path / "locked.jsonl"
        locked.write_text("keep\n")
        os.chmod(locked, 0o444)
        assert run("export", "-o", locked).code == 2 and locked.read_text() == "keep\n"


def test_point3_dev_stdout_appended_to_a_file_is_written_through_the_descriptor(db, tmp_path):
    log = tmp_path / "log.txt"
    log.write_text("earlier\n")
    with open(log, "a") as stream:
        result = subprocess.run(
            [sys.executable, "-m", "chatcrm", "export", "-o", "/dev/stdout"], stdout=stream, stderr=subprocess.PIPE,
            text=True, cwd=ROOT, timeout=60, env={**os.environ, "CHATCRM_DB": str(db)})
    assert result.returncode == 0, result.stderr
    assert log.read_text().startswith("earlier\n") and log.read_text().count("\n") == 3


@pytest.mark.parametrize("name", ["chatcrm.db", "link.jsonl", "hard.db", "chatcrm.db-wal", "chatcrm.db-shm",
                                  "sub/../chatcrm.db"])
def test_point3_the_database_being_read_is_never_the_output(db, tmp_path, name):
    (tmp_path / "sub").mkdir()
    os.symlink(db, tmp_path / "link.jsonl")
    os.link(db, tmp_path / "hard.db")
    before = db.read_bytes()
    result = run("export", "--db", db, "-o", tmp_path / name)
    assert result.code == 2
    assert result.err == f"Error: cannot write {tmp_path / name}: it is the database being read; name another file\n"
    assert db.read_bytes() == before and run("list", "--db", db).code == 0
    assert not list(tmp_path.glob(".chatcrm-*.tmp"))
