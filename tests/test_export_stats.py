"""`chatcrm export` round trips, `chatcrm stats` figures, and the `queue` view as SQL."""

import json
import re
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatcrm import service, stats
from chatcrm.store import open_store
from tests.helpers import FIXTURES, close_, ingest, msg, run, write_jsonl
from tests.test_order_independence import histories, snapshot

NOW = "2026-11-24T18:00:00Z"
IMPORTS = [
    [str(FIXTURES / "support-day.jsonl")],
    [str(FIXTURES / "telegram" / "full_export.json")],
    [str(FIXTURES / "telegram" / "personal_chat.json")],
    ["--tz", "Europe/Madrid", str(FIXTURES / "whatsapp" / "WhatsApp Chat with Marta Gómez.txt")],
    ["--agent", "Elena", "--chat", "wa:ios", str(FIXTURES / "whatsapp" / "ios_mdy_lrm_crlf.txt")],
    [str(FIXTURES / "messenger" / "message_1.json")],
]


def build(db: Path, monkeypatch) -> None:
    """A fixture database: every sample export, then a working afternoon."""
    monkeypatch.setenv("CHATCRM_DB", str(db))
    monkeypatch.setenv("CHATCRM_NOW", NOW)
    for args in IMPORTS:
        assert run("ingest", *args).code == 0, args
    for command in (
        ["reply", "3", "Ya sale hoy."],
        ["reply", "3", "Ya sale hoy."],  # the same words twice in one second: both kept
        ["assign", "8", "Elena"],
        ["close", "3"],
        ["complete", "3"],
        ["close", "4", "--complete", "--at", "2026-11-24T17:00:00Z"],
    ):
        assert run(*command).code == 0, command


def outputs(db: Path, monkeypatch) -> dict:
    monkeypatch.setenv("CHATCRM_DB", str(db))
    monkeypatch.setenv("CHATCRM_NOW", NOW)
    deals = run("list", "--format", "json").json()
    return {
        "list": run("list").out,
        "list_json": deals,
        "timelines": {d["deal_id"]: run("timeline", str(d["deal_id"]), "--format", "json").json() for d in deals},
        "timeline_tables": {d["deal_id"]: run("timeline", str(d["deal_id"])).out for d in deals},
        "stats": run("stats", "--format", "json").json(),
        "stats_table": run("stats").out,
    }


@pytest.mark.slow
def test_export_then_ingest_reproduces_list_timeline_and_stats(tmp_path, monkeypatch):
    build(tmp_path / "a.db", monkeypatch)
    first = run("export", "--output", tmp_path / "export.jsonl")
    assert first.code == 0 and first.out == ""
    lines = (tmp_path / "export.jsonl").read_text(encoding="utf-8").splitlines()
    assert first.err == f"exported {len(lines)} event(s) to {tmp_path / 'export.jsonl'}\n"
    records = [json.loads(line) for line in lines]
    assert [r["at"] for r in records] == sorted(r["at"] for r in records)
    assert {r["type"] for r in records} == {"message", "close", "complete", "assign"}

    expected = outputs(tmp_path / "a.db", monkeypatch)
    monkeypatch.setenv("CHATCRM_DB", str(tmp_path / "b.db"))
    assert run("ingest", tmp_path / "export.jsonl").code == 0
    assert outputs(tmp_path / "b.db", monkeypatch) == expected
    # And the export of the copy is the export itself.
    monkeypatch.setenv("CHATCRM_DB", str(tmp_path / "b.db"))
    assert run("export").out.splitlines() == lines
    assert run("check").code == 0


@pytest.mark.slow
def test_the_csv_export_round_trips_too(tmp_path, monkeypatch):
    build(tmp_path / "a.db", monkeypatch)
    assert run("export", "-f", "csv", "-o", tmp_path / "export.csv").code == 0
    expected = outputs(tmp_path / "a.db", monkeypatch)
    monkeypatch.setenv("CHATCRM_DB", str(tmp_path / "b.db"))
    assert run("ingest", tmp_path / "export.csv").code == 0
    assert outputs(tmp_path / "b.db", monkeypatch) == expected


def test_two_builds_with_chatcrm_now_give_identical_exports(tmp_path, monkeypatch):
    exports = []
    for name in ("one.db", "two.db"):
        build(tmp_path / name, monkeypatch)
        exports.append(run("export").out.encode("utf-8"))
    assert exports[0] == exports[1] and len(exports[0]) > 1000


