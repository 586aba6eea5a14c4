"""The first five minutes: the version, help in the user's words, a first run that says
what to do next, and times shown in the user's zone everywhere."""

import re
from importlib.metadata import version

import pytest
from freezegun import freeze_time
from typer.main import get_command

from chatcrm.cli import app
from tests.helpers import FIXTURES, msg, run, write_jsonl

COMMANDS = sorted(get_command(app).commands)


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_is_the_package_metadata(flag):
    result = run(flag)
    assert result.code == 0 and result.out == f"chatcrm {version('chatcrm')}\n"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_commands_help_has_a_summary_without_rule_numbers_and_examples(name):
    result = run(name, "--help")
    assert result.code == 0
    usage, summary = result.out.split("\n\n")[:2]
    assert "{" not in usage and "}" not in usage, usage  # DEAL TEXT, not {DEAL} {TEXT}
    assert summary.strip() and not re.search(r"\bR\d+\b", result.out), summary
    examples = result.out.split("Examples:\n", 1)[1].splitlines()
    assert examples and all(line.strip().startswith(("chatcrm ", "echo ", "some-script")) for line in examples)
    assert any(f"chatcrm {name}" in line for line in examples)


def test_the_command_list_shows_whole_summaries():
    out = run("--help").out
    listing = out.split("Commands:\n", 1)[1]
    assert "..." not in listing and "…" not in listing and not re.search(r"\bR\d+\b", out)


def test_tz_help_is_true_for_each_command():
    for name in ("ingest", "reply", "close", "complete", "assign"):
        assert "for tables" not in run(name, "--help").out
    assert "export's times" in " ".join(run("ingest", "--help").out.split())


def test_ingest_takes_f_like_every_other_command(tmp_path):
    events = write_jsonl(tmp_path / "e.txt", [msg("tg:1", "2026-11-24T09:00:00Z")])
    assert run("ingest", "-f", "jsonl", events).code == 0


def test_an_empty_database_says_once_on_stderr_how_to_begin():
    import os

    from chatcrm.store import open_store

    open_store(os.environ["CHATCRM_DB"], create=True).close()  # made, nothing imported yet
    result = run("list")
    assert result.code == 0 and result.out == "0 unread · 0 due · 0 green · 0 pending · 0 grey\n"  # stdout unchanged
    assert result.err.count("\n") == 1 and "chatcrm ingest" in result.err
    assert run("ingest", FIXTURES / "support-day.jsonl").code == 0
    assert run("list").err == ""


def test_a_text_that_starts_with_a_dash_gets_a_hint_and_works_after_double_dash(monkeypatch):
    monkeypatch.setenv("CHATCRM_NOW", "2026-11-24T17:00:00Z")
    run("ingest", FIXTURES / "support-day.jsonl")
    refused = run("reply", "3", "-1 no lo tenemos")
    assert refused.code == 2 and "after '--'" in refused.err and refused.err.count("\n") == 1
    assert run("reply", "3", "--", "-1 no lo tenemos").code == 0
    assert run("timeline", "3", "-f", "json").json()[-1]["text"] == "-1 no lo tenemos"


def test_times_in_confirmations_and_errors_are_in_the_tables_zone(monkeypatch):
    monkeypatch.setenv("CHATCRM_NOW", "2026-11-24T17:00:00Z")
    monkeypatch.setenv("CHATCRM_TZ", "Europe/Madrid")
    run("ingest", FIXTURES / "support-day.jsonl")
    refused = run("close", "8")  # Sofía waits since 15:30 UTC, 16:30 in Madrid
    assert refused.code == 4 and "waiting since 2026-11-24T16:30:00+01:00" in refused.err
    done = run("reply", "3", "Hola")
    assert done.out == "replied on deal 3, chat 3 (wa:34600111222) at 2026-11-24T18:00:00+01:00\n"
    assert "2026-11-24 16:31" in run("list").out  # the table shows the same zone (her last message)
    monkeypatch.setenv("CHATCRM_TZ", "UTC")
    assert "since 2026-11-24T15:30:00Z" in run("close", "8").err


@freeze_time("2026-11-24T18:30:00Z")
def test_the_clock_is_read_at_the_edge_only_when_no_time_is_given(monkeypatch):
    monkeypatch.delenv("CHATCRM_NOW", raising=False)
    run("ingest", FIXTURES / "support-day.jsonl")
    assert run("reply", "3", "Hola").out.endswith("at 2026-11-24T18:30:00Z\n")
    assert run("reply", "3", "Otra", "--at", "2026-11-24T18:40:00").out.endswith("at 2026-11-24T18:40:00Z\n")
    row = next(r for r in run("list", "-f", "json").json() if r["deal_id"] == 8)
    assert row["waiting_seconds"] == 3 * 3600  # against the frozen clock: since 15:30
