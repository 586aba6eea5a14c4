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
    "m005_search_and_idle_index",
    "m006_stored_waits",
    "m007_follow_ups",
    "m008_live_channels",
    "m009_change_log",
    "m010_live_facts_in_the_change_log",
    "m011_chat_channels",
    "m012_first_repliers",
    "m013_queue_counts",
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

    def rows(self, sql: str, params: Iterable | dict = ()) -> list[dict]:
        cursor = self.conn.execute(sql, params if isinstance(params, dict) else list(params))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor]

    def row(self, sql: str, params: Iterable | dict = ()) -> dict | None:
        rows = self.rows(sql, params)
        return rows[0] if rows else None


SQLITE_HEADER = b"SQLite format 3\x00"


def open_store(
    path: str | os.PathLike,
    on_upgrade: Callable[[str], None] | None = None,
    *,
    read_only: bool = False,
    create: bool = True,
) -> Store:
    """Open the chatcrm database at `path`: creating it (only when `create`) and
    migrating it when needed.

    A file that is not a chatcrm database — not SQLite, or another application's SQLite
    database — is refused and left byte for byte as it was. `read_only` never creates or
    changes anything, and works on a read-only file or folder; a database of an older
    schema is then read through a private upgraded copy (a temporary file SQLite deletes
    on close), the file itself untouched. `on_upgrade` is told (in words) when a large
    database is about to be upgraded, or when a copy is read instead."""
    target = Path(path)
    exists = target.exists()
    if not exists and (read_only or not create):
        raise ChatcrmError(_no_database(target))
    if target.is_dir():
        raise ChatcrmError(f"cannot open database {target}: it is a folder")
    try:
        if not exists:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # The database holds personal data: readable by its owner only. SQLite gives
            # the -wal and -shm files the same permissions.
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o600))
        with open(target, "rb") as stream:
            header = stream.read(len(SQLITE_HEADER))
        if header and header != SQLITE_HEADER:
            raise ChatcrmError(f"{target} is not a usable chatcrm database: it is not a SQLite database "
                               "(chatcrm leaves it as it is)")
        if not header and (read_only or not create):
            raise ChatcrmError(_no_database(target, "is empty"))
        conn = _connect_read_only(target) if read_only else sqlite3.connect(str(target), timeout=BUSY_TIMEOUT_SECONDS)
    except OSError as error:
        raise ChatcrmError(f"cannot open database {target}: {error.strerror or error}")
    except sqlite3.Error as error:
        raise ChatcrmError(f"cannot open database {target}: {error}")
    try:
        applied = _applied(conn)
        if not applied:
            others = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
                                                     "ORDER BY name LIMIT 6")]
            if others:
                shown = ", ".join(others[:5]) + (", …" if len(others) > 5 else "")
                raise ChatcrmError(f"{target} is not a usable chatcrm database: it is another application's SQLite "
                                   f"database (it holds {shown}); chatcrm leaves it as it is")
            if read_only or not create:
                raise ChatcrmError(_no_database(target, "has no chatcrm tables yet"))
        if not read_only:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA cache_size=-8192")  # 8 MiB: more costs memory and saves little time
    except sqlite3.DatabaseError as error:
        conn.close()
        raise ChatcrmError(f"{target} is not a usable chatcrm database: {error}")
    except BaseException:
        conn.close()
        raise
    store = Store(conn, target)
    if applied != SCHEMA:
        if read_only:
            store = _upgraded_copy(store, on_upgrade)
        _migrate(store, bool(applied), on_upgrade)
    return store


def _no_database(target: Path, what: str = "does not exist") -> str:
    return (f"no chatcrm database at {target} (it {what}); importing creates one: chatcrm ingest FILE "
            "(with the same --db or $CHATCRM_DB)")


def _connect_read_only(target: Path) -> sqlite3.Connection:
    """A connection that cannot write, to a file and a folder that may be read-only.

    Where chatcrm may write the folder, the connection is an ordinary one with
    `query_only`: SQLite then removes the -wal and -shm files it needs on close, as after
    any command. Otherwise `mode=ro`, which needs the -shm file to exist or to be
    creatable; where it cannot be (a read-only folder or mount, no -shm), and nobody can
    write the database, it is opened `immutable=1` (no locks, no -shm)."""
    uri = target.absolute().as_uri()
    folder = target.absolute().parent
    if os.access(target, os.W_OK) and os.access(folder, os.W_OK | os.X_OK) and not _read_only_mount(folder):
        conn = sqlite3.connect(f"{uri}?mode=rw", uri=True, timeout=BUSY_TIMEOUT_SECONDS)
        conn.execute("PRAGMA query_only=ON")
        return conn
    conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_SECONDS)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        conn.close()
        nobody_writes = _read_only_mount(folder) or not (os.access(folder, os.W_OK) or os.access(target, os.W_OK))
        if not nobody_writes:
            raise
    wal = Path(f"{target}-wal")
    if wal.exists() and wal.stat().st_size:
        # Immutable reads ignore the -wal file, and what it holds would be missing.
        raise ChatcrmError(f"cannot read {target} here: its latest changes are in {wal.name}, which SQLite cannot "
                           "use in a read-only folder; open it once where it can be written (any chatcrm command "
                           "does), then copy it back")
    return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True)


def _read_only_mount(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def _upgraded_copy(store: Store, on_upgrade: Callable[[str], None] | None) -> Store:
    """A private copy of an older database to upgrade and read, the file left as it is."""
    copy = sqlite3.connect("")  # a temporary file of SQLite's own, deleted on close
    try:
        store.conn.backup(copy)
    finally:
        store.conn.close()
    copy.execute("PRAGMA foreign_keys=ON")
    if on_upgrade is not None:
        on_upgrade(f"note: {store.path} has an older schema; this reads an upgraded copy and leaves the file as it "
                   "is (a command that writes, such as ingest, upgrades it)")
    return Store(copy, store.path)


def discard_if_empty(store: Store) -> None:
    """Close and remove a database that holds no facts (one this command created for an
    import that was then refused); anything in it, or any doubt, keeps it."""
    try:
        if store.conn.execute("SELECT 1 FROM messages LIMIT 1").fetchone() is not None:
            return
        if store.conn.execute("SELECT 1 FROM chat_events UNION ALL SELECT 1 FROM assignments LIMIT 1").fetchone():
            return
        store.close()
        remove_database(store.path)
    except (OSError, sqlite3.Error):
        pass


def remove_database(path) -> None:
    """Remove a database this command created, with the files SQLite keeps beside it."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        except OSError:
            pass


def employee_names_read_only(path: Path) -> list[str]:
    """The employees' names in the database at `path`, read without creating or changing
    anything (for shell completion): none when there is no usable database there."""
    from chatcrm.rules.employees import names_sql

    if not path.exists():
        return []
    try:
        conn = _connect_read_only(path)
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