def test_export_to_an_unwritable_place_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    build(tmp_path / "a.db", monkeypatch)
    result = run("export", "-o", tmp_path / "missing" / "x.jsonl")
    assert result.code == 2 and result.err.startswith("Error: cannot write ") and result.err.count("\n") == 1
    bad = run("export", "--format", "json")
    assert bad.code == 2 and "jsonl or csv" in bad.err
    assert not (tmp_path / "missing").exists()


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(history=histories(), data=st.data())
def test_any_history_round_trips_through_export(history, data):
    """Built in shuffled pieces, exported, imported anew: the same list and timelines."""
    pieces = data.draw(st.lists(st.integers(0, len(history)), max_size=2))
    cuts = sorted(set(pieces))
    shuffled = data.draw(st.permutations(history))
    batches = [b for b in (shuffled[a:b] for a, b in zip([0, *cuts], [*cuts, len(shuffled)])) if b]
    expected = snapshot([history])
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(Path(folder) / "db.sqlite")
        try:
            for number, batch in enumerate(batches):
                ingest(store, batch, source=f"part{number}")
            exported = [json.loads(json.dumps(r)) for r in service.export(store)]
        finally:
            store.close()
    assert snapshot([exported]) == expected


# ------------------------------------------------------------------ stats


def t(minute: int, hour: int = 9) -> str:
    return f"2026-11-24T{hour:02d}:{minute:02d}:00Z"


@pytest.fixture
def day(store):
    ingest(store, [
        # tg:1 — answered in 5 min; the client writes again at 9:30 and is answered at 9:32.
        msg("tg:1", t(0), channel="telegram"),
        msg("tg:1", t(5), "agent", author="Luis"),
        msg("tg:1", t(30)),
        msg("tg:1", t(32), "agent", author="Elena"),
        close_("tg:1", t(0, 10)),
        # …and comes back in the afternoon: a new session, timed from its own first message.
        msg("tg:1", t(0, 15)),
        msg("tg:1", t(10, 15), "agent", author="Luis"),
        close_("tg:1", t(20, 15)),
        # wa:2 — nobody answers; the client is still waiting at 18:00.
        msg("wa:2", t(0, 17), channel="whatsapp"),
    ])
    return store


def test_stats_time_a_reply_from_the_clients_latest_message_and_never_inflate_a_reopened_chat(day):
    report = stats.compute(day, now=NOW).as_dict()
    overall = report["overall"]
    # First responses: 5 min (morning) and 10 min (afternoon) — not 6 h 10 min.
    assert overall["first_response"] == {"count": 2, "median_seconds": 450, "p90_seconds": 600, "worst_seconds": 600}
    # Waits: 5 min, 2 min (from 9:30, not 9:00), 10 min, and wa:2 still waiting for 1 h.
    assert overall["wait"] == {"count": 4, "median_seconds": 450, "p90_seconds": 3600, "worst_seconds": 3600,
                               "unanswered": 1}
    # Time to close: 60 min and 20 min, each session on its own.
    assert overall["time_to_close"] == {"count": 2, "median_seconds": 2400, "p90_seconds": 3600, "worst_seconds": 3600}
    assert report["sessions"] == 3


def test_stats_per_channel_and_per_employee(day):
    report = stats.compute(day, now=NOW).as_dict()
    assert report["by_channel"]["whatsapp"]["wait"]["unanswered"] == 1
    assert report["by_channel"]["telegram"]["wait"]["count"] == 3
    luis, elena = report["by_employee"]["Luis"], report["by_employee"]["Elena"]
    assert luis["first_response"]["count"] == 2 and luis["wait"]["count"] == 2
    assert elena["wait"] == {"count": 1, "median_seconds": 120, "p90_seconds": 120, "worst_seconds": 120, "unanswered": 0}
    # The afternoon session is Luis's (he replied first), so its 20 min to close are his.
    assert luis["time_to_close"]["worst_seconds"] == 3600 and luis["time_to_close"]["count"] == 2
    assert report["by_employee"]["(nobody)"]["wait"]["unanswered"] == 1


def test_stats_for_a_period_count_what_started_in_it(day):
    report = stats.compute(day, now=NOW, since=t(0, 12), until=t(0, 16)).as_dict()
    assert report["sessions"] == 1
    assert report["overall"]["first_response"]["worst_seconds"] == 600
    assert report["overall"]["wait"]["count"] == 1


def test_p90_is_the_nearest_rank():
    series = stats.Series()
    for value in range(1, 11):
        series.add(value * 60)
    assert series.summary("first_response") == {"count": 10, "median_seconds": 330, "p90_seconds": 540,
                                                 "worst_seconds": 600}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.integers(-5, 10**9), min_size=1, max_size=30), max_size=3 * stats.MOST_RUNS),
       st.lists(st.integers(-5, 10**9), max_size=30))
def test_a_series_of_sorted_runs_sums_up_as_all_its_values_sorted_together(groups, added):
    """A scope's series keeps its groups' sorted runs unmerged: its count, median (the mean
    of the middle two for an even count), nearest-rank p90 and worst are those of every
    value sorted together, negatives counted as 0."""
    import math
    import statistics
    from array import array

    series = stats.Series(runs=[array("q", sorted(max(0, v) for v in group)) for group in groups])
    for value in added:
        series.add(value)
    values = sorted(max(0, v) for v in [*(v for group in groups for v in group), *added])
    expected = {"count": len(values), "median_seconds": None, "p90_seconds": None, "worst_seconds": None}
    if values:
        median = statistics.median(values)
        expected.update(median_seconds=int(median) if median == int(median) else median,
                        p90_seconds=values[math.ceil(0.9 * len(values)) - 1], worst_seconds=values[-1])
    series.unanswered = 3
    assert series.summary("wait") == {**expected, "unanswered": 3}
    assert series.summary("first_response") == expected


