"""Point 7: every error the issue lists is one clean line with its documented exit code."""

import errno
import io
import os
import shutil
import subprocess
import sys

import pytest

from tests.helpers import FIXTURES, ROOT, run

HUGE = str(10**20)


@pytest.fixture
def day(monkeypatch):
    monkeypatch.setenv("CHATCRM_NOW", "2026-11-24T17:00:00Z")
    assert run("ingest", FIXTURES / "support-day.jsonl").code == 0


def clean(result, code):
    assert result.code == code, result.err
    assert "internal error" not in result.err and "Traceback" not in result.err
    if code:
        assert result.err.startswith("Error: ") and result.err.count("\n") == 1, result.err


@pytest.mark.parametrize("args, code", [
    (["list", "--tz", "+99:99"], 2),
    (["list", "--limit", HUGE], 0),
    (["list", "--limit", "-" + HUGE], 2),
    (["timeline", HUGE], 3),
    (["reply", HUGE, "hola"], 3),
    (["close", HUGE], 3),
    (["complete", HUGE], 3),
    (["assign", HUGE, "Elena"], 3),
    (["export", "--deal", HUGE], 3),
    (["timeline", "１２"], 3),  # full-width digits are a key, not an id
    (["close", "6", "--chat", HUGE], 3),
    (["complete", "6", "--activity", HUGE], 3),
    (["list", "--sla", "100000000000000000000w"], 2),
    (["stats", "--since", "1000000000000000000000000d"], 2),
    (["reply", "3", "hola", "--at", "0001-01-01T00:00:00+05:00"], 2),
    (["search", "hola", "--limit", HUGE], 0),
    (["outbox", "--limit", HUGE], 0),
    (["changes", "--limit", HUGE], 0),
    (["close", "--idle", "1h30m", "--at", "1970-01-01T00:00:00Z"], 0),  # nothing can be quiet since before 1970
    (["deliver", "--command", "true", "--timeout", "417000w"], 2),
    (["list", "--tz", "A" * 100_000], 2),
])
def test_point7_the_issues_cases_are_clean_errors(day, args, code):
    clean(run(*args), code)


def test_point7_a_full_stdout_is_a_clean_error(day, monkeypatch):
    class Full(io.StringIO):
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    from chatcrm import cli

    err = io.StringIO()
    monkeypatch.setattr(sys, "stdout", Full())
    monkeypatch.setattr(sys, "stderr", err)
    with pytest.raises(SystemExit) as exit:
        cli.main(["list"])
    assert exit.value.code == 1
    assert err.getvalue() == "Error: cannot write the output: No space left on device\n"


