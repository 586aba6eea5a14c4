"""The benchmark: `python -m chatcrm.bench [--events N] [--chats M] [--runs K]`.

Generates a realistic event file and measures, in the same run and as medians: a raw
baseline (parse the JSON lines, insert each into one SQLite table with executemany in one
transaction), `chatcrm ingest` of the same file and its peak memory, the everyday commands
on the resulting database and on one of 1,000 events (with `search` of an order number, of a
word in nearly every message, and `close --idle`; a period's stats and one deal's export,
judged against `list`), the whole export and the whole stats against their floors (a
program that only reads the rows they need), and the bare start-up. The events span a
year, as a database's do. It prints each
figure and its ratio to the baseline it is judged against. Nothing here is asserted in the
tests: the tests check behaviour and query plans.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NOW = "2025-11-30T00:00:00Z"  # the commands' clock ($CHATCRM_NOW)
END = 1764460800  # NOW as an epoch: every generated event is before it
YEAR = 365 * 86400


def generate(path: Path, events: int, chats: int, seed: int = 7) -> None:
    """A contact centre's year: sessions of client and agent messages, closes and
    completions, scattered over the 365 days before NOW (each chat starts on a random day,
    and after a close its client may come back days or weeks later)."""
    rng = random.Random(seed)
    clock = [END - YEAR + rng.randrange(0, YEAR - 2 * 86400) for _ in range(chats)]
    counters = [0] * chats
    written = 0
    with path.open("w", encoding="utf-8") as out:
        while written < events:
            c = rng.randrange(chats)
            clock[c] = min(clock[c] + rng.randrange(20, 900), END - 60)
            counters[c] += 1
            at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock[c]))
            roll = rng.random()
            if roll < 0.05:
                record = {"type": "close", "chat": f"wa:{c}", "at": at}
                comeback = clock[c] + rng.randrange(3600, 30 * 86400)
                if comeback < END - 86400:
                    clock[c] = comeback
            elif roll < 0.08:
                record = {"type": "complete", "chat": f"wa:{c}", "at": at}
            else:
                frm = "client" if roll < 0.6 else "agent"
                record = {"type": "message", "id": f"{c}-{counters[c]}", "chat": f"wa:{c}", "channel": "whatsapp",
                          "contact": f"Client {c}", "from": frm, "author": f"Client {c}" if frm == "client" else "Luis",
                          "text": f"Mensaje {counters[c]} sobre el pedido {c * 7 % 100000}", "at": at}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            written += 1


def raw_baseline(path: Path, db: Path) -> tuple[float, float]:
    """The floor for any Python importer: json.loads each line, executemany into one table.
    Returns its wall time and CPU time."""
    started, cpu = time.perf_counter(), time.process_time()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE events (type TEXT, id TEXT, chat TEXT, author TEXT, text TEXT, at TEXT, direction TEXT)")
    with path.open("rb") as lines:
        rows = (
            (r.get("type"), r.get("id"), r.get("chat"), r.get("author"), r.get("text"), r.get("at"), r.get("from"))
            for r in map(json.loads, lines)
        )
        with conn:
            conn.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?)", rows)
    conn.close()
    return time.perf_counter() - started, time.process_time() - cpu


# The tables an import writes, in the order it writes them.
STORED_TABLES = (
    "changes", "change_files", "messages", "chat_events", "assignments", "reminders", "change_facts", "chat_keys",
    "change_keys", "chats", "activities", "waits", "contacts", "deals", "message_edits", "live_chats", "outbox",
    "delivery_statuses",
)


def row_order(conn, table: str) -> str:
    """How a table's rows are read back in the order they are stored: by rowid, or by
    the primary key of a WITHOUT ROWID table."""
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", [table]).fetchone()[0]
    if not sql.rstrip().upper().endswith("WITHOUT ROWID"):
        return "rowid"
    columns = sorted((row for row in conn.execute(f"PRAGMA table_info({table})") if row[5]), key=lambda row: row[5])
    return ", ".join(row[1] for row in columns)
# ... and the search indexes (FTS5 tables, with their shadow tables), which it derives.
SEARCH_TABLES = ("messages_fts", "deals_fts")
TRIGGER_KEPT_TABLES = ("queue_counts",)  # written by triggers on the deals, as the import writes them


def stored_rows_floor(imported: Path, db: Path) -> tuple[float, float]:
    """The floor for any importer of chatcrm's model: the rows `imported` holds (facts and
    derived states), already computed, written with executemany into a new chatcrm
    database as the import writes them (messages in flushes, their index built after,
    one transaction; the search index of the messages built after them, that of the
    deals kept by its triggers). No parsing, no rules. Returns the wall and CPU time of
    the writes alone (reading the rows back is not counted)."""
    from chatcrm.store import open_store, search
    from chatcrm.store.batch import FLUSH_EVERY
    from chatcrm.store.ddl import MESSAGES_KEY_INDEX

    store = open_store(db)
    conn, source = store.conn, sqlite3.connect(imported)
    spent = [0.0, 0.0]

    def timed_step(step) -> None:
        started, cpu = time.perf_counter(), time.process_time()
        step()
        spent[0] += time.perf_counter() - started
        spent[1] += time.process_time() - cpu

    try:
        timed_step(lambda: (conn.execute("BEGIN IMMEDIATE"), conn.execute("PRAGMA defer_foreign_keys=ON"),
                            conn.execute("DROP INDEX messages_key"), search.suspend_message_indexing(conn)))
        for table in STORED_TABLES:
            names = [row[1] for row in source.execute(f"PRAGMA table_info({table})")]
            columns = ", ".join(names)
            insert = f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' * len(names))})"
            cursor = source.execute(f"SELECT {columns} FROM {table} ORDER BY {row_order(source, table)}")
            while rows := cursor.fetchmany(FLUSH_EVERY):
                timed_step(lambda: conn.executemany(insert, rows))
            if table == "messages":
                timed_step(lambda: conn.execute(MESSAGES_KEY_INDEX))
                timed_step(lambda: search.index_messages_after(conn, 0))
        timed_step(conn.commit)
    finally:
        source.close()
        store.close()
    return spent[0], spent[1]


def parse_floor(path: Path) -> tuple[float, float]:
    """Reading alone: orjson.loads of every line (what chatcrm's JSON Lines reader uses)."""
    import orjson

    started, cpu = time.perf_counter(), time.process_time()
    with path.open("rb") as lines:
        for line in lines:
            orjson.loads(line)
    return time.perf_counter() - started, time.process_time() - cpu


# The reports' floors, each run as its own `python -c` (interpreter start-up included, as
# in a command): what any program pays to read the rows a report needs.
EXPORT_FLOOR = """
import json, sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
encode = json.JSONEncoder(ensure_ascii=False).encode
with open(sys.argv[2], "w", encoding="utf-8") as out:
    for table in ("messages", "chat_events", "assignments"):
        cursor = conn.execute(f"SELECT * FROM {table}")
        names = [d[0] for d in cursor.description]
        for row in cursor:
            out.write(encode(dict(zip(names, row))) + "\\n")
"""
STATS_FLOOR = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
for sql in (
    "SELECT chat_key, opened_at, opened_by, first_response_at, first_reply_by, closed_at, responsible FROM chats",
    "SELECT chat_id, started_at, ended_at, answered_by FROM waits",
    "SELECT key, channel FROM chat_keys",
):
    for row in conn.execute(sql):
        pass
"""


def floor_args(code: str, db: Path, *rest: Path) -> list[str]:
    return [sys.executable, "-c", code, str(db), *map(str, rest)]


def timed(args: list[str], env: dict) -> tuple[float, int, float]:
    """Wall time, peak RSS (bytes) and CPU time (user + system) of one command.

    The peak is the command's own high-water mark (Linux's VmHWM, read while it runs):
    a child's ru_maxrss also counts the benchmark's memory it was forked from."""
    import threading

    started = time.perf_counter()
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    high_water = [0]
    done = threading.Event()

    def watch() -> None:
        status = Path(f"/proc/{process.pid}/status")
        while not done.wait(0.01):
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        high_water[0] = max(high_water[0], int(line.split()[1]) * 1024)
            except OSError:
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    done.set()
    watcher.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench: {' '.join(args)} failed: {process.stderr.read().decode()}")
    process.stderr.close()
    return elapsed, high_water[0] or usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime


def compile_package() -> None:
    """Write chatcrm's bytecode, as `pip install` does, so that the commands start as they
    do installed. Run from a source tree (an editable install) with PYTHONDONTWRITEBYTECODE
    set, every command would otherwise compile each of its modules at every start, while
    typer, sqlite-utils and tabulate, installed by pip, come compiled."""
    import compileall

    import chatcrm

    compileall.compile_dir(str(Path(chatcrm.__file__).parent), quiet=1)


def median_of(runs: int, action) -> tuple[float, float]:
    """The medians of the wall and CPU times `action` returns over `runs` runs."""
    results = [action() for _ in range(runs)]
    return statistics.median(r[0] for r in results), statistics.median(r[1] for r in results)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m chatcrm.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--chats", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="runs of each import (commands run 3 times as many)")
    parser.add_argument("--keep", metavar="DIR", help="generate into DIR and keep the files")
    parser.add_argument("--only", choices=["reports"],
                        help="reports: time only the whole export and stats against their floors, on the "
                             "database kept in --keep DIR (--runs times each)")
    options = parser.parse_args(argv)
    if options.only == "reports":
        if not options.keep:
            parser.error("--only reports needs --keep DIR (the folder of a kept run)")
        _print(only_reports(Path(options.keep), options.runs))
        return
    folder = Path(options.keep or tempfile.mkdtemp(prefix="chatcrm-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    chatcrm = [sys.executable, "-m", "chatcrm"]
    env = {**os.environ, "CHATCRM_NOW": NOW, "CHATCRM_AGENT": "Luis", "NO_COLOR": "1"}
    env.pop("CHATCRM_DB", None)
    compile_package()

    big, small = folder / "events.jsonl", folder / "small.jsonl"
    for path, count, chats in ((big, options.events, options.chats), (small, 1000, 100)):
        if not path.exists():
            print(f"generating {path} ({count:,} events over {chats:,} chats)…", file=sys.stderr, flush=True)
            generate(path, count, chats)
    size = big.stat().st_size

    def fresh(name: str) -> Path:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{folder / name}{suffix}").unlink(missing_ok=True)
        return folder / name

    # Baseline and import alternate, so that both see the machine as it is at that
    # moment; the ratio is the median of each pair's ratio.
    pairs, floors = [], []
    for _ in range(options.runs):
        base, base_cpu = raw_baseline(big, fresh("raw.db"))
        elapsed, memory, cpu = timed([*chatcrm, "ingest", "--db", str(fresh("chatcrm.db")), str(big)], env)
        pairs.append((base, elapsed, memory, base_cpu, cpu))
        floors.append((*stored_rows_floor(folder / "chatcrm.db", fresh("floor.db")), *parse_floor(big)))
    baseline = statistics.median(p[0] for p in pairs)
    ingest = statistics.median(p[1] for p in pairs)
    ingest_ratio = statistics.median(p[1] / p[0] for p in pairs)
    ingest_cpu_ratio = statistics.median(p[4] / p[3] for p in pairs)
    peak = max(p[2] for p in pairs)
    small_db = fresh("small.db")
    timed([*chatcrm, "ingest", "--db", str(small_db), str(small)], env)

    def wall_and_cpu(args):
        elapsed, _, cpu = timed(args, env)
        return elapsed, cpu

    bare = [sys.executable, "-c", "import typer, sqlite_utils, tabulate"]
    bare_runs: list[tuple[float, float]] = []

    def beside_bare(runs: int, command) -> tuple[float, float, float, float]:
        """`command()` run `runs` times, each right after a bare start-up, so that both see
        the machine as it is at that moment: its medians, and the medians of each pair's
        ratio (wall, CPU)."""
        pairs = []
        for _ in range(runs):
            start = wall_and_cpu(bare)
            bare_runs.append(start)
            pairs.append((*command(), *start))
        return (statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs),
                statistics.median(p[0] / p[2] for p in pairs), statistics.median(p[1] / p[3] for p in pairs))

    help_time, help_cpu, help_ratio, help_cpu_ratio = beside_bare(options.runs * 3,
                                                                  lambda: wall_and_cpu([*chatcrm, "--help"]))
    rows = [
        (f"raw baseline: json.loads + executemany ({min(p[0] for p in pairs):.1f}–{max(p[0] for p in pairs):.1f} s)",
         baseline, None, None, None),
        (f"chatcrm ingest ({options.events:,} events, {size / 2**20:.0f} MiB)", ingest, ingest_ratio,
         ingest_cpu_ratio, "≤ 2.0× baseline"),
        ("chatcrm ingest peak memory (MiB)", peak / 2**20, None, None, "≤ 100 MiB"),
        ("  floor: its stored rows, precomputed, written with executemany",
         statistics.median(f[0] for f in floors), statistics.median(f[0] / p[0] for f, p in zip(floors, pairs)),
         statistics.median(f[1] / p[3] for f, p in zip(floors, pairs)), None),
        ("  floor: orjson.loads of every line", statistics.median(f[2] for f in floors),
         statistics.median(f[2] / p[0] for f, p in zip(floors, pairs)),
         statistics.median(f[3] / p[3] for f, p in zip(floors, pairs)), None),
        ("chatcrm --help", help_time, help_ratio, help_cpu_ratio, "≤ 0.4× start-up"),
    ]
    startup_row = len(rows) - 1  # the bare start-up's row goes before it, once every run is in
    runs = options.runs * 3
    big_db = folder / "chatcrm.db"
    for label, db in (("1,000 events", small_db), (f"{options.events:,} events", big_db)):
        deals = _unread_deals(db, runs)
        order = _order_number(deals[0])
        idle = f"close --idle 6h --dry-run ({_idle_count(db, 6 * 3600, env['CHATCRM_NOW'])} idle chats)"
        # Reading commands run `runs` times; writing ones once on each of `runs` deals
        # (each changes the deal it acts on); `close --idle` once, last. A period's stats
        # and one deal's export are judged against `list` on the same database.
        commands = {
            "list --limit 50": (lambda d: ["list", "--limit", "50"], TABLE_TARGET),
            "list --limit 50 --format json": (lambda d: ["list", "--limit", "50", "--format", "json"], COMMAND_TARGET),
            "timeline": (lambda d: ["timeline", deals[0]], TABLE_TARGET),
            "stats --since 1d": (lambda d: ["stats", "--since", "1d"], LIST_TARGET),
            "stats --since 7d": (lambda d: ["stats", "--since", "7d"], LIST_TARGET),
            "export --deal": (lambda d: ["export", "--deal", deals[0]], LIST_TARGET),
            f'search "pedido {order}"': (lambda d: ["search", f'"pedido {order}"'], "≈ list"),
            "search pedido (in 9 of 10 messages)": (lambda d: ["search", "pedido"], None),
            "search mensaje --sort rank": (lambda d: ["search", "mensaje", "--sort", "rank"], None),
            idle: (lambda d: ["close", "--idle", "6h", "--dry-run"], None),
            "reply": (lambda d: ["reply", d, "Lo miro ahora mismo", "--author", "Luis"], COMMAND_TARGET),
            "assign": (lambda d: ["assign", d, "Marta"], COMMAND_TARGET),
            "close": (lambda d: ["close", d, "--force"], COMMAND_TARGET),
            "complete": (lambda d: ["complete", d, "--force"], COMMAND_TARGET),
        }
        listed = None
        for name, (args_for, target) in commands.items():
            queue = iter(deals)

            def once(args_for=args_for, queue=queue):
                return wall_and_cpu([*chatcrm, *args_for(next(queue)), "--db", str(db)])

            if target == LIST_TARGET:
                figure, cpu = median_of(len(deals), once)
                rows.append((f"{name} ({label})", figure, figure / listed[0], cpu / listed[1], target))
                continue
            figure, cpu, ratio, cpu_ratio = beside_bare(len(deals), once)
            if name == "list --limit 50":
                listed = (figure, cpu)
            rows.append((f"{name} ({label})", figure, ratio, cpu_ratio, target))
        figure, cpu, ratio, cpu_ratio = beside_bare(
            1, lambda: wall_and_cpu([*chatcrm, "close", "--idle", "6h", "--db", str(db)]))
        rows.append((f"close --idle 6h ({label})", figure, ratio, cpu_ratio, None))
    rows.insert(startup_row, ('bare start-up: python -c "import typer, sqlite_utils, tabulate"',
                              statistics.median(r[0] for r in bare_runs), None, None, None))
    rows.extend(report_rows(chatcrm, env, big_db, folder, options.runs, options.events))
    _print(rows)
    if not options.keep:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def report_rows(chatcrm: list[str], env: dict, db: Path, folder: Path, runs: int, events: int) -> list[tuple]:
    """The whole export and the whole stats of `db` against their floors, each run `runs`
    times alternating with its floor, as the import and its baseline do."""
    reports = {
        "export (everything, to a file)": (
            [*chatcrm, "export", "-o", str(folder / "export.jsonl"), "--db", str(db)],
            floor_args(EXPORT_FLOOR, db, folder / "floor.jsonl"),
            "read every fact row with sqlite3, write it as JSON Lines",
        ),
        "stats (everything)": (
            [*chatcrm, "stats", "--db", str(db)],
            floor_args(STATS_FLOOR, db),
            "one pass over the sessions, waits and chat keys",
        ),
    }
    rows = []
    for name, (command, floor, what) in reports.items():
        measured = []
        for _ in range(runs):
            floor_time, _, floor_cpu = timed(floor, env)
            elapsed, memory, cpu = timed(command, env)
            measured.append((floor_time, floor_cpu, elapsed, cpu, memory))
        rows.append((f"  floor: {what}", statistics.median(m[0] for m in measured), None, None, None))
        rows.append((f"{name} ({events:,} events)", statistics.median(m[2] for m in measured),
                     statistics.median(m[2] / m[0] for m in measured),
                     statistics.median(m[3] / m[1] for m in measured), "≤ 2.0× floor"))
        rows.append((f"{name} peak memory (MiB)", max(m[4] for m in measured) / 2**20, None, None, None))
    return rows


def only_reports(folder: Path, runs: int) -> list[tuple]:
    """`--only reports`: the whole reports alone, on the database a run with `--keep`
    left in `folder`, without generating or importing anything."""
    db = folder / "chatcrm.db"
    if not db.is_file():
        raise SystemExit(f"bench: --only reports needs {db}: run once with --keep {folder} first")
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        events = conn.execute(
            "SELECT (SELECT count(*) FROM messages) + (SELECT count(*) FROM chat_events) "
            "+ (SELECT count(*) FROM assignments) + (SELECT count(*) FROM reminders)"
        ).fetchone()[0]
    finally:
        conn.close()
    env = {**os.environ, "CHATCRM_NOW": NOW, "CHATCRM_AGENT": "Luis", "NO_COLOR": "1"}
    env.pop("CHATCRM_DB", None)
    compile_package()
    return report_rows([sys.executable, "-m", "chatcrm"], env, db, folder, runs, events)


COMMAND_TARGET = "≤ 0.6× start-up"  # a command that prints no table
TABLE_TARGET = "≤ 0.95× start-up"  # one that prints a table (tabulate's own import is most of it)
LIST_TARGET = "≤ 1.5× list"  # a report that reads only what it shows: as fast as `list`


def _unread_deals(db: Path, count: int) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT deal_key FROM queue WHERE status = 'unread' AND open_chats = 1 AND active_activities = 1 LIMIT ?",
            [count],
        ).fetchall()
        return [row[0] for row in rows]
    finally:
        conn.close()


def _order_number(deal_key: str) -> int:
    """The order number `generate` writes in the messages of chat `wa:N`."""
    return int(deal_key.partition(":")[2]) * 7 % 100000


def _idle_count(db: Path, idle_seconds: int, now: str) -> int:
    from chatcrm import times
    from chatcrm.rules import idle

    conn = sqlite3.connect(db)
    try:
        cutoff = times.from_epoch(idle.cutoff(times.epoch(times.parse(now)), idle_seconds))
        return conn.execute(
            f"SELECT count(*) FROM chats c JOIN messages m ON m.id = c.last_message_id WHERE {idle.IDLE_SQL}", [cutoff]
        ).fetchone()[0]
    finally:
        conn.close()


def _print(rows) -> None:
    """The table: each figure, its ratio in wall time (what the targets judge) and in CPU
    time (user + system: steadier on a busy machine), and its target."""
    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)}  {'value':>9}  {'ratio':>6}  {'cpu':>6}  target")
    for label, value, ratio, cpu_ratio, target in rows:
        unit = "" if "MiB" in label and "memory" in label else " s"
        shown = f"{value:.1f}" if unit == "" else f"{value:.3f}"
        ratios = "  ".join(" " * 6 if r is None else f"{r:.2f}×".rjust(6) for r in (ratio, cpu_ratio))
        print(f"{label.ljust(width)}  {shown + unit:>9}  {ratios}  {target or ''}")


if __name__ == "__main__":
    main()
