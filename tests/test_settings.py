"""Settings: the file, precedence (option, environment, file, default), saved views, canned
replies, `chatcrm config`, and every refusal naming the file and line."""

import pytest

from chatcrm import settings
from tests.helpers import msg, run, write_jsonl

NOW = "2026-11-24T12:00:00Z"
CONFIG = """\
db = "~/support/chatcrm.db"
tz = "Europe/Madrid"
author = "Luis"
sla = "15m"

[views.mine]
agent = "Luis"
status = "unread"

[views.two]
limit = 2
format = "json"

[replies.tracking]
text = "Hola {contact}, tu pedido sale hoy. ({deal}, {agent})"
"""


@pytest.fixture
def config(isolated_home, monkeypatch):
    """The settings file at its default place ($XDG_CONFIG_HOME/chatcrm/config.toml), and
    a day in the database it names."""
    path = isolated_home / "xdg-config" / "chatcrm" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text(CONFIG, encoding="utf-8")
    monkeypatch.setenv("HOME", str(isolated_home))
    monkeypatch.delenv("CHATCRM_DB")
    monkeypatch.delenv("CHATCRM_TZ")
    monkeypatch.delenv("CHATCRM_AGENT")
    monkeypatch.setenv("CHATCRM_NOW", NOW)
    day = [msg("tg:1", "2026-11-24T10:00:00Z", id="1", contact="Ana"), msg("wa:2", "2026-11-24T10:30:00Z", id="2"),
           msg("wa:2", "2026-11-24T10:35:00Z", "agent", author="Luis", id="3"),
           msg("web:3", "2026-11-24T11:50:00Z", id="4")]
    assert run("ingest", write_jsonl(isolated_home / "day.jsonl", day)).code == 0
    return path


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_the_file_s_db_is_used_with_its_home_expanded(config, isolated_home):
    assert (isolated_home / "support" / "chatcrm.db").exists()


def test_precedence_option_then_environment_then_file_then_default(config, isolated_home, monkeypatch):
    env = {}
    loaded = settings.load({"XDG_CONFIG_HOME": str(isolated_home / "xdg-config")})
    assert loaded.value("tz", "UTC", env) == settings.Setting("UTC", "option")
    assert loaded.value("tz", None, {"CHATCRM_TZ": "+03:00"}) == settings.Setting("+03:00", "environment ($CHATCRM_TZ)")
    assert loaded.value("tz", None, env) == settings.Setting("Europe/Madrid", f"{config}:2")
    assert loaded.value("format", None, env, "simple") == settings.Setting("simple", "default")
    # through the command line: the reply's author and the times it prints
    assert run("reply", "wa:2", "hola").out.endswith("at 2026-11-24T13:00:00+01:00\n")  # tz from the file
    assert run("reply", "wa:2", "hola", "--tz", "UTC").out.endswith("at 2026-11-24T12:00:00Z\n")  # the option
    monkeypatch.setenv("CHATCRM_TZ", "+03:00")
    assert run("reply", "wa:2", "hola").out.endswith("at 2026-11-24T15:00:00+03:00\n")  # the environment
    monkeypatch.setenv("CHATCRM_AGENT", "Marta")
    assert run("reply", "wa:2", "hola", "--at", "2026-11-24T12:01:00Z").code == 0
    timeline = run("timeline", "wa:2", "-f", "json").json()
    # the file's author, three times; then the environment's
    assert [e["author"] for e in timeline if e["kind"] == "message"][-4:] == ["Luis", "Luis", "Luis", "Marta"]


def test_a_saved_view_fills_what_the_command_does_not_say(config):
    mine = run("list", "--view", "mine")
    assert mine.code == 0 and mine.out.splitlines()[-1].startswith("Luis: 0 unread")
    two = run("list", "--view", "two")
    assert [r["deal_key"] for r in two.json()] == ["tg:1", "web:3"]  # limit 2, as JSON
    assert len(run("list", "--view", "two", "--limit", "1").json()) == 1  # the option wins
    # the file's sla (15m): tg:1 has waited 2h
    assert [r["overdue"] for r in two.json()] == [True, False]


def test_a_canned_reply_fills_contact_deal_and_agent(config):
    result = run("reply", "tg:1", "--template", "tracking")
    assert result.code == 0
    texts = [e["text"] for e in run("timeline", "tg:1", "-f", "json").json() if e["kind"] == "message"]
    assert texts[-1] == "Hola Ana, tu pedido sale hoy. (tg:1, Luis)"


def test_config_shows_every_effective_setting_and_where_it_came_from(config, monkeypatch):
    monkeypatch.setenv("CHATCRM_SLA", "1h")
    rows = {r["setting"]: (r["value"], r["source"]) for r in run("config", "-f", "json").json()}
    assert rows["file"] == (str(config), "found")
    assert rows["tz"] == ("Europe/Madrid", f"{config}:2")
    assert rows["sla"] == ("1h", "environment ($CHATCRM_SLA)")
    assert rows["author"] == ("Luis", f"{config}:3")
    assert rows["format"][1] == "default"
    assert rows["views.mine.status"] == ("unread", f"{config}:8")
    assert rows["replies.tracking.text"][1] == f"{config}:15"
    table = run("config").out
    assert table.splitlines()[0].split() == ["SETTING", "VALUE", "FROM"]


def test_without_a_file_the_built_in_defaults_apply(isolated_home):
    rows = {r["setting"]: (r["value"], r["source"]) for r in run("config", "-f", "json").json()}
    assert rows["file"][1] == "not found (built-in defaults)"
    assert rows["db"] == (str(isolated_home / "chatcrm.db"), "environment ($CHATCRM_DB)")
    assert rows["format"] == ("simple (a table)", "default")


