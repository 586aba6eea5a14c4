"""The benchmark's floors measure what they say: the import's own rows, all of them."""

from chatcrm import bench
from chatcrm.store import open_store
from tests.helpers import run
from chatcrm.store import verify


def test_the_stored_rows_floor_writes_exactly_the_rows_the_import_stored(tmp_path):
    events = tmp_path / "events.jsonl"
    bench.generate(events, 400, 40)
    imported = tmp_path / "imported.db"
    assert run("ingest", "--db", imported, events).code == 0

    wall, cpu = bench.stored_rows_floor(imported, tmp_path / "floor.db")
    assert wall > 0 and cpu >= 0

    stores = [open_store(imported), open_store(tmp_path / "floor.db")]
    try:
        source, floor = stores
        tables = {row[0] for row in source.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        searched = {t for t in tables if t.startswith(bench.SEARCH_TABLES)}
        assert {t for t in searched if t in bench.SEARCH_TABLES} == set(bench.SEARCH_TABLES)
        assert set(bench.STORED_TABLES) == tables - {"_sqlite_migrations"} - searched - set(bench.TRIGGER_KEPT_TABLES)
        assert verify.counts(floor) == verify.counts(source) and verify.counts(source)["messages"] > 0
        for table in (*bench.STORED_TABLES, *bench.TRIGGER_KEPT_TABLES):
            rows = f"SELECT * FROM {table} ORDER BY {bench.row_order(source.conn, table)}"
            assert floor.conn.execute(rows).fetchall() == source.conn.execute(rows).fetchall(), table
        assert verify.check(floor) == []
    finally:
        for store in stores:
            store.close()



def test_the_report_floors_read_every_row_they_stand_for(tmp_path):
    import json
    import subprocess

    events = tmp_path / "events.jsonl"
    bench.generate(events, 400, 40)
    db = tmp_path / "imported.db"
    assert run("ingest", "--db", db, events).code == 0
    out = tmp_path / "floor.jsonl"
    subprocess.run(bench.floor_args(bench.EXPORT_FLOOR, db, out), check=True)
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    store = open_store(db)
    try:
        counts = verify.counts(store)
        assert len(lines) == counts["messages"] + counts["chat_events"] + counts["assignments"] == 400
        assert subprocess.run(bench.floor_args(bench.STATS_FLOOR, db)).returncode == 0
    finally:
        store.close()


def test_the_generated_sessions_span_the_year_before_the_benchmarks_clock(tmp_path):
    events = tmp_path / "events.jsonl"
    bench.generate(events, 2000, 100)
    import json

    times = sorted(json.loads(line)["at"] for line in events.read_text(encoding="utf-8").splitlines())
    assert times[0] < "2024-12-15" and times[-1] < bench.NOW and times[-1] > "2025-11-01"


def test_only_reports_times_the_whole_reports_on_a_kept_database_without_importing(tmp_path, capsys):
    events = tmp_path / "events.jsonl"
    bench.generate(events, 300, 30)
    assert run("ingest", "--db", tmp_path / "chatcrm.db", events).code == 0
    before = {p.name for p in tmp_path.iterdir()}
    bench.main(["--only", "reports", "--keep", str(tmp_path), "--runs", "1"])
    printed = capsys.readouterr().out
    lines = printed.splitlines()[1:]
    assert len(lines) == 6 and all(line.startswith(label) for line, label in zip(lines, [
        "  floor: read every fact row with sqlite3, write it as JSON Lines",
        "export (everything, to a file) (300 events)",
        "export (everything, to a file) peak memory (MiB)",
        "  floor: one pass over the sessions, waits and chat keys",
        "stats (everything) (300 events)",
        "stats (everything) peak memory (MiB)",
    ]))
    assert "≤ 2.0× floor" in printed
    # nothing generated or imported: only the two reports' outputs are new
    assert {p.name for p in tmp_path.iterdir()} - before == {"export.jsonl", "floor.jsonl"}
    assert len((tmp_path / "export.jsonl").read_text(encoding="utf-8").splitlines()) == 300


def test_only_reports_without_a_kept_database_says_what_it_needs(tmp_path):
    import pytest

    with pytest.raises(SystemExit, match="run once with --keep"):
        bench.main(["--only", "reports", "--keep", str(tmp_path)])
