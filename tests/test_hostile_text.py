"""Untrusted text: what a client or a file wrote never drives the operator's terminal
(point 1) and never opens as a formula in a spreadsheet (point 2)."""

import csv
import io
import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from chatcrm.rules.cells import neutral, restored
from tests.helpers import msg, run, write_jsonl

AT = "2026-11-24T10:00:00Z"
ESC_TITLE = "\x1b]0;pwned\x07"
CLEAR = "\x1b[2J"
CSI_C1 = "\x9b31m"
RLO = "\u202e"
HOSTILE = f"{ESC_TITLE}{CLEAR}{CSI_C1}{RLO}\u2066x\u2069\x7f"
# Anything that could act on a terminal (newlines and tabs aside: tables and CSV keep
# line breaks; tabs only as a cell's own separator in no format chatcrm prints).
ACTS_ON_A_TERMINAL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
FORMULA = ("=", "+", "-", "@", "\t", "\r")


def hostile_db(tmp_path, monkeypatch):
    """A deal whose chat key, channel, contact, author and text are all hostile, with
    two open chats (so that refusals list them)."""
    monkeypatch.setenv("CHATCRM_NOW", "2026-11-24T11:00:00Z")
    monkeypatch.setenv("NO_COLOR", "1")  # chatcrm's own colours are escape sequences too
    records = [
        msg(f"k{HOSTILE}", AT, text=f"hi {HOSTILE}", author=f"Ana{HOSTILE}", contact=f"C{HOSTILE}",
            channel=f"tg{HOSTILE}", deal="D1"),
        msg(f"j{HOSTILE}", "2026-11-24T10:01:00Z", text="again", deal="D1"),
    ]
    assert run("ingest", write_jsonl(tmp_path / "hostile.jsonl", records)).code == 0


def assert_inert(result):
    shown = result.out + result.err
    assert not ACTS_ON_A_TERMINAL.search(shown), repr(shown[:300])


def test_point1_tables_and_every_machine_format_on_a_terminal_show_controls_escaped(tmp_path, monkeypatch):
    hostile_db(tmp_path, monkeypatch)
    for command in (["list"], ["timeline", "D1"], ["stats"]):
        for fmt in ("simple", "csv", "json", "jsonl", "grid"):
            result = run(*command, "-f", fmt, tty=True)
            assert result.code == 0, (command, fmt, result.err)
            assert_inert(result)
    for fmt in ("jsonl", "csv"):
        result = run("export", "-f", fmt, tty=True)
        assert result.code == 0 and result.out
        assert_inert(result)
    # The channel of timeline's "chat opened" is escaped too.
    assert "tg\\x1b]0;pwned\\x07" in run("timeline", "D1", tty=True).out


def test_point1_confirmations_refusals_and_found_authors_are_escaped(tmp_path, monkeypatch):
    hostile_db(tmp_path, monkeypatch)
    refused = run("reply", "D1", "hello", tty=True)
    assert refused.code == 4 and "2 open chats" in refused.err
    assert_inert(refused)
    key = f"k{HOSTILE}"
    for args in (["reply", "D1", "ok", "--chat", key], ["assign", "D1", f"E{HOSTILE}", "--chat", key],
                 ["close", "D1", "--chat", key, "--force"], ["complete", "D1", "--force", "--activity", "1"]):
        result = run(*args, tty=True)
        assert result.code == 0, (args, result.err)
        assert args[0] == "complete" or "\\x1b]0;pwned" in result.out
        assert_inert(result)
    whatsapp = tmp_path / "chat.txt"
    whatsapp.write_text(f"24/11/2026, 10:00 - Ana{HOSTILE}: hola\n24/11/2026, 10:01 - Bob{RLO}: hey\n", encoding="utf-8")
    found = run("ingest", whatsapp, tty=True)
    assert found.code == 5 and "authors found" in found.err
    assert_inert(found)


def test_point1_json_escapes_c1_and_direction_marks_and_stays_the_same_data(tmp_path, monkeypatch):
    hostile_db(tmp_path, monkeypatch)
    for args in (["list", "-f", "json"], ["timeline", "D1", "-f", "jsonl"], ["export"], ["stats", "-f", "json"]):
        out = run(*args).out  # piped, not a terminal: JSON is escaped all the same
        assert not ACTS_ON_A_TERMINAL.search(out), args
    listed = run("list", "-f", "json")
    assert "\\u009b31m\\u202e" in listed.out
    assert listed.json()[0]["contact"] == f"C{HOSTILE}"
    exported = [json.loads(line) for line in run("export").out.splitlines()]
    assert exported[0]["text"] == f"hi {HOSTILE}" and exported[0]["chat"] == f"k{HOSTILE}"


