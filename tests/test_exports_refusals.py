"""Formats chatcrm does not read, refused by name; --agent checked across one import."""

import zipfile

import pytest

from tests.helpers import FIXTURES, run, nothing_written

UNSUPPORTED = FIXTURES / "unsupported"


@pytest.mark.parametrize("path, name", [
    ("discord.json", "Discord"), ("signal/chat.md", "Signal"), ("signal", "Signal"), ("slack", "Slack"),
    ("slack/soporte/2026-11-24.json", "Slack"),
])
def test_formats_chatcrm_does_not_read_are_refused_by_name(path, name):
    result = run("ingest", UNSUPPORTED / path)
    assert result.code == 5, result.err
    assert f"this is a {name} export" in result.err and result.err.count("\n") == 1
    assert nothing_written()


def test_a_slack_zip_is_refused_by_name(tmp_path):
    path = tmp_path / "Tienda Sol Slack export.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for file in (UNSUPPORTED / "slack").rglob("*.json"):
            archive.write(file, file.relative_to(UNSUPPORTED / "slack").as_posix())
    result = run("ingest", path)
    assert result.code == 5 and "Slack" in result.err


def test_a_discord_export_is_never_read_as_telegram_even_when_told_nothing():
    result = run("ingest", UNSUPPORTED / "discord.json", "--agent", "Ana")
    assert result.code == 5 and "Discord" in result.err and "imported" not in result.err


def test_an_agent_that_matches_no_author_in_any_file_is_refused_and_nothing_written():
    files = [FIXTURES / "whatsapp" / "WhatsApp Chat with Marta Gómez.txt", FIXTURES / "messenger" / "message_1.json"]
    result = run("ingest", *files, "--agent", "Tienda Sol", "--agent", "Nadie")
    assert result.code == 5
    assert "--agent 'Nadie' matches no author" in result.err and "authors found: Marta Gómez, Raúl Díaz, Tienda Sol" in result.err
    assert nothing_written()


def test_an_agent_found_in_only_one_of_the_files_is_enough():
    files = [FIXTURES / "whatsapp" / "ios_mdy_lrm_crlf.txt", FIXTURES / "messenger" / "message_1.json"]
    result = run("ingest", *files, "--agent", "elena", "--agent", "TIENDA SOL", "--chat", "wa:1")
    assert result.code == 0, result.err


def test_a_zip_on_stdin_is_refused(tmp_path):
    path = tmp_path / "x.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("_chat.txt", "[24/11/26, 09:00:00] Ana: hola\n")
    result = run("ingest", "-", input=path.read_bytes())
    assert result.code == 5 and "ZIP" in result.err


def test_a_folder_with_nothing_chatcrm_reads_is_refused(tmp_path):
    (tmp_path / "notes.md").write_text("hello", encoding="utf-8")
    result = run("ingest", tmp_path)
    assert result.code == 5 and "holds no export chatcrm reads" in result.err