def test_point7_list_to_dev_full_and_ingest_from_a_closed_stdin(tmp_path):
    env = {**os.environ, "CHATCRM_DB": str(tmp_path / "p.db")}
    python = [sys.executable, "-m", "chatcrm"]
    assert subprocess.run([*python, "ingest", FIXTURES / "support-day.jsonl"], env=env, capture_output=True).returncode == 0
    with open("/dev/full", "w") as full:
        listed = subprocess.run([*python, "list"], env=env, stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    assert listed.returncode == 1 and listed.stderr == "Error: cannot write the output: No space left on device\n"
    bash = shutil.which("bash")
    if bash:
        command = " ".join(f"'{part}'" for part in python)
        for args, code in (("ingest -", 2), ("reply 3 -", 2), ("complete -", 2), ("close -", 2),
                           ("assign - Elena", 2), ("reply - hola", 2)):
            closed = subprocess.run([bash, "-c", f"{command} {args} <&-"], env=env, cwd=ROOT, capture_output=True,
                                    text=True, timeout=60)
            assert closed.returncode == code, closed.stderr
            assert closed.stderr.endswith("reads stdin, but stdin is closed\n") and closed.stderr.count("\n") == 1


def test_point7_a_reply_from_stdin_that_is_not_utf8_is_invalid_input(day):
    clean(run("reply", "3", "-", input=b"\xff\xfe hola"), 5)


@pytest.mark.parametrize("args", [["close", "-"], ["complete", "-"], ["assign", "-", "Elena"], ["reply", "-", "hola"]])
def test_point7_deals_from_stdin_that_are_not_utf8_are_invalid_input(day, args):
    before = run("export").out
    result = run(*args, input=b"3\n\xff\n")
    assert (result.code, result.err) == (5, "Error: <stdin>: not UTF-8 text (byte 3)\n")
    assert run("export").out == before


def test_point7_a_file_name_that_is_not_utf8_is_imported_and_recorded_escaped(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATCRM_DB", str(tmp_path / "n.db"))
    name = os.fsdecode(str(tmp_path).encode() + b"/lat\xe9.jsonl")  # as the shell passes such a name
    shutil.copy(FIXTURES / "support-day.jsonl", name)
    folder = os.fsdecode(str(tmp_path).encode() + b"/carpeta \xe9")
    os.mkdir(folder)
    shutil.copy(FIXTURES / "whatsapp" / "WhatsApp Chat with Marta Gómez.txt",
                os.fsdecode(os.fsencode(folder) + b"/WhatsApp Chat with Mar\xeda.txt"))
    imported = run("ingest", name)
    assert imported.code == 0 and imported.err.endswith(f"— {tmp_path}/lat\\xe9.jsonl (jsonl)\n")
    assert run("ingest", "--agent", "Tienda Sol", folder).code == 0
    files = [f["name"] for change in run("changes", "-f", "json").json() for f in change["files"]]
    assert files == [f"{tmp_path}/carpeta \\xe9/WhatsApp Chat with Mar\\xeda.txt", f"{tmp_path}/lat\\xe9.jsonl"]


@pytest.mark.parametrize("args, byte", [(["reply", "3", b"ol\xe1"], 3), (["assign", "3", b"Mar\xeda"], 4),
                                        (["search", b"\xff"], 1), (["ingest", b"no-such-\xe9.jsonl"], 9)])
def test_point7_an_argument_that_is_not_utf8_is_invalid_input(day, args, byte):
    before = run("export").out
    result = run(*[os.fsdecode(a) if isinstance(a, bytes) else a for a in args])
    shown = args[-1].decode("utf-8", "backslashreplace")
    assert (result.code, result.err) == (5, f"Error: argument {len(args)} ('{shown}') is not UTF-8 text (byte {byte})\n")
    assert run("export").out == before


def test_point4_an_error_quotes_a_short_excerpt_of_a_huge_zone(day):
    result = run("list", "--tz", "A" * 100_000)
    assert result.code == 2 and len(result.err) < 200 and "…'" in result.err


@pytest.mark.parametrize("args", [["timeline", "9" * 10_000], ["search", "(" * 10_000], ["close", "-"]])
def test_point4_errors_quote_short_excerpts_of_what_they_were_given(day, args):
    stdin = "".join(f"no-such-{n}\n" for n in range(50)) if args[-1] == "-" else None
    result = run(*args, input=stdin)
    assert result.code in (2, 3) and result.err.count("\n") == 1 and len(result.err) < 400, result.err
    if stdin:
        assert "'no-such-9' and 40 more" in result.err


def test_point4_the_search_summary_quotes_a_short_excerpt_of_a_long_query(day):
    result = run("search", " OR ".join(["hola"] * 300))
    assert result.code == 0 and len(result.err) < 200, result.err


def test_point6_a_follow_up_after_the_latest_time_kept_says_so(day):
    result = run("remind", "4", "1s", "--at", "9999-12-30T23:59:59Z")
    assert (result.code, result.err) == (
        2, "Error: WHEN: 1s from now is after 9999-12-30T23:59:59Z, the latest time chatcrm keeps\n")


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(2, 130), (15, 143)])
def test_point7_an_import_stopped_part_way_into_a_new_database_leaves_none(tmp_path, signum, code):
    import signal
    import time

    from chatcrm import bench

    events = tmp_path / "many.jsonl"
    bench.generate(events, 200_000, 20_000)
    db = tmp_path / "new" / "chatcrm.db"
    process = subprocess.Popen([sys.executable, "-m", "chatcrm", "ingest", "--db", str(db), str(events)],
                               stderr=subprocess.PIPE, text=True, cwd=ROOT)
    deadline = time.monotonic() + 30
    while not db.exists() and time.monotonic() < deadline:  # the import is under way
        time.sleep(0.02)
    time.sleep(0.3)
    process.send_signal(signal.Signals(signum))
    _, err = process.communicate(timeout=60)
    if process.returncode == 0:
        pytest.skip("the import finished before the signal came")
    assert process.returncode == code, err
    assert err.endswith(("Error: interrupted\n", "Error: stopped (SIGTERM)\n")) and err.count("Error") == 1
    assert not db.exists() and not list(db.parent.iterdir())


def test_point4_a_named_pipe_in_an_export_folder_is_passed_over_not_waited_on(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATCRM_DB", str(tmp_path / "f.db"))
    folder = tmp_path / "export"
    folder.mkdir()
    os.mkfifo(folder / "_chat.txt")
    shutil.copy(FIXTURES / "whatsapp" / "WhatsApp Chat with Marta Gómez.txt", folder)
    result = run("ingest", "--agent", "Tienda Sol", folder)
    assert result.code == 0 and "added 6 message(s)" in result.err


def test_point7_stdin_named_twice_is_a_usage_error(day):
    result = run("ingest", "-", "-", input="")
    assert (result.code, result.err) == (2, "Error: - reads stdin, which can be read once: give - once\n")


@pytest.mark.parametrize("args", [["ingest", "\x00"], ["reply", "3", "a\x00b"], ["list", "--db", "x\x00y"]])
def test_point7_an_argument_holding_a_nul_is_invalid_input(day, args):
    result = run(*args)
    assert (result.code, result.err) == (5, f"Error: argument {len(args)} holds a NUL character\n")
