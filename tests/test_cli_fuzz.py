"""Point 7: the CLI's arguments fuzzed. Random and mutated argument lists over every
command, on a small database: never a traceback or "internal error", always exit 0 or a
code of the README's table, and a refused command (or one that only reads) leaves the
database exactly as it was."""

import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from typer.main import get_command

from chatcrm.cli import app
from tests.helpers import FIXTURES, msg, run, write_jsonl

DOCUMENTED = {0, 1, 2, 3, 4, 5, 6, 7}  # the README's table; 7 is `list --exit-status` finding an overdue deal
READ_ONLY = {"list", "timeline", "stats", "export", "check", "search"}
COMMANDS = sorted(get_command(app).commands)

HOSTILE = ["", " ", "-", "--", "\x00", "\x1b[2J", "\u202e", "\x9b", "é", "１２", "💥", "'", '"', "%s", "{}", "\\", "\n",
           "x" * 300, "0", "-1", "3", "6", "8", "99", "D-1042", "wa:34600111222", str(10**20), "-" + str(10**20),
           "1e308", "nan", "inf", "0x10", "  7  ", "Luis", "Elena", "nobody"]
DEALS = ["1", "3", "6", "8", "99", "0", str(10**20), "9" * 19, "-1", "１２", "D-1042", "wa:34600111222", "", " 3 ", "-"]
TIMES = ["2026-11-24T17:00:00Z", "2026-11-24T17:00", "2026-11-24", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59Z",
         "1969-12-31T23:59:59Z", "2026-02-30T10:00:00Z", "2026-11-24T25:00:00Z", "24/11/2026", "yesterday", "7d", "0d",
         "100000000000000000000w", "1000000000000000000000000d", "PT15M", "P", "PT", "-7d", "2026-11-24T09:00:00+99:00"]
ZONES = ["UTC", "Z", "utc", "+03:00", "-0500", "+99:99", "-24:00", "+23:59", "Europe/Madrid", "Mars/Olympus", "../../etc",
         "Europe/Madrid\x00", "", "+", "EST5EDT"]
DURATIONS = ["15m", "1h30m", "0s", "-5m", "90", "1w", "PT15M", "100000000000000000000w", "9" * 50 + "s", "1y", "2d 3h"]
FORMATS = ["json", "jsonl", "csv", "ids", "simple", "github", "grid", "plain", "xml", "", "tsv", "telegram", "whatsapp",
           "messenger", "pdf"]
STATUSES = ["unread", "green", "grey", "red", "UNREAD", ""]

OPTIONS = {
    "--at": TIMES, "--tz": ZONES, "--sla": DURATIONS, "--interval": DURATIONS, "--since": TIMES, "--until": TIMES,
    "--format": FORMATS, "-f": FORMATS, "--status": STATUSES, "--limit": HOSTILE, "-n": HOSTILE, "--agent": HOSTILE,
    "--author": HOSTILE, "--chat": HOSTILE, "--activity": HOSTILE, "--deal": HOSTILE, "--idle": DURATIONS,
}
FLAGS = ["--force", "--complete", "--dry-run", "--skip-invalid", "--skip-refused", "--exit-status", "--watch", "--help", "-h", "--version", "--bogus", "-x"]


def values():
    return st.sampled_from(HOSTILE + TIMES + ZONES + DURATIONS) | st.text(max_size=12)


@st.composite
def argument_lists(draw, files):
    args = [draw(st.sampled_from(COMMANDS) | st.sampled_from(HOSTILE))]
    if draw(st.booleans()):  # the DEAL most commands take first
        args.append(draw(st.sampled_from(DEALS)))
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.integers(0, 5))
        if kind == 0:
            name = draw(st.sampled_from(sorted(OPTIONS)))
            args += [name, draw(st.sampled_from(OPTIONS[name]) | values())]
        elif kind == 1:
            args.append(draw(st.sampled_from(FLAGS)))
        elif kind == 2:
            args.append(draw(st.sampled_from(files)))
        elif kind == 3:
            args += ["--output" if draw(st.booleans()) else "-o", draw(st.sampled_from(files))]
        else:
            args.append(draw(values()))
    if draw(st.integers(0, 9)) == 0:  # mutate: drop, repeat or swap one argument
        at = draw(st.integers(0, len(args) - 1))
        action = draw(st.sampled_from(["drop", "repeat", "swap"]))
        if action == "drop":
            del args[at]
        elif action == "repeat":
            args.insert(at, args[at])
        elif len(args) > 1:
            args[0], args[at] = args[at], args[0]
    return args


