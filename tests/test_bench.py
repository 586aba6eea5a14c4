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
        assert set(bench.STORED_TABLES) == tables - {"_sqlite_migrations"} - searched
        assert verify.counts(floor) == verify.counts(source) and verify.counts(source)["messages"] > 0
        for table in bench.STORED_TABLES:
            rows = f"SELECT * FROM {table} ORDER BY {bench.row_order(source.conn, table)}"
            assert floor.conn.execute(rows).fetchall() == source.conn.execute(rows).fetchall(), table
        assert verify.check(floor) == []
    finally:
        for store in stores:
            store.close()

