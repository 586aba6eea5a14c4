"""Opening a chatcrm database, and its transactions.

`open_store` is the one function that opens a database. It checks the schema version with
`sqlite3` alone; only a new or older database brings in the migrations (chatcrm.store.schema,
with sqlite-utils), so that the everyday commands start quickly. Writes go through
`Store.write()`, a transaction that takes SQLite's write lock up front (BEGIN IMMEDIATE) so
that concurrent writers queue on the busy timeout instead of failing half-way.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator

from chatcrm.errors import ChatcrmError

BUSY_TIMEOUT_SECONDS = 60.0
UPGRADE_NOTICE_BYTES = 50 << 20  # an upgrade of a smaller database is quick: no word of it
MIGRATION_SET = "chatcrm"
# The migrations of chatcrm.store.schema, in order (a test checks that they agree): a
# database that has applied all of them needs nothing from sqlite-utils.
SCHEMA = (
    "m001_initial",
    "m002_assignments",
    "m003_messages_key_index",
    "m004_identity_without_direction",
    "m005_change_log",
)


class Store:
    """An open chatcrm database: its connection and its transactions.

    The SQL lives in the modules beside this one, by job: `queries` (what commands read),
    `facts` (the stored facts as streams), `batch` (recording an import), `projection`
    (deriving states from facts), `verify` (`chatcrm check`), `schema` (migrations).
    """

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self.conn = conn
        self.path = path

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def write(self) -> Iterator["Store"]:
        """One write transaction, its lock taken up front; rolled back on any error."""
        if self.conn.in_transaction:
            yield self
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.conn.rollback()
            raise
        else:
            self.conn.commit()

    @contextmanager
    def read(self) -> Iterator["Store"]:
        """One read transaction: a consistent snapshot for reads that take several queries."""
        if self.conn.in_transaction:
            yield self
            return
        self.conn.execute("BEGIN")
        try:
            yield self
        finally:
            self.conn.rollback()

    def rows(self, sql: str, params: Iterable = ()) -> list[dict]:
        cursor = self.conn.execute(sql, list(params))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor]

    def row(self, sql: str, params: Iterable = ()) -> dict | None:
        rows = self.rows(sql, params)
        return rows[0] if rows else None


def open_store(path: str | os.PathLike, on_upgrade: Callable[[str], None] | None = None) -> Store:
    """Open (creating and migrating when needed) the chatcrm database at `path`.

    `on_upgrade` is told (in words) when a large database is about to be upgraded,
    which takes a while, once."""
    target = Path(path)
    try:
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # The database holds personal data: readable by its owner only. SQLite gives
            # the -wal and -shm files the same permissions.
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o600))
        conn = sqlite3.connect(str(target), timeout=BUSY_TIMEOUT_SECONDS)
    except OSError as error:
        raise ChatcrmError(f"cannot open database {target}: {error.strerror or error}")
    except sqlite3.Error as error:
        raise ChatcrmError(f"cannot open database {target}: {error}")
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA cache_size=-8192")  # 8 MiB: more costs memory and saves little time
        applied = _applied(conn)
    except sqlite3.DatabaseError as error:
        conn.close()
        raise ChatcrmError(f"{target} is not a usable chatcrm database: {error}")
    store = Store(conn, target)
    if applied != SCHEMA:
        _migrate(store, bool(applied), on_upgrade)
    return store


def employee_names_read_only(path: Path) -> list[str]:
    """The employees' names in the database at `path`, read without creating or changing
    anything (for shell completion): none when there is no usable database there."""
    from chatcrm.rules.employees import names_sql

    if not path.exists():
        return []
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
        try:
            return [row[0] for row in conn.execute(names_sql())]
        finally:
            conn.close()
    except sqlite3.Error:
        return []


def _applied(conn: sqlite3.Connection) -> tuple[str, ...]:
    """The names of the migrations the database has applied, in order."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlite_migrations'").fetchone():
        return ()
    return tuple(
        row[0]
        for row in conn.execute(
            "SELECT name FROM _sqlite_migrations WHERE migration_set = ? ORDER BY rowid", [MIGRATION_SET]
        )
    )


def _migrate(store: Store, upgrade: bool, on_upgrade: Callable[[str], None] | None) -> None:
    """Create the schema, or bring an older one up to date, in one transaction; an
    upgrade then derives every state again from the facts."""
    import sqlite_utils

    from chatcrm.store import projection
    from chatcrm.store.schema import migrations

    target, conn = store.path, store.conn
    try:
        db = sqlite_utils.Database(conn, execute_plugins=False)
        pending = migrations.pending(db)
        if not pending:
            return
        with store.write():
            size = target.stat().st_size
            if upgrade and on_upgrade is not None and size >= UPGRADE_NOTICE_BYTES:
                names = ", ".join(m.name for m in pending)
                on_upgrade(f"upgrading {target} ({size >> 20} MiB) to the current schema ({names}); "
                           "this happens once and may take a minute")
            migrations.apply(db)
            if upgrade:
                # A new schema may derive more from the same facts: derive it all again.
                projection.refresh_all(store)
    except sqlite3.DatabaseError as error:
        conn.close()
        raise ChatcrmError(f"cannot bring {target} to the current schema: {error}; it is unchanged")
    except BaseException:
        conn.close()
        raise
