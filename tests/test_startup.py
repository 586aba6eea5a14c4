"""Each command loads only what it uses (the benchmark measures how fast they start; these
tests pin what they import, which is what that speed is made of), and building only the
invoked command changes nothing anyone sees: every help text and usage error is the one
the whole group gives."""

import json
import os
import subprocess
import sys

import pytest
from typer.main import get_command

from chatcrm.cli import _click_group, _plain_usage, app
from tests.helpers import FIXTURES, run

NOW = "2026-11-24T18:00:00Z"

# Run in a fresh interpreter: the command, then the names of every module it loaded
# (through chatcrm.cli, or through chatcrm.launch as the console script runs it).
PROBE = """
import json, sys
from chatcrm.{entry} import main
code = 0
try:
    main(sys.argv[2:])
except SystemExit as exit:
    code = exit.code
with open(sys.argv[1], "w") as out:
    json.dump({{"code": code, "modules": sorted(sys.modules)}}, out)
"""

NEVER = ("sqlite_utils", "chatcrm.importers", "dateutil", "ijson", "orjson", "rich")
TABLE = ("tabulate",)
WRITE_ONLY = ("chatcrm.store.batch", "chatcrm.store.changes", "chatcrm.store.projection", "chatcrm.derive")


@pytest.fixture
def database(tmp_path):
    db = tmp_path / "support.db"
    assert run("ingest", "--db", db, FIXTURES / "support-day.jsonl").code == 0
    return db


def loaded(tmp_path, *args) -> set[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CHATCRM_")}
    # No settings file (a home of its own): the commands must not load a TOML parser for it.
    env.update(CHATCRM_NOW=NOW, CHATCRM_TZ="UTC", CHATCRM_AGENT="Luis", HOME=str(tmp_path),
               XDG_CONFIG_HOME=str(tmp_path))
    report = tmp_path / "modules.json"
    run_ = subprocess.run([sys.executable, "-c", PROBE.format(entry="cli"), str(report), *map(str, args)], env=env, check=True,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=60)
    result = json.loads(report.read_text())
    assert result["code"] == 0, run_.stderr  # what a command loads when it does its work
    return set(result["modules"])


def imported(modules: set[str], names) -> list[str]:
    return sorted(m for m in modules for name in names if m == name or m.startswith(name + "."))


@pytest.mark.parametrize("args", [
    ["reply", "3", "Lo miro ahora"],
    ["close", "4"],
    ["complete", "7"],
    ["assign", "8", "Elena"],
    ["remind", "4", "2h"],
])
def test_writing_commands_load_neither_the_importers_nor_the_other_operations(tmp_path, database, args):
    modules = loaded(tmp_path, *args, "--db", database)
    assert "chatcrm.actions" in modules
    assert imported(modules, (*NEVER, *TABLE, "chatcrm.service", "tomllib", "tomli")) == []
    # message identity is hashed with BLAKE2 alone: OpenSSL's module is never loaded
    assert "_hashlib" not in modules


def test_reading_commands_load_no_writing_machinery(tmp_path, database):
    modules = loaded(tmp_path, "list", "--format", "json", "--db", database)
    assert "chatcrm.listing" in modules
    assert imported(modules, (*NEVER, *TABLE, *WRITE_ONLY, "chatcrm.service", "chatcrm.actions", "tomllib", "tomli",
                              "csv")) == []
    table = loaded(tmp_path, "list", "--db", database)
    assert "tabulate" in table
    assert imported(table, (*NEVER, *WRITE_ONLY)) == []
    timeline = loaded(tmp_path, "timeline", "3", "--db", database)
    assert imported(timeline, (*NEVER, *WRITE_ONLY)) == []


def test_help_loads_no_command(tmp_path):
    modules = loaded(tmp_path, "--help")  # through typer, as a narrow terminal gets it
    ours = sorted(m for m in modules if m.startswith("chatcrm"))
    assert ours == ["chatcrm", "chatcrm.cli", "chatcrm.errors", "chatcrm.launch"]
    assert imported(modules, (*NEVER, *TABLE, "sqlite3")) == []


# ------------------------------------------------------------------ the group's help, without typer


def launched(tmp_path, *args, **env):
    """`chatcrm ARGS` as the console script runs it (chatcrm.launch), in a fresh interpreter
    whose stdout is a pipe: exit code, stdout, stderr and the modules it loaded."""
    environ = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "_CHATCRM_COMPLETE")}
    environ.update(env)
    report = tmp_path / "launched.json"
    done = subprocess.run([sys.executable, "-c", PROBE.format(entry="launch"), str(report), *args], env=environ,
                          capture_output=True,
                          text=True, timeout=60)
    result = json.loads(report.read_text()) if report.exists() else {"code": done.returncode, "modules": []}
    return result["code"], done.stdout, done.stderr, set(result["modules"])


def typer_help(columns: int, args=("--help",)) -> str:
    """The group's help as typer renders it at a terminal `columns` wide."""
    import typer._click.formatting as formatting

    saved, formatting.FORCED_WIDTH = formatting.FORCED_WIDTH, max(min(columns, 80) - 2, 50)
    try:
        result = run(*args)
    finally:
        formatting.FORCED_WIDTH = saved
    assert result.code == 0 and result.err == ""
    return result.out


@pytest.mark.parametrize("args", [["--help"], ["-h"], []])
def test_the_groups_help_is_typers_without_loading_typer(tmp_path, args):
    """`chatcrm --help`, `-h` and a bare `chatcrm` print the help typer renders, from
    chatcrm.launch.HELP, loading neither typer nor chatcrm.cli."""
    from chatcrm import launch

    assert launch.HELP == typer_help(80, args) == typer_help(200, args)
    for columns in ("", "80", "132"):  # no COLUMNS: a pipe, read as 80 columns
        code, out, err, modules = launched(tmp_path, *args, **({"COLUMNS": columns} if columns else {}))
        assert (code, out, err) == (0, launch.HELP, "")
        assert imported(modules, ("typer", "click", "chatcrm.cli", "sqlite3")) == []


