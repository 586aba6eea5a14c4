"""The store: every SQL statement and every write of chatcrm lives here.

`open_store` is the one function that opens a database; it also creates and migrates
the schema (chatcrm.schema). Writes go through `Store.write()`, a transaction that takes
SQLite's write lock up front (BEGIN IMMEDIATE) so that concurrent writers queue on the
busy timeout instead of failing half-way.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Callable, Iterable, Iterator

from chatcrm import derive
from chatcrm.errors import ChatcrmError, InvalidInput
from chatcrm.events import Event, Invalid

BUSY_TIMEOUT_SECONDS = 60.0
FLUSH_EVERY = 5000
REFRESH_SLICE = 2500
CHECK_MOST = 1000  # differences listed per kind at the most
UPGRADE_NOTICE_BYTES = 50 << 20  # an upgrade of a smaller database is quick: no word of it
EMPLOYEES_SQL = (
    "SELECT responsible FROM chats WHERE responsible IS NOT NULL UNION SELECT agent FROM assignments ORDER BY 1"
)


def default_path() -> Path:
    """`$XDG_DATA_HOME/chatcrm/chatcrm.db`, i.e. `~/.local/share/chatcrm/chatcrm.db`."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "chatcrm" / "chatcrm.db"


def resolve_path(path: str | os.PathLike | None) -> Path:
    """`--db`, else `CHATCRM_DB`, else the default path."""
    if path:
        return Path(path)
    env = os.environ.get("CHATCRM_DB")
    return Path(env) if env else default_path()


def open_store(path: str | os.PathLike | None = None, on_upgrade: Callable[[str], None] | None = None) -> "Store":
    """Open (creating and migrating when needed) the chatcrm database at `path`.

    `on_upgrade` is told (in words) when a large database is about to be upgraded,
    which takes a while, once."""
    import sqlite_utils

    from chatcrm.schema import migrations

    target = resolve_path(path)
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
        db = sqlite_utils.Database(conn, execute_plugins=False)
        store = Store(db, target)
        pending = migrations.pending(db)
    except sqlite3.DatabaseError as error:
        conn.close()
        raise ChatcrmError(f"{target} is not a usable chatcrm database: {error}")
    if pending:
        try:
            with store.write():
                upgrade = bool(migrations.applied(db))
                size = target.stat().st_size
                if upgrade and on_upgrade is not None and size >= UPGRADE_NOTICE_BYTES:
                    names = ", ".join(m.name for m in pending)
                    on_upgrade(f"upgrading {target} ({size >> 20} MiB) to the current schema ({names}); "
                               "this happens once and may take a minute")
                migrations.apply(db)
                if upgrade:
                    # A new schema may derive more from the same facts: derive it all again.
                    store.refresh_all()
        except sqlite3.DatabaseError as error:
            conn.close()
            raise ChatcrmError(f"cannot bring {target} to the current schema: {error}; it is unchanged")
        except BaseException:
            conn.close()
            raise
    return store