def test_point1_piped_csv_is_exact_data(tmp_path, monkeypatch):
    hostile_db(tmp_path, monkeypatch)
    rows = list(csv.DictReader(io.StringIO(run("list", "-f", "csv").out)))
    assert rows[0]["contact"] == f"C{HOSTILE}"
    exported = list(csv.DictReader(io.StringIO(run("export", "-f", "csv").out)))
    assert exported[0]["text"] == f"hi {HOSTILE}"


# ------------------------------------------------------------------ point 2


FORMULAS = ['=HYPERLINK("http://evil.example","click")', "-Agent", "@SUM(1)", "+1", "\tx", "\rx", "'=already quoted",
            "''=two quotes", "'plain quote", "-"]


def formula_db(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATCRM_NOW", "2026-11-24T12:00:00Z")
    records = []
    for n, text in enumerate(FORMULAS):
        minute = f"{n:02d}"
        records.append(msg(f"c{n}", f"2026-11-24T10:{minute}:00Z", text=text, author=text, contact=text, title=text,
                           channel=text, deal=f"={n}"))
        records.append(msg(f"c{n}", f"2026-11-24T10:{minute}:30Z", "agent", text=f"a\rb{text}", author=text))
    path = write_jsonl(tmp_path / "formulas.jsonl", records)
    assert run("ingest", path).code == 0
    return path


def cells(csv_text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(csv_text, newline="")) for cell in row]


def test_point2_no_cell_of_a_report_opens_as_a_formula(tmp_path, monkeypatch):
    formula_db(tmp_path, monkeypatch)
    outputs = [run("list", "-f", "csv").out, run("timeline", "=3", "-f", "csv").out, run("stats", "-f", "csv").out,
               run("export", "-f", "csv").out]
    for out in outputs:
        found = cells(out)
        assert len(found) > 10
        assert not [c for c in found if c.startswith(FORMULA)], out[:500]
    listed = list(csv.DictReader(io.StringIO(outputs[0])))
    assert {row["contact"] for row in listed} >= {"'-Agent", "'@SUM(1)", "''=already quoted", "'plain quote"}


def test_point2_a_csv_export_imports_back_exactly_quotes_and_carriage_returns_included(tmp_path, monkeypatch):
    formula_db(tmp_path, monkeypatch)
    original = run("export").out
    assert run("export", "-f", "csv", "-o", tmp_path / "export.csv").code == 0
    monkeypatch.setenv("CHATCRM_DB", str(tmp_path / "copy.db"))
    imported = run("ingest", tmp_path / "export.csv")
    assert imported.code == 0, imported.err
    assert run("export").out == original
    texts = {json.loads(line).get("text") for line in original.splitlines()}
    assert {"'=already quoted", "''=two quotes", "'plain quote", "a\rb-Agent"} <= texts


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("'=+-@\t\r a\"\n,"), max_size=8) | st.text(max_size=8))
def test_point2_the_cell_rule_neutralises_every_formula_and_is_undone_exactly(text):
    written = neutral(text)
    assert not written.startswith(FORMULA)
    assert restored(written) == text
    if not text.lstrip("'").startswith(FORMULA):
        assert written == text  # a cell that could not open as a formula is left as it is


def test_point1_the_change_log_search_outbox_and_settings_on_a_terminal_are_escaped(tmp_path, monkeypatch):
    hostile_db(tmp_path, monkeypatch)
    named = write_jsonl(tmp_path / f"in{RLO}\x9b{ESC_TITLE}.jsonl", [msg("tg:9", AT, text=f"pedido {HOSTILE}")])
    assert run("ingest", named).code == 0
    assert run("reply", "tg:9", f"ok {HOSTILE}").code == 0
    for command in (["changes"], ["search", "pedido"], ["outbox", "--all"]):
        for fmt in ("simple", "csv", "json", "jsonl", "grid"):
            result = run(*command, "-f", fmt, tty=True)
            assert result.code == 0, (command, fmt, result.err)
            assert_inert(result)
    settings = tmp_path / "settings.toml"
    settings.write_text('[views."v\\u001b[2J\\u202e"]\nagent = "x\\u009b"\n[replies."r\\u202e"]\ntext = "t\\u202e"\n')
    monkeypatch.setenv("CHATCRM_CONFIG", str(settings))
    for fmt in ("simple", "csv", "json", "jsonl"):
        result = run("config", "-f", fmt, tty=True)
        assert result.code == 0, result.err
        assert_inert(result)


def test_point1_a_piped_search_snippet_is_the_data_itself(tmp_path, monkeypatch):
    hostile_db(tmp_path, monkeypatch)
    hits = run("search", "hi", "-f", "json").json()
    assert hits[0]["snippet"] == f"[hi] {HOSTILE}" and hits[0]["text"] == f"hi {HOSTILE}"
    assert_inert(run("search", "hi", "-f", "json", tty=True))
