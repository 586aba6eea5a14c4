"""`chatcrm check`: the database against SQLite's integrity and against its own facts.

SQLite's checks run in a read transaction. The derived states are then recomputed from
the stored facts in a private snapshot of the database (SQLite's backup into a temporary
file of its own, deleted when closed), and SQL compares the two there: `check` takes no
write lock, so writers go on meanwhile, it works on a read-only file, and only what
differs is read into memory, however large the database.
"""

from __future__ import annotations

import sqlite3

from chatcrm.rules.statuses import GREY, RANK, STATUSES
from chatcrm.store import changes, projection, search
from chatcrm.store.connection import Store
from chatcrm.store.ddl import FACT_TABLES

CHECK_MOST = 1000  # differences listed per kind at the most
COUNTED_TABLES = ("deals", "chats", "activities", *FACT_TABLES)

# The derived states `check` compares, each row named by its first column(s).
_DERIVED_STATES = {
    "deal": "SELECT d.key, d.title, c.name AS contact, d.created_at, d.status, d.queue_key, d.waiting_since, "
    "d.oldest_active_at, d.open_chats, d.active_activities, d.last_message_id, d.last_message_at, "
    "d.last_event_at, d.responsible, d.status_rank, d.follow_up_at, d.due_key FROM deals d LEFT JOIN contacts c ON c.id = d.contact_id",
    "chat": "SELECT c.chat_key, c.opened_at, d.key AS deal, c.opened_by, c.closed_at, c.waiting_since, "
    "c.first_response_at, c.first_reply_by, c.last_message_id, c.last_message_at, c.messages, c.responsible, c.channel, "
    "a.created_at AS activity_created_at, a.completed_at AS activity_completed_at, "
    "a.follow_up_at AS activity_follow_up_at, a.follow_up_note AS activity_follow_up_note "
    "FROM chats c JOIN deals d ON d.id = c.deal_id LEFT JOIN activities a ON a.chat_id = c.id",
    "wait": "SELECT c.chat_key, c.opened_at, w.started_at, w.ended_at, w.answered_by "
    "FROM waits w JOIN chats c ON c.id = w.chat_id",
}


def check(store: Store, most: int = CHECK_MOST) -> list[str]:
    """Everything wrong with the database: SQLite's integrity, foreign keys, and every
    derived state that differs from what the stored facts give recomputed from scratch
    (up to `most` deals and chats of each kind of difference)."""
    with store.read():
        conn = store.conn
        problems = [f"integrity: {row[0]}" for row in conn.execute("PRAGMA integrity_check") if row[0] != "ok"]
        if problems:
            return problems
        problems += [
            f"foreign key: {table} row {rowid} points to a missing {parent}"
            for table, rowid, parent, _ in conn.execute("PRAGMA foreign_key_check")
        ]
        problems += _queue_count_problems(store)
    snapshot = sqlite3.connect("")  # deleted on close
    try:
        store.conn.backup(snapshot)  # in one step: one consistent snapshot
        snapshot.execute("PRAGMA foreign_keys=ON")
        return problems + _derived_differences(Store(snapshot, store.path), most)
    finally:
        snapshot.close()


def _derived_differences(store: Store, most: int) -> list[str]:
    """Every derived state of `store` (a private snapshot: it is changed) that differs from
    what its facts give recomputed from scratch."""
    conn = store.conn
    problems: list[str] = changes.problems(store)
    differing: dict[str, tuple[dict, dict]] = {}
    with store.write():
        # (the integrity check of an FTS5 index is an INSERT: inside this transaction)
        problems += search.problems(store)
        for kind, sql in _DERIVED_STATES.items():
            conn.execute(f"DROP TABLE IF EXISTS temp.stored_{kind}")
            conn.execute(f"CREATE TEMP TABLE stored_{kind} AS {sql}")
        conn.execute("SAVEPOINT recompute")
        try:
            conn.execute("DELETE FROM waits")
            conn.execute("DELETE FROM activities")
            conn.execute("DELETE FROM chats")
            conn.execute(
                f"UPDATE deals SET status = '{GREY}', status_rank = {RANK[GREY]}, queue_key = 0, waiting_since = NULL, "
                "oldest_active_at = NULL, open_chats = 0, active_activities = 0, last_message_id = NULL, "
                "last_message_at = NULL, last_event_at = NULL, title = '', contact_id = NULL, created_at = NULL, "
                "responsible = NULL, follow_up_at = NULL, due_key = NULL"
            )
            projection.refresh_all(store)
            for kind, sql in _DERIVED_STATES.items():
                have = store.rows(f"SELECT * FROM temp.stored_{kind} EXCEPT {sql} LIMIT ?", [most])
                want = store.rows(f"{sql} EXCEPT SELECT * FROM temp.stored_{kind} LIMIT ?", [most])
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


_COUNTED = "SELECT coalesce(responsible, '') AS responsible, status_rank, count(*) AS deals FROM deals GROUP BY 1, 2"
_STORED_COUNTS = "SELECT responsible, status_rank, deals FROM queue_counts WHERE deals <> 0"


def _queue_count_problems(store: Store) -> list[str]:
    """The queue's stored counts (`queue_counts`) that differ from a count of the deals."""
    stored = {(r, rank): n for r, rank, n in store.conn.execute(_STORED_COUNTS)}
    counted = {(r, rank): n for r, rank, n in store.conn.execute(_COUNTED)}
    return [
        f"queue count of {STATUSES[rank]} deals ({'responsible ' + repr(r) if r else 'nobody responsible'}): "
        f"{stored.get((r, rank), 0)} stored, the deals give {counted.get((r, rank), 0)}"
        for r, rank in sorted(set(stored) | set(counted))
        if stored.get((r, rank), 0) != counted.get((r, rank), 0)
    ]


def counts(store: Store) -> dict[str, int]:
    return {
        table: store.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in COUNTED_TABLES
    } | {"changes": changes.count(store)}


def _state_key(row: dict):
    """A derived state's name: a deal's key, a chat's (chat key, opening time), or a
    wait's (chat key, its session's opening time, its start); the row keeps the rest."""
    if "started_at" in row:
        return (row.pop("chat_key"), row.pop("opened_at"), row.pop("started_at"))
    if "chat_key" in row:
        return (row.pop("chat_key"), row.pop("opened_at"))
    return row.pop("key")