class Store:
    def __init__(self, db, path: Path):
        self.db = db
        self.conn: sqlite3.Connection = db.conn
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

    # ----------------------------------------------------------------- reading

    def find_deal(self, ref: str) -> dict | None:
        """A deal by its id (digits) or its key."""
        row = None
        if ref.isdigit():
            row = self._one("SELECT * FROM queue WHERE deal_id = ?", [int(ref)])
        if row is None:
            row = self._one("SELECT * FROM queue WHERE deal_key = ?", [ref])
        return row

    def deal_chats(self, deal_id: int) -> list[dict]:
        """The deal's chat sessions with their activities, oldest first."""
        return self._all(
            """
            SELECT c.id AS chat_id, c.chat_key, k.channel, c.opened_at, c.opened_by, c.closed_at,
                   c.waiting_since, c.first_response_at, c.last_message_at, c.messages, c.responsible,
                   a.id AS activity_id, a.created_at AS activity_created_at, a.completed_at
            FROM chats c JOIN activities a ON a.chat_id = c.id JOIN chat_keys k ON k.key = c.chat_key
            WHERE c.deal_id = ?
            ORDER BY c.opened_at, c.chat_key
            """,
            [deal_id],
        )

    def deal_messages(self, deal_id: int) -> list[dict]:
        return self._all(
            """
            SELECT m.id, m.chat_key, m.direction, m.author, m.text, m.sent_at, m.seq
            FROM chat_keys k JOIN messages m ON m.chat_key = k.key
            WHERE k.deal_id = ?
            ORDER BY m.sent_at, m.seq, m.direction, m.author, m.text
            """,
            [deal_id],
        )

    def deal_assignments(self, deal_id: int) -> list[dict]:
        return self._all(
            """
            SELECT a.chat_key, a.at, a.session, a.agent
            FROM chat_keys k JOIN assignments a ON a.chat_key = k.key
            WHERE k.deal_id = ?
            ORDER BY a.at, a.agent
            """,
            [deal_id],
        )

    def facts(self, deal_id: int | None = None) -> Iterator[tuple]:
        """Every stored fact in time order, with what its chat key's events said of the client.

        Within a second: messages (in their order), closes, completions, assignments.
        Rows: (kind, at, chat_key, uid, direction, author, text, session, agent, channel,
        contact, contact_at, title, title_at, deal_key, deal_id, and for a message that
        opens a session: its chat id and activity id).
        """
        return self.conn.execute(
            """
            SELECT f.kind, f.at, f.chat_key, f.uid, f.direction, f.author, f.text, f.session, f.agent,
                   k.channel, k.contact, k.contact_at, k.title, k.title_at, d.key, d.id, c.id, a.id
            FROM (
                SELECT 'message' AS kind, sent_at AS at, 0 AS rank, seq, direction, author, text, chat_key,
                       id AS fid, uid, NULL AS session, NULL AS agent
                FROM messages
                UNION ALL
                SELECT kind, at, CASE kind WHEN 'close' THEN 1 ELSE 2 END, 0, NULL, NULL, NULL, chat_key,
                       id, NULL, session, NULL
                FROM chat_events
                UNION ALL
                SELECT 'assign', at, 3, 0, NULL, NULL, NULL, chat_key, id, NULL, session, agent
                FROM assignments
            ) f
            JOIN chat_keys k ON k.key = f.chat_key
            JOIN deals d ON d.id = k.deal_id
            LEFT JOIN chats c ON f.rank = 0 AND c.chat_key = f.chat_key AND c.opened_at = f.at
            LEFT JOIN activities a ON a.chat_id = c.id
            WHERE ? IS NULL OR d.id = ?
            ORDER BY f.at, f.rank, f.seq, f.direction, f.author, f.text, f.chat_key, f.fid
            """,
            [deal_id, deal_id],
        )

    def sessions_by_chat_key(self, *, track_waits: bool = False) -> Iterator[tuple[str, str, list]]:
        """Every chat key's channel and sessions, derived afresh from the facts, in key
        order, one key at a time (memory stays flat)."""
        derive_key = self._deriver(touched=False, track_waits=track_waits)
        for key, channel in self.conn.execute("SELECT key, channel FROM chat_keys ORDER BY key"):
            yield key, channel, derive_key(key)

    def _deriver(self, *, touched: bool, track_waits: bool = False):
        """A function giving each chat key's sessions from its facts, to be called in key
        order: the facts of every chat key, or of those in `temp.touched_keys`, are read
        in one pass each (messages; closes, completions and assignments)."""

        def source(table: str, alias: str) -> str:
            if touched:
                return f"temp.touched_keys t CROSS JOIN {table} {alias} ON {alias}.chat_key = t.v"
            return f"{table} {alias}"

        messages = _Peek(groupby(
            self.conn.execute(
                f"SELECT m.chat_key, m.sent_at, m.seq, m.direction, m.id, m.author FROM {source('messages', 'm')} "
                f"ORDER BY {'t.v' if touched else 'm.chat_key'}"
            ),
            key=lambda r: r[0],
        ))
        events = _Peek(groupby(
            self.conn.execute(
                f"SELECT e.chat_key, e.at, e.kind, e.session, '' FROM {source('chat_events', 'e')} "
                f"UNION ALL SELECT a.chat_key, a.at, 'assign', a.session, a.agent FROM {source('assignments', 'a')} "
                "ORDER BY 1"
            ),
            key=lambda r: r[0],
        ))

        def derive_key(key: str) -> list[derive.Session]:
            return derive.derive_sessions(
                (derive.MessageFact(*r[1:]) for r in messages.take(key)),
                (derive.ChatEventFact(*r[1:]) for r in events.take(key)),
                track_waits=track_waits,
            )

        return derive_key

    def count_messages(self, chat_key: str, uid_prefix: str) -> int:
        row = self.conn.execute(
            "SELECT count(*) FROM messages WHERE chat_key = ? AND uid >= ? AND uid < ?",
            [chat_key, uid_prefix, uid_prefix + "\uffff"],
        ).fetchone()
        return row[0]

    def queue(self, status: str | None = None, limit: int | None = None, agent: str | None = None) -> list[dict]:
        sql = "SELECT * FROM queue"
        where, params = _queue_filter(status=status, agent=agent)
        if where:
            sql += " WHERE " + where
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return self._all(sql, params)

    def queue_counts(self, agent: str | None = None) -> dict[str, int]:
        counts = {"unread": 0, "green": 0, "grey": 0}
        sql = "SELECT status_rank, count(*) FROM deals"
        where, params = _queue_filter(agent=agent)
        if where:
            sql += " WHERE " + where
        for rank, count in self.conn.execute(sql + " GROUP BY status_rank", params):
            counts[("unread", "green", "grey")[rank]] = count
        return counts

    def count_waiting_before(self, epoch: int, agent: str | None = None) -> int:
        """Unread deals whose client has waited since before `epoch` (an unread deal's
        queue key is its waiting-since), through the queue indexes."""
        sql = "SELECT count(*) FROM deals WHERE status_rank = 0 AND queue_key < ?"
        params: list = [epoch]
        if agent is not None:
            sql += " AND responsible = ?"
            params.append(agent)
        return self.conn.execute(sql, params).fetchone()[0]

    def is_employee(self, name: str) -> bool:
        """Whether anyone of that name has replied, been assigned or been responsible."""
        return any(
            self.conn.execute(sql, [name]).fetchone()
            for sql in (
                "SELECT 1 FROM deals WHERE responsible = ? LIMIT 1",
                "SELECT 1 FROM assignments WHERE agent = ? LIMIT 1",
                "SELECT 1 FROM messages WHERE author = ? AND direction = 'agent' LIMIT 1",
            )
        )

    def employees(self) -> list[str]:
        """Every employee's name: those responsible for a session or assigned one."""
        return [row[0] for row in self.conn.execute(EMPLOYEES_SQL)]

    def _one(self, sql: str, params: Iterable = ()) -> dict | None:
        rows = self._all(sql, params)
        return rows[0] if rows else None

    def _all(self, sql: str, params: Iterable = ()) -> list[dict]:
        cursor = self.conn.execute(sql, list(params))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor]

    # ----------------------------------------------------------------- writing

    def batch(self, count_stored_duplicates: bool = False) -> "ImportBatch":
        return ImportBatch(self, count_stored_duplicates)

    def _fill_temp(self, name: str, column_type: str, values: Iterable) -> None:
        self.conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} (v {column_type} PRIMARY KEY)")
        self.conn.execute(f"DELETE FROM temp.{name}")
        self.conn.executemany(f"INSERT OR IGNORE INTO temp.{name} (v) VALUES (?)", ((v,) for v in values))

    def _next_id(self, table: str) -> int:
        return (self.conn.execute(f"SELECT max(id) FROM {table}").fetchone()[0] or 0) + 1

    def _allocate(self, table: str, wanted: list[int | None]) -> list[int]:
        """Ids for new rows of `table`: each the id it asks for when that is free (an
        export's ids come back), else the next unused one."""
        hinted = [w for w in wanted if w]
        taken: set[int] = set()
        if hinted:
            taken = {
                row[0]
                for row in self.conn.execute(
                    f"SELECT id FROM {table} WHERE id IN (SELECT value FROM json_each(?))", [json.dumps(hinted)]
                )
            }
        following = max(self._next_id(table), max(hinted, default=0) + 1)
        ids = []
        for want in wanted:
            if want and want not in taken:
                ids.append(want)
                taken.add(want)
            else:
                ids.append(following)
                following += 1
        return ids

    def refresh_chats(self, chat_keys: Iterable[str], hints: dict | None = None) -> set[int]:
        """Re-derive the sessions and activities of these chat keys from their facts.

        Ids stay stable: a stored session keeps its id when a derived session still
        contains its opening time. A new session takes the (chat id, activity id) that
        `hints` gives for its (chat key, opening time) when free. Returns the ids of the
        deals concerned.
        """
        self._fill_temp("touched_keys", "TEXT", chat_keys)
        conn = self.conn
        derive_key = self._deriver(touched=True)
        stored = groupby(
            conn.execute(
                "SELECT c.chat_key, c.id, c.opened_at, c.opened_by, c.closed_at, c.waiting_since, "
                "c.first_response_at, c.last_message_id, c.last_message_at, c.messages, c.responsible, "
                "a.id, a.created_at, a.completed_at "
                "FROM temp.touched_keys t CROSS JOIN chats c ON c.chat_key = t.v "
                "JOIN activities a ON a.chat_id = c.id ORDER BY t.v, c.opened_at"
            ),
            key=lambda r: r[0],
        )
        keys = conn.execute(
            "SELECT t.v, k.deal_id FROM temp.touched_keys t CROSS JOIN chat_keys k ON k.key = t.v ORDER BY t.v"
        ).fetchall()
        next_stored = _Peek(stored)
        inserts: list[tuple] = []
        updates: list[tuple] = []
        activity_updates: list[tuple] = []
        deletes: list[tuple] = []
        deals: set[int] = set()
        for key, deal_id in keys:
            deals.add(deal_id)
            sessions = derive_key(key)
            existing = list(next_stored.take(key))
            for session, row in _match_sessions(sessions, existing, deletes):
                values = _chat_values(session)
                if row is None:
                    inserts.append((session.opened_at, key, deal_id, values, session))
                    continue
                if tuple(row[2:11]) != values:
                    updates.append((*values, row[1]))
                if (row[12], row[13]) != (session.opened_at, session.completed_at):
                    activity_updates.append((session.opened_at, session.completed_at, row[11]))
        if deletes:
            conn.executemany("DELETE FROM activities WHERE chat_id = ?", deletes)
            conn.executemany("DELETE FROM chats WHERE id = ?", deletes)
        conn.executemany(
            "UPDATE chats SET opened_at = ?, opened_by = ?, closed_at = ?, waiting_since = ?, "
            "first_response_at = ?, last_message_id = ?, last_message_at = ?, messages = ?, responsible = ? "
            "WHERE id = ?",
            updates,
        )
        conn.executemany("UPDATE activities SET created_at = ?, completed_at = ? WHERE id = ?", activity_updates)
        if inserts:
            inserts.sort(key=lambda i: (i[0], i[1]))
            wanted = [(hints or {}).get((key, opened_at), (None, None)) for opened_at, key, *_ in inserts]
            chat_ids = self._allocate("chats", [w[0] for w in wanted])
            activity_ids = self._allocate("activities", [w[1] for w in wanted])
            chat_rows, activity_rows = [], []
            for chat_id, activity_id, (_, key, deal_id, values, session) in zip(chat_ids, activity_ids, inserts):
                chat_rows.append((chat_id, key, deal_id, *values))
                activity_rows.append((activity_id, chat_id, deal_id, session.opened_at, session.completed_at))
            conn.executemany(
                "INSERT INTO chats (id, chat_key, deal_id, opened_at, opened_by, closed_at, waiting_since, "
                "first_response_at, last_message_id, last_message_at, messages, responsible) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                chat_rows,
            )
            conn.executemany(
                "INSERT INTO activities (id, chat_id, deal_id, created_at, completed_at) VALUES (?,?,?,?,?)",
                activity_rows,
            )
        return deals

    def refresh(
        self,
        chat_keys: list[str],
        deal_ids: Iterable[int] = (),
        hints: dict | None = None,
        new_deals: dict[int, str] | None = None,
    ) -> None:
        """Re-derive these chat keys, and then their deals and `deal_ids`.

        In slices of chat keys and deals, so that memory stays flat however many chats
        one import touches.
        """
        deals = set(deal_ids)
        for start in range(0, len(chat_keys), REFRESH_SLICE):
            deals |= self.refresh_chats(chat_keys[start : start + REFRESH_SLICE], hints)
        ordered = sorted(deals)
        for start in range(0, len(ordered), REFRESH_SLICE):
            self.refresh_deals(ordered[start : start + REFRESH_SLICE], new_deals)

    def refresh_all(self) -> None:
        keys = [row[0] for row in self.conn.execute("SELECT key FROM chat_keys ORDER BY key")]
        self.refresh(keys, (row[0] for row in self.conn.execute("SELECT id FROM deals")))

    def refresh_deals(self, deal_ids: Iterable[int], new_deals: dict[int, str] | None = None) -> None:
        """Re-derive the deals' contact, title, created-at, status and queue place.

        `new_deals` ({id: key}) are deals an import has bound chats to but not yet
        written: they are inserted whole, once.
        """
        new_deals = new_deals or {}
        self._fill_temp("touched_deals", "INTEGER", deal_ids)
        conn = self.conn
        chats = groupby(
            conn.execute(
                "SELECT c.deal_id, c.opened_at, c.closed_at, c.waiting_since, a.created_at, a.completed_at, "
                "c.last_message_at, c.last_message_id, c.responsible FROM temp.touched_deals t "
                "CROSS JOIN chats c ON c.deal_id = t.v JOIN activities a ON a.chat_id = c.id ORDER BY t.v"
            ),
            key=lambda r: r[0],
        )
        profiles = groupby(
            conn.execute(
                "SELECT t.v, d.key, k.first_at, k.channel, k.contact, k.contact_at, k.title, k.title_at, k.key "
                "FROM temp.touched_deals t CROSS JOIN chat_keys k ON k.deal_id = t.v LEFT JOIN deals d ON d.id = t.v "
                "ORDER BY t.v"
            ),
            key=lambda r: r[0],
        )
        next_chats = _Peek(chats)
        rows = []
        for deal_id, keys in profiles:
            keys = list(keys)
            profile = _deal_profile(keys, new_deals.get(deal_id))
            state = derive.derive_deal(
                (derive.ChatState(*r[1:]) for r in next_chats.take(deal_id)), profile.created_at
            )
            rows.append((profile, state, deal_id))
        contact_ids = self._contact_ids({(p.contact, p.channel) for p, _, _ in rows if p.contact})
        # In id order: each lands after the previous one in the table.
        inserts = sorted((row for row in rows if row[2] in new_deals), key=lambda row: row[2])
        updates = [row for row in rows if row[2] not in new_deals] if inserts else rows
        conn.executemany(
            "INSERT INTO deals (key, title, contact_id, created_at, status, status_rank, queue_key, waiting_since, "
            "oldest_active_at, open_chats, active_activities, last_message_id, last_message_at, last_event_at, "
            "responsible, id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            ((p.key, *_deal_values(p, s, contact_ids), deal_id) for p, s, deal_id in inserts),
        )
        conn.executemany(
            "UPDATE deals SET title = ?, contact_id = ?, created_at = ?, status = ?, status_rank = ?, "
            "queue_key = ?, waiting_since = ?, oldest_active_at = ?, open_chats = ?, active_activities = ?, "
            "last_message_id = ?, last_message_at = ?, last_event_at = ?, responsible = ? WHERE id = ?",
            ((*_deal_values(p, s, contact_ids), deal_id) for p, s, deal_id in updates),
        )

    def _contact_ids(self, contacts: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
        conn = self.conn
        conn.executemany("INSERT OR IGNORE INTO contacts (name, channel) VALUES (?, ?)", contacts)
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS wanted_contacts (name TEXT, channel TEXT)")
        conn.execute("DELETE FROM temp.wanted_contacts")
        conn.executemany("INSERT INTO temp.wanted_contacts (name, channel) VALUES (?, ?)", contacts)
        return {
            (name, channel): contact_id
            for contact_id, name, channel in conn.execute(
                "SELECT c.id, c.name, c.channel FROM temp.wanted_contacts w "
                "CROSS JOIN contacts c ON c.name = w.name AND c.channel = w.channel"
            )
        }


    # ----------------------------------------------------------------- checking

    def check(self, most: int = CHECK_MOST) -> list[str]:
        """Everything wrong with the database: SQLite's integrity, foreign keys, and every
        derived state that differs from what the stored facts give recomputed from scratch
        (up to `most` deals and chats of each kind of difference).

        The stored states are copied aside, everything is derived again inside a savepoint
        that is then rolled back, and SQL compares the two: only what differs is read into
        memory, however large the database.
        """
        problems = [f"integrity: {row[0]}" for row in self.conn.execute("PRAGMA integrity_check") if row[0] != "ok"]
        if problems:
            return problems
        problems += [
            f"foreign key: {table} row {rowid} points to a missing {parent}"
            for table, rowid, parent, _ in self.conn.execute("PRAGMA foreign_key_check")
        ]
        conn = self.conn
        differing: dict[str, tuple[dict, dict]] = {}
        with self.write():
            for kind, sql in _DERIVED_STATES.items():
                conn.execute(f"DROP TABLE IF EXISTS temp.stored_{kind}")
                conn.execute(f"CREATE TEMP TABLE stored_{kind} AS {sql}")
            conn.execute("SAVEPOINT recompute")
            try:
                conn.execute("DELETE FROM activities")
                conn.execute("DELETE FROM chats")
                conn.execute(
                    "UPDATE deals SET status = 'grey', status_rank = 2, queue_key = 0, waiting_since = NULL, "
                    "oldest_active_at = NULL, open_chats = 0, active_activities = 0, last_message_id = NULL, "
                    "last_message_at = NULL, last_event_at = NULL, title = '', contact_id = NULL, created_at = NULL, "
                    "responsible = NULL"
                )
                self.refresh_all()
                for kind, sql in _DERIVED_STATES.items():
                    have = self._all(f"SELECT * FROM temp.stored_{kind} EXCEPT {sql} LIMIT ?", [most])
                    want = self._all(f"{sql} EXCEPT SELECT * FROM temp.stored_{kind} LIMIT ?", [most])
                    differing[kind] = ({_state_key(r): r for r in have}, {_state_key(r): r for r in want})
            finally:
                conn.execute("ROLLBACK TO recompute")
                conn.execute("RELEASE recompute")
                for kind in _DERIVED_STATES:
                    conn.execute(f"DROP TABLE IF EXISTS temp.stored_{kind}")
        for kind, (have, want) in differing.items():
            for key in sorted(set(have) | set(want), key=str):
                if key not in want:
                    problems.append(f"{kind} {key}: stored, but the facts give no such {kind}")
                elif key not in have:
                    problems.append(f"{kind} {key}: missing; the facts give {want[key]}")
                else:
                    for field in want[key]:
                        if have[key][field] != want[key][field]:
                            problems.append(
                                f"{kind} {key}: {field} is {have[key][field]!r}, the facts give {want[key][field]!r}"
                            )
            if most in (len(have), len(want)):
                problems.append(f"{kind}s: there may be more differences than the {most} listed")
        return problems

    def counts(self) -> dict[str, int]:
        return {
            table: self.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("deals", "chats", "activities", "messages", "chat_events", "assignments")
        }



# The derived states `check` compares, each row named by its first column(s).
_DERIVED_STATES = {
    "deal": "SELECT d.key, d.title, c.name AS contact, d.created_at, d.status, d.queue_key, d.waiting_since, "
    "d.oldest_active_at, d.open_chats, d.active_activities, d.last_message_id, d.last_message_at, "
    "d.last_event_at, d.responsible FROM deals d LEFT JOIN contacts c ON c.id = d.contact_id",
    "chat": "SELECT c.chat_key, c.opened_at, d.key AS deal, c.opened_by, c.closed_at, c.waiting_since, "
    "c.first_response_at, c.last_message_id, c.last_message_at, c.messages, c.responsible, "
    "a.created_at AS activity_created_at, a.completed_at AS activity_completed_at "
    "FROM chats c JOIN deals d ON d.id = c.deal_id LEFT JOIN activities a ON a.chat_id = c.id",
}


def _state_key(row: dict):
    """A derived state's name: a deal's key, or a chat's (chat key, opening time); the
    row keeps the rest."""
    if "chat_key" in row:
        return (row.pop("chat_key"), row.pop("opened_at"))
    return row.pop("key")


_index_order = itemgetter(0, 1)  # a message row's place in the (chat key, uid) index


def _deal_values(p: "_Profile", s: derive.DealState, contact_ids: dict) -> tuple:
    """A deal's derived columns, in the order the INSERT and UPDATE of refresh_deals name them."""
    return (
        p.title,
        contact_ids.get((p.contact, p.channel)),
        p.created_at,
        s.status,
        s.status_rank,
        s.queue_key,
        s.waiting_since,
        s.oldest_active_at,
        s.open_chats,
        s.active_activities,
        s.last_message_id,
        s.last_message_at,
        s.last_event_at,
        s.responsible,
    )


def _queue_filter(status: str | None = None, agent: str | None = None) -> tuple[str, list]:
    clauses, params = [], []
    if status:
        clauses.append("status = ?")
        params.append(status)
    if agent is not None:
        clauses.append("responsible = ?")
        params.append(agent)
    return " AND ".join(clauses), params


def _chat_values(session: derive.Session) -> tuple:
    return (
        session.opened_at,
        session.opened_by,
        session.closed_at,
        session.waiting_since if session.unread else None,
        session.first_response_at,
        session.last_message_id,
        session.last_message_at,
        session.messages,
        session.responsible,
    )


def _match_sessions(sessions: list[derive.Session], existing: list[tuple], deletes: list[tuple]):
    """Pair each derived session with the stored row whose opening it contains (or None)."""
    position = 0
    for index, session in enumerate(sessions):
        span_end = sessions[index + 1].opened_at if index + 1 < len(sessions) else None
        kept = None
        while position < len(existing) and (span_end is None or existing[position][2] < span_end):
            if kept is None:
                kept = existing[position]
            else:
                deletes.append((existing[position][1],))
            position += 1
        yield session, kept
    deletes.extend((row[1],) for row in existing[position:])


@dataclass
class _Profile:
    key: str
    created_at: str | None
    contact: str | None
    channel: str
    title: str


def _deal_profile(keys: list[tuple], new_key: str | None = None) -> _Profile:
    """A deal's created-at, contact and title from its chat keys (earliest event wins);
    `new_key` is the key of a deal not written yet."""
    deal_key = keys[0][1] or new_key
    first = min(keys, key=lambda r: (r[2] or "", r[8]))
    named = [r for r in keys if r[5]]
    contact = min(named, key=lambda r: (r[5], r[4]))[4] if named else None
    titled = [r for r in keys if r[7]]
    channel = first[3]
    if titled:
        title = min(titled, key=lambda r: (r[7], r[6]))[6]
    elif contact:
        title = f"{contact} ({channel})" if channel else contact
    else:
        title = deal_key
    created = min((r[2] for r in keys if r[2]), default=None)
    return _Profile(deal_key, created, contact, channel, title)


class _Peek:
    """Takes the rows of one key at a time from a groupby over key-ordered rows."""

    def __init__(self, groups):
        self._groups = groups
        self._head = next(groups, None)

    def take(self, key) -> Iterator[tuple]:
        while self._head is not None and self._head[0] < key:
            self._head = next(self._groups, None)
        if self._head is None or self._head[0] != key:
            return iter(())
        rows = list(self._head[1])
        self._head = next(self._groups, None)
        return iter(rows)


class _KeyInfo:
    """What one import batch learned about a chat key."""

    __slots__ = ("deal", "named_deal", "channel", "channel_at", "contact", "contact_at", "title", "title_at", "first_at")

    def __init__(self, deal: str | None):
        self.deal = deal  # the key of the deal it is bound to in the database
        self.named_deal: str | None = None
        self.channel = self.channel_at = self.contact = self.contact_at = None
        self.title = self.title_at = self.first_at = None


class ImportBatch:
    """Records events inside one write transaction, then re-derives what they touch.

    Into an empty `messages` table, a large import drops the (chat key, uid) index and
    builds it once at the end (a third of the cost of keeping it up to date row by
    row); repeated messages found then are removed, the first one staying.
    """

    def __init__(self, store: Store, count_stored_duplicates: bool):
        self.store = store
        self.keys: dict[str, _KeyInfo] = {}
        self.messages_added = 0
        self.events_added = 0
        self.present = 0
        self._count_stored = count_stored_duplicates
        self._occurrences: dict[tuple[str, str], int] = {}
        self._message_rows: list[tuple] = []
        self._event_rows: list[tuple] = []
        self._assignment_rows: list[tuple] = []
        self._deal_hints: dict[str, int] = {}
        self._channels: dict[str, str] = {}
        self._session_hints: dict[tuple[str, str], tuple[int | None, int | None]] = {}
        conn = store.conn
        # (max() of a rowid is one lookup, where an EXISTS would start a scan)
        self._empty = conn.execute("SELECT max(id) FROM messages").fetchone()[0] is None
        self._index_dropped = False
        self._any_keys = conn.execute("SELECT max(rowid) FROM chat_keys").fetchone()[0] is not None
        conn.execute("PRAGMA defer_foreign_keys=ON")

    def start_file(self) -> None:
        """The events that follow come from another file (or the same one read again):
        id-less messages count their occurrences afresh (SPEC §4, "in the same file")."""
        self._occurrences = {}

    def add(self, event: Event) -> None:
        """Record one event; raises InvalidInput when it names another deal for its chat."""
        info = self.keys.get(event.chat)
        if info is None:
            row = None
            if self._any_keys:
                row = self.store.conn.execute(
                    "SELECT d.key FROM chat_keys k JOIN deals d ON d.id = k.deal_id WHERE k.key = ?", (event.chat,)
                ).fetchone()
            info = _KeyInfo(row[0] if row else None)
        if event.deal is not None:
            expected = info.deal or info.named_deal
            if expected is None:
                info.named_deal = event.deal
            elif expected != event.deal:
                raise InvalidInput.at(
                    Invalid(
                        event.source,
                        event.line,
                        f"chat {event.chat!r} belongs to deal {expected!r}, but this event names deal {event.deal!r}",
                    )
                )
        self.keys[event.chat] = info
        at = event.at
        if event.deal_id is not None:
            self._deal_hints.setdefault(info.deal or info.named_deal or event.chat, event.deal_id)
        if event.chat_id is not None or event.activity_id is not None:
            self._session_hints.setdefault((event.chat, at), (event.chat_id, event.activity_id))
        # What the events say of the client: the earliest wins (ties: the smallest value),
        # so the result does not depend on arrival order. Most events come later than
        # what is known already: the first comparison settles them.
        first_at = info.first_at
        if first_at is None or at < first_at:
            info.first_at = at
        if info.channel_at is None or at <= info.channel_at:
            channel = event.channel or _channel_from_key(event.chat)
            if info.channel_at is None or (at, channel) < (info.channel_at, info.channel):
                # one string object per channel name, however many chats name it
                info.channel, info.channel_at = self._channels.setdefault(channel, channel), at
        if info.contact_at is None or at <= info.contact_at:
            contact = event.contact or (event.author if event.direction == "client" else None)
            if contact and (info.contact_at is None or (at, contact) < (info.contact_at, info.contact)):
                info.contact, info.contact_at = contact, at
        if event.title and (info.title_at is None or (at, event.title) < (info.title_at, info.title)):
            info.title, info.title_at = event.title, at
        if event.type == "message":
            uid = "id:" + event.id if event.id is not None else self._uid(event)
            self._message_rows.append((event.chat, uid, event.direction, event.author, event.text, at, event.line))
            if len(self._message_rows) >= FLUSH_EVERY:
                self._flush()
        elif event.type == "assign":
            self._assignment_rows.append((event.chat, at, event.session or "", event.agent))
        else:
            self._event_rows.append((event.chat, event.type, at, event.session or ""))

    def _uid(self, event: Event) -> str:
        """SPEC §4: a message without an id is known by its content and its occurrence
        number among identical messages of its file (see start_file)."""
        digest = hashlib.blake2b(
            "\x1f".join((event.at, event.direction or "", event.author, event.text)).encode("utf-8", "surrogatepass"),
            digest_size=12,
        ).hexdigest()
        prefix = "h:" + digest + "#"
        slot = (event.chat, prefix)
        count = self._occurrences.get(slot)
        if count is None:
            count = self.store.count_messages(event.chat, prefix) if self._count_stored and not self._empty else 0
        count += 1
        self._occurrences[slot] = count
        return prefix + str(count)

    def _flush(self) -> None:
        conn = self.store.conn
        rows = self._message_rows
        if rows:
            if self._empty and not self._index_dropped and len(rows) >= FLUSH_EVERY:
                # A large import into an empty table: the index is built at the end.
                conn.execute("DROP INDEX messages_key")
                self._index_dropped = True
            # In index order: each insert lands next to the previous one in the (chat
            # key, uid) index; and however many flushes there are, re-deriving the chat
            # keys in their order then reads each flush's rows in order.
            # (Without the index nothing is ignored here: _build_index finds the repeats.)
            rows.sort(key=_index_order)
            cursor = conn.executemany(
                "INSERT OR IGNORE INTO messages (chat_key, uid, direction, author, text, sent_at, seq) "
                "VALUES (?,?,?,?,?,?,?)",
                rows,
            )
            self.messages_added += cursor.rowcount
            self.present += len(rows) - cursor.rowcount
            self._message_rows = []
        if self._event_rows:
            cursor = conn.executemany(
                "INSERT OR IGNORE INTO chat_events (chat_key, kind, at, session) VALUES (?,?,?,?)", self._event_rows
            )
            self.events_added += cursor.rowcount
            self.present += len(self._event_rows) - cursor.rowcount
            self._event_rows = []
        if self._assignment_rows:
            cursor = conn.executemany(
                "INSERT OR IGNORE INTO assignments (chat_key, at, session, agent) VALUES (?,?,?,?)",
                self._assignment_rows,
            )
            self.events_added += cursor.rowcount
            self.present += len(self._assignment_rows) - cursor.rowcount
            self._assignment_rows = []

    def _build_index(self) -> None:
        """After a large import into an empty table: remove repeated messages (the first
        stays) and build the (chat key, uid) index."""
        if not self._index_dropped:
            return
        from chatcrm.schema import MESSAGES_KEY_INDEX

        conn = self.store.conn
        self._index_dropped = False
        try:
            conn.execute(MESSAGES_KEY_INDEX)
            return
        except sqlite3.IntegrityError:
            pass
        repeated = conn.execute(
            "DELETE FROM messages WHERE id NOT IN (SELECT min(id) FROM messages GROUP BY chat_key, uid)"
        ).rowcount
        self.messages_added -= repeated
        self.present += repeated
        conn.execute(MESSAGES_KEY_INDEX)

    def finish(self) -> None:
        """Bind new chat keys to deals, save what the events said, re-derive the states."""
        self._flush()
        # Before the chat keys are written: each looks up its messages in the index.
        self._build_index()
        if not self.keys:
            return
        conn = self.store.conn
        # Deals this import creates: first their earliest event, then (the same dict, so
        # that memory holds one) their new ids, handed out in time order.
        unwritten: dict[str, str | int] = {}
        for key, info in self.keys.items():
            if info.deal is None:
                info.deal = info.named_deal or key
                first = unwritten.get(info.deal)
                if first is None or info.first_at < first:
                    unwritten[info.deal] = info.first_at
        # Deals are made with their first chat key: with no chat key stored, none exists.
        for deal_key in list(unwritten) if self._any_keys else ():
            if conn.execute("SELECT 1 FROM deals WHERE key = ?", (deal_key,)).fetchone():
                del unwritten[deal_key]
        fresh = sorted(unwritten, key=lambda deal_key: (unwritten[deal_key], deal_key))
        ids = self.store._allocate("deals", [self._deal_hints.get(deal_key) for deal_key in fresh])
        for deal_key, deal_id in zip(fresh, ids):
            # Written whole by refresh_deals, once their state is known; until then the
            # chat keys name them (foreign keys are checked at commit).
            unwritten[deal_key] = deal_id
        del fresh, ids
        conn.executemany(
            """
            INSERT INTO chat_keys (key, deal_id, channel, channel_at, contact, contact_at, title, title_at, first_at)
            VALUES (?, coalesce(?, (SELECT id FROM deals WHERE key = ?)), ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (key) DO UPDATE SET
                channel = CASE WHEN (excluded.channel_at, excluded.channel) < (chat_keys.channel_at, chat_keys.channel)
                    THEN excluded.channel ELSE chat_keys.channel END,
                channel_at = min(excluded.channel_at, chat_keys.channel_at),
                contact = CASE WHEN excluded.contact_at IS NOT NULL AND (chat_keys.contact_at IS NULL
                    OR (excluded.contact_at, excluded.contact) < (chat_keys.contact_at, chat_keys.contact))
                    THEN excluded.contact ELSE chat_keys.contact END,
                contact_at = coalesce(min(excluded.contact_at, chat_keys.contact_at), excluded.contact_at, chat_keys.contact_at),
                title = CASE WHEN excluded.title_at IS NOT NULL AND (chat_keys.title_at IS NULL
                    OR (excluded.title_at, excluded.title) < (chat_keys.title_at, chat_keys.title))
                    THEN excluded.title ELSE chat_keys.title END,
                title_at = coalesce(min(excluded.title_at, chat_keys.title_at), excluded.title_at, chat_keys.title_at),
                first_at = min(excluded.first_at, chat_keys.first_at)
            """,
            (
                (key, unwritten.get(i.deal), i.deal, i.channel, i.channel_at, i.contact, i.contact_at, i.title,
                 i.title_at, i.first_at)
                for key, i in self.keys.items()
            ),
        )
        keys = sorted(self.keys)
        self.keys = {}
        unwritten_ids = {deal_id: deal_key for deal_key, deal_id in unwritten.items()}
        del unwritten
        self.store.refresh(keys, hints=self._session_hints, new_deals=unwritten_ids)


_CHANNEL_PREFIXES = {"tg": "telegram", "wa": "whatsapp", "fb": "messenger", "ig": "instagram", "web": "webchat"}


def _channel_from_key(chat_key: str) -> str:
    """An event without `channel`: the chat key's prefix (`tg:…` → telegram), else `chat`."""
    prefix, sep, _ = chat_key.partition(":")
    if not sep:
        return "chat"
    return _CHANNEL_PREFIXES.get(prefix.lower(), prefix.lower() or "chat")
