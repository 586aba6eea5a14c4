"""The README stays true: its quick start is re-run and every command is documented."""

import re
import shlex

from chatcrm.cli import app
from tests.helpers import ROOT, run

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_command_has_a_readme_section():
    from typer.main import get_command

    for name in get_command(app).commands:
        assert f"### `chatcrm {name}" in README, name


def test_the_quick_start_transcript_is_what_chatcrm_prints(monkeypatch, tmp_path):
    block = README.split("```console\n", 1)[1].split("```", 1)[0]
    setup, _, session = block.partition("\n$ chatcrm")
    for name, value in re.findall(r"(\w+)=(\S+)", setup):
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(ROOT)
    steps = ("$ chatcrm" + session).split("\n$ ")
    assert len(steps) >= 8
    for step in steps:
        command, _, expected = step.removeprefix("$ ").partition("\n")
        args = shlex.split(command)[1:]
        result = run(*args)
        assert result.code == 0, command
        assert (result.err + result.out).strip() == expected.strip(), command


def test_the_readme_names_the_default_database_path():
    assert "~/.local/share/chatcrm/chatcrm.db" in README