def test_chatcrm_config_points_elsewhere(isolated_home, monkeypatch):
    other = write(isolated_home / "team.toml", 'sla = "2h"\n')
    monkeypatch.setenv("CHATCRM_CONFIG", str(other))
    rows = {r["setting"]: r for r in run("config", "-f", "json").json()}
    assert rows["sla"]["source"] == f"{other}:1"


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("db = \n", 1, "not valid TOML"),
        ('tz = "UTC"\ncolour = "red"\n', 2, "unknown setting 'colour'"),
        ('[views.mine]\nagnt = "Luis"\n', 2, "unknown key 'agnt' in [views.mine]"),
        ('[views.mine]\nlimit = "ten"\n', 2, "limit must be a whole number"),
        ('[views.mine]\nstatus = "red"\n', 2, "unknown status 'red'"),
        ('sla = "15x"\n', 1, "unreadable duration '15x'"),
        ('tz = "Mars/Base"\n', 1, "unknown time zone 'Mars/Base'"),
        ('format = "fancy"\n', 1, "unknown format 'fancy'"),
        ("author = 7\n", 1, "author must be a text"),
        ('\n[replies.hi]\ntext = "Hola {name}"\n', 3, "unknown placeholder {name}"),
        ('[replies.hi]\ntext = "Hola {contact"\n', 2, "expected '}'"),
        ('[replies.hi]\nbody = "Hola"\n', 2, "unknown key 'body' in [replies.hi]"),
        ('[replies.hi]\ntext = "Hola {contact!r}"\n', 2, "{contact!r}: a placeholder takes no conversion or format; "
         "write {contact}"),
        ('[replies.hi]\ntext = "Hola {contact:>9}"\n', 2, "{contact:>9}: a placeholder takes no conversion"),
        ('[views.x]\nformat = "idz"\n', 2, "unknown format 'idz' (use json, jsonl, csv, ids,"),
        ('format = "ids"\n', 1, "unknown format 'ids'"),  # only a view lists deals
        ('tz = "UTC"\n\na = ' + "[" * 100_000 + "]" * 100_000 + "\n", 3, "nested deeper than 32 levels"),
        ('a = """\n' + "[" * 40 + '\n"""\n# ' + "{" * 40 + "\nb = { c = " + "[" * 33 + "]" * 33 + " }\n", 5,
         "nested deeper than 32 levels"),  # brackets in strings and comments do not count
    ],
)
def test_a_bad_settings_file_is_exit_2_naming_the_file_and_line(isolated_home, text, line, message):
    (isolated_home / "xdg-config" / "chatcrm").mkdir(parents=True)
    path = write(isolated_home / "xdg-config" / "chatcrm" / "config.toml", text)
    result = run("list")
    assert (result.code, result.out) == (2, "")
    assert result.err.startswith(f"Error: {path}:{line}: ") and message in result.err, result.err
    assert result.err.count("\n") == 1


def test_unknown_views_templates_and_a_missing_named_file_are_exit_2(config, isolated_home, monkeypatch):
    view = run("list", "--view", "theirs")
    assert view.code == 2 and view.err == f"Error: unknown view 'theirs' in {config} (it defines: mine, two)\n"
    template = run("reply", "tg:1", "--template", "nope")
    assert template.code == 2 and f"unknown reply template 'nope' in {config} (it defines: tracking)" in template.err
    # with a template every argument is a deal: a text among them is an unknown deal
    both = run("reply", "tg:1", "hola", "--template", "tracking")
    assert both.code == 3 and "no deal 'hola'" in both.err and "nothing changed" in both.err
    neither = run("reply", "tg:1")
    assert neither.code == 2 and "(or --template NAME)" in neither.err
    monkeypatch.setenv("CHATCRM_CONFIG", str(isolated_home / "missing.toml"))
    missing = run("list")
    assert missing.code == 2 and "no settings file" in missing.err
    # nothing was written by any of them
    monkeypatch.delenv("CHATCRM_CONFIG")
    messages = [e for e in run("timeline", "tg:1", "-f", "json").json() if e["kind"] == "message"]
    assert len(messages) == 1


def test_key_lines_follow_tables_and_quoted_keys():
    lines = settings._key_lines('a = 1\n\n[views."my view"]\n"agent" = "x"\n# [not]\n[replies.r]\ntext = "t"\n')
    assert lines[("a",)] == 1 and lines[("views", "my view", "agent")] == 4 and lines[("replies", "r", "text")] == 7


def test_a_settings_file_deep_within_the_bound_or_with_brackets_in_its_texts_is_read(isolated_home):
    (isolated_home / "xdg-config" / "chatcrm").mkdir(parents=True)
    write(isolated_home / "xdg-config" / "chatcrm" / "config.toml",
          '[replies.hi]\ntext = "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ {contact} \\" [[[[ "\n# ]]]]\n')
    result = run("config", "--format", "json")
    assert result.code == 0, result.err
    assert settings.MAX_DEPTH == 32


def test_a_settings_file_is_read_up_to_its_size_bound(isolated_home, monkeypatch):
    monkeypatch.setenv("CHATCRM_CONFIG", "/dev/zero")
    result = run("list")
    assert (result.code, result.err) == (2, "Error: /dev/zero: larger than 1024 KiB; not a settings file\n")


def test_a_view_may_print_deal_ids_as_list_does(config):
    write(config, CONFIG + '\n[views.ids]\nstatus = "unread"\nformat = "ids"\n')
    result = run("list", "--view", "ids")
    assert result.code == 0, result.err
    assert result.out == run("list", "--status", "unread", "--format", "ids").out and result.out.strip()