def test_stats_command_table_json_and_periods(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATCRM_NOW", NOW)
    run("ingest", write_jsonl(tmp_path / "a.jsonl", [msg("tg:1", t(0)), msg("tg:1", t(4), "agent", author="Luis")]))
    table = run("stats", "--since", "2026-11-24")
    assert table.code == 0
    assert table.out.splitlines()[0] == "From 2026-11-24 00:00 to now · 1 session(s) opened"
    cells = [re.split(r"\s{2,}", line.strip()) for line in table.out.splitlines()]
    assert ["employee Luis", "first response", "1", "4m 00s", "4m 00s", "4m 00s"] in cells
    assert ["all", "wait", "1", "4m 00s", "4m 00s", "4m 00s", "0"] in cells
    assert run("stats", "--since", "7d", "--format", "json").json()["overall"]["wait"]["count"] == 1
    empty = run("stats", "--since", "2026-11-25")
    assert empty.code == 0 and "nothing measured in this period" in empty.out
    rows = run("stats", "--format", "jsonl").out.splitlines()
    assert json.loads(rows[0]) == {"scope": "all", "name": "", "metric": "first_response", "count": 1,
                                   "median_seconds": 240, "p90_seconds": 240, "worst_seconds": 240}


@pytest.mark.parametrize(
    "args,message",
    [
        (["--since", "yesterday"], "--since: unreadable time 'yesterday'"),
        (["--until", "2026-02-30"], "--until: unreadable date '2026-02-30'"),
        (["--since", "2026-11-25", "--until", "2026-11-24"], "must be before --until"),
        (["--format", "xml"], "unknown --format 'xml'"),
    ],
)
def test_bad_stats_periods_are_usage_errors(args, message):
    result = run("stats", *args)
    assert result.code == 2 and message in result.err and result.err.count("\n") == 1 and result.out == ""


# ------------------------------------------------------------------ the queue view


def test_the_queue_view_is_exactly_what_list_prints(tmp_path, monkeypatch):
    build(tmp_path / "a.db", monkeypatch)
    listed = run("list", "--format", "json").json()
    conn = sqlite3.connect(tmp_path / "a.db")
    conn.row_factory = sqlite3.Row
    viewed = [dict(row) for row in conn.execute("SELECT * FROM queue")]
    conn.close()
    assert [row["deal_id"] for row in viewed] == [row["deal_id"] for row in listed]
    assert {row["status"] for row in viewed} == {"unread", "green", "grey"}
    shared = set(viewed[0]) & set(listed[0])
    assert len(shared) >= 15
    assert [{k: row[k] for k in shared} for row in viewed] == [{k: row[k] for k in shared} for row in listed]


def test_export_of_one_deal_round_trips_that_deal(tmp_path, monkeypatch):
    build(tmp_path / "a.db", monkeypatch)
    expected = run("timeline", "3", "--format", "json").json()
    one = run("export", "--deal", "3")
    assert one.code == 0 and {json.loads(line)["chat"] for line in one.out.splitlines()} == {"wa:34600111222"}
    monkeypatch.setenv("CHATCRM_DB", str(tmp_path / "b.db"))
    assert run("ingest", "-", input=one.out).code == 0
    assert run("timeline", "3", "--format", "json").json() == expected
    missing = run("export", "--deal", "nope", "-o", tmp_path / "x.jsonl")
    assert missing.code == 3 and missing.out == "" and not (tmp_path / "x.jsonl").exists()


# ------------------------------------------------------------------ shell completion


def complete(words: str, env_db: Path) -> list[str]:
    import os
    import subprocess
    import sys

    env = {**os.environ, "_CHATCRM_COMPLETE": "complete_bash", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)), "CHATCRM_DB": str(env_db)}
    result = subprocess.run([sys.executable, "-m", "chatcrm"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line]


def test_shell_completion_of_commands_statuses_and_employees(tmp_path, monkeypatch):
    build(tmp_path / "a.db", monkeypatch)
    assert complete("chatcrm li", tmp_path / "a.db") == ["list"]
    assert complete("chatcrm list --status g", tmp_path / "a.db") == ["green", "grey"]
    everyone = complete("chatcrm list --agent ", tmp_path / "a.db")
    assert {"Elena", "Luis", "Tienda Sol"} <= set(everyone) and everyone == sorted(everyone)
    assert complete("chatcrm list --agent El", tmp_path / "a.db") == ["Elena"]
    assert complete("chatcrm list --agent ", tmp_path / "none.db") == []
    assert not (tmp_path / "none.db").exists()