@pytest.mark.parametrize("columns", [60, 79])
def test_a_terminal_narrower_than_80_columns_gets_the_help_typer_wraps_to_it(tmp_path, columns):
    from chatcrm import launch

    narrow = typer_help(columns)
    assert narrow != launch.HELP
    code, out, err, modules = launched(tmp_path, "--help", COLUMNS=str(columns))
    assert (code, out, err) == (0, narrow, "") and "typer" in modules


def test_python_without_docstrings_gets_typers_help(tmp_path):
    """`python -OO` strips the docstrings typer lists the commands' summaries from."""
    code, out, err, modules = launched(tmp_path, "--help", PYTHONOPTIMIZE="2")
    assert code == 0 and "typer" in modules and out.startswith("Usage: chatcrm [OPTIONS] COMMAND")


@pytest.mark.parametrize("args", [["--help"], ["list", "--format", "json"]])
def test_a_closed_standard_output_is_one_clear_error_before_anything_runs(tmp_path, args):
    environ = {key: value for key, value in os.environ.items() if not key.startswith("CHATCRM_")}
    environ.update(CHATCRM_DB=str(tmp_path / "never.db"), HOME=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "chatcrm", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env=environ, text=True, timeout=60, preexec_fn=lambda: os.close(1))
    assert (done.returncode, done.stderr) == (1, "Error: cannot write the output: standard output is closed\n")
    assert not (tmp_path / "never.db").exists()


def test_shell_completion_is_left_to_typer(tmp_path):
    code, out, err, modules = launched(tmp_path, _CHATCRM_COMPLETE="complete_bash", COMP_WORDS="chatcrm li",
                                       COMP_CWORD="1")
    assert "list" in out.split() and "Usage:" not in out and "typer" in modules


@pytest.mark.parametrize("columns", ["", "0", "-4", "wide", "79", "80", "250"])
def test_the_terminal_width_is_read_as_shutil_reads_it(columns, monkeypatch):
    import shutil

    from chatcrm import launch

    monkeypatch.setenv("COLUMNS", columns)
    assert launch.terminal_columns() == shutil.get_terminal_size().columns


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("columns", ["80", "60"])  # the help from launch, and from typer
def test_help_into_a_full_disk_fails_as_every_command_does(columns):
    environ = {**os.environ, "COLUMNS": columns}
    environ.pop("_CHATCRM_COMPLETE", None)
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "chatcrm", "--help"], stdout=full, stderr=subprocess.PIPE,
                              env=environ, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (1, "Error: cannot write the output: No space left on device\n")


def test_a_settings_file_is_still_parsed_when_there_is_one(tmp_path, monkeypatch):
    (tmp_path / "settings.toml").write_text('tz = "Europe/Madrid"\n')
    monkeypatch.setenv("CHATCRM_CONFIG", str(tmp_path / "settings.toml"))
    monkeypatch.delenv("CHATCRM_TZ", raising=False)
    result = run("config", "--format", "json")
    assert result.code == 0, result.err
    assert [(r["value"], r["source"]) for r in json.loads(result.out) if r["setting"] == "tz"] == [("Europe/Madrid", f"{tmp_path / 'settings.toml'}:1")]


def _help(group, args) -> str:
    import contextlib
    import io

    _plain_usage(group)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        group.main(args=list(args), prog_name="chatcrm", standalone_mode=False)
    return out.getvalue()


COMMANDS = sorted(get_command(app).commands)


@pytest.mark.parametrize("args", [["--help"], *([name, "--help"] for name in COMMANDS)])
def test_building_only_the_invoked_command_gives_the_same_help(args):
    assert _help(_click_group(args), args) == _help(get_command(app), args)


def test_only_the_invoked_command_is_built_whole():
    group = _click_group(["reply", "3", "hola"])
    assert [p.name for p in group.commands["reply"].params if p.name == "author"] == ["author"]
    assert group.commands["list"].params == []  # a stand-in: its name and help only
    assert set(group.commands) == set(COMMANDS)


def test_completion_gets_every_command_whole(monkeypatch):
    monkeypatch.setenv("_CHATCRM_COMPLETE", "complete_bash")
    group = _click_group(["list"])
    assert all(command.params for command in group.commands.values())


@pytest.mark.parametrize("args", [["lst"], ["reply"], ["list", "--bogus"], ["--bogus"]])
def test_usage_errors_are_the_same_as_with_every_command_built(args, monkeypatch):
    light = run(*args)
    import chatcrm.cli as cli

    monkeypatch.setattr(cli, "_click_group", lambda _args: get_command(app))  # every command built, as before
    whole = run(*args)
    assert (light.code, light.err) == (whole.code, whole.err)
    assert light.code == 2


@pytest.mark.parametrize("columns", ["80", "60"])
def test_help_into_a_pipe_nobody_reads_ends_quietly_as_every_command_does(columns):
    environ = {**os.environ, "COLUMNS": columns}
    environ.pop("_CHATCRM_COMPLETE", None)
    read, write = os.pipe()
    os.close(read)  # the reader is gone before a byte is written: the write fails with EPIPE
    try:
        done = subprocess.run([sys.executable, "-m", "chatcrm", "--help"], stdout=write, stderr=subprocess.PIPE,
                              env=environ, text=True, timeout=60)
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (1, "")
