"""The README stays true: its quick start is re-run and every command is documented."""

import re
import shlex

import pytest

from chatcrm.cli import app
from tests.helpers import ROOT, run

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_command_has_a_readme_section():
    from typer.main import get_command

    for name in get_command(app).commands:
        assert f"### `chatcrm {name}" in README, name


TRANSCRIPTS = [
    block.split("```", 1)[0] for block in README.split("```console\n")[1:] if block.startswith("$ export ")
]


def test_the_readme_has_its_transcripts():
    assert len(TRANSCRIPTS) >= 2


@pytest.mark.parametrize("block", TRANSCRIPTS, ids=[f"transcript-{n}" for n in range(1, len(TRANSCRIPTS) + 1)])
def test_each_transcript_is_what_chatcrm_prints(block, monkeypatch, tmp_path):
    """Every README transcript that starts with `$ export` runs again on a new database."""
    setup, _, session = block.partition("\n$ chatcrm")
    for name, value in re.findall(r"(\w+)=(\S+)", setup):
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(ROOT)
    steps = ("$ chatcrm" + session).split("\n$ ")
    for step in steps:
        command, _, expected = step.removeprefix("$ ").partition("\n")
        # A step that ends in "(exit N)" shows a command that exits with N.
        code = re.search(r"\n?\(exit (\d+)\)\s*$", expected)
        if code:
            expected = expected[: code.start()]
        stdin = None
        if " | chatcrm " in command:  # `chatcrm A | chatcrm B`: A's stdout is B's stdin
            first, _, command = command.partition(" | ")
            stdin = run(*shlex.split(first)[1:]).out
        args = shlex.split(command)[1:]
        result = run(*args, input=stdin)
        assert result.code == (int(code.group(1)) if code else 0), command
        assert (result.out + result.err).strip() == expected.strip(), command


def test_the_readme_names_the_default_database_path():
    assert "~/.local/share/chatcrm/chatcrm.db" in README