def dump(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A small database and the files arguments may name, all in one folder."""
    folder = tmp_path_factory.mktemp("fuzz")
    template = folder / "template.db"
    saved = os.environ.get("CHATCRM_NOW")
    os.environ["CHATCRM_NOW"] = "2026-11-24T17:00:00Z"
    try:
        assert run("ingest", "--db", template, FIXTURES / "support-day.jsonl").code == 0
    finally:
        os.environ.pop("CHATCRM_NOW") if saved is None else os.environ.__setitem__("CHATCRM_NOW", saved)
    conn = sqlite3.connect(template)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    bad = folder / "bad.jsonl"
    bad.write_text('{"chat": "x", "at": "0001-01-01T00:00:00Z", "from": "client"}\n{not json\n')
    good = write_jsonl(folder / "good.jsonl", [msg("fuzz:1", "2026-11-24T16:00:00Z", text="=cmd|'/c calc'!A1")])
    (folder / "sub").mkdir()
    files = [str(good), str(bad), str(folder / "sub"), str(folder / "missing.jsonl"), "-", str(folder / "out.jsonl"),
             str(FIXTURES / "support-day.jsonl"), "/dev/null", str(folder / "sub" / "deep" / "x")]
    return folder, template, files, dump(template)


def fuzz(world, args, stdin, now, tz):
    folder, template, _, before = world  # each case starts from a copy of the template
    db = folder / "case.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(template, db)
    saved = {name: os.environ.get(name) for name in ("CHATCRM_DB", "CHATCRM_NOW", "CHATCRM_TZ")}
    os.environ["CHATCRM_DB"] = str(db)
    for name, value in (("CHATCRM_NOW", now), ("CHATCRM_TZ", tz)):
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        result = run(*args, input=stdin)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    shown = result.out + result.err
    assert "Traceback" not in shown and "internal error" not in shown, (args, result.err)
    assert result.code in DOCUMENTED, (args, result.code, result.err)
    if result.code not in (0, 7):  # 7: the queue is printed as usual, and it says so by its code alone
        last = result.err.rstrip("\n").rsplit("\n", 1)[-1]
        assert last.startswith("Error: "), (args, result.err)
    if result.code or (args and args[0] in READ_ONLY) or "--dry-run" in args or "--help" in args or "-h" in args:
        assert dump(db) == before, (args, result.code, result.err)


FUZZ = dict(deadline=None, database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])
STDIN = st.sampled_from([b"", b"hola\n", b"\xff\xfe", b'{"chat": "s:1", "at": "2026-11-24T10:00:00Z", "from": "client"}\n'])
ENV_NOW = st.sampled_from([None, "2026-11-24T17:00:00Z", "garbage", "0001-01-01T00:00:00+01:00", ""])
ENV_TZ = st.sampled_from([None, "UTC", "+99:99", "Europe/Madrid", "Mars/Olympus"])


def fuzzed(max_examples: int, derandomize: bool):
    @settings(max_examples=max_examples, derandomize=derandomize, **FUZZ)
    @given(data=st.data())
    def cases(world, data):
        args = data.draw(argument_lists(world[2]))
        fuzz(world, args, data.draw(STDIN), data.draw(ENV_NOW), data.draw(ENV_TZ))

    return cases


_every_run = fuzzed(1000, derandomize=True)
_more = fuzzed(int(os.environ.get("CHATCRM_FUZZ_EXAMPLES", "200")), derandomize=False)


@pytest.mark.slow
def test_point7_fuzzed_arguments_never_reach_a_traceback_and_refusals_write_nothing(world):
    """1,000 fixed cases on every run (derandomized: the same ones each time)."""
    _every_run(world)


@pytest.mark.slow
def test_point7_fuzzed_arguments_new_cases_each_run(world):
    """New random cases on each run: as many as $CHATCRM_FUZZ_EXAMPLES (default 200)."""
    _more(world)
