"""The stored facts as streams: for `export`, for re-deriving states, for `stats`.

Facts are messages, closes and completions (`chat_events`), assignments and reminders; `chat_keys`
holds which deal each chat key belongs to and what its events said of the client.
"""

from __future__ import annotations

from itertools import groupby
from typing import Iterator, NamedTuple

from chatcrm import derive
from chatcrm.rules.order import FACT_RANK, rank_sql
from chatcrm.store.connection import Store


class Fact(NamedTuple):
    """One stored fact with what its chat key's events said of the client."""

    kind: str  # message, close, complete, assign or remind
    at: str
    chat_key: str
    uid: str | None  # a message's identity (rules/identity.py)
    direction: str | None
    author: str | None
    text: str | None
    session: str | None  # a completion's, an assignment's or a reminder's session (its opening time)
    agent: str | None  # an assignment's employee
    due_at: str | None  # a reminder's follow-up time ('' for a clear)
    note: str | None  # a reminder's note
    channel: str
    contact: str | None
    contact_at: str | None
    title: str | None
    title_at: str | None
    deal_key: str
    deal_id: int
    chat_id: int | None  # for a message that opens a session: its chat
    activity_id: int | None  # ... and its activity


def facts(store: Store, deal_id: int | None = None) -> Iterator[Fact]:
    """Every stored fact (of one deal, when given) in time order; within one instant in
    the order of rules/order.py, messages in the order of their file."""
    cursor = store.conn.execute(
        f"""
        SELECT f.kind, f.at, f.chat_key, f.uid, f.direction, f.author, f.text, f.session, f.agent, f.due_at, f.note,
               k.channel, k.contact, k.contact_at, k.title, k.title_at, d.key, d.id, c.id, a.id
        FROM (
            SELECT 'message' AS kind, sent_at AS at, {FACT_RANK['message']} AS rank, seq, direction, author, text,
                   chat_key, id AS fid, uid, NULL AS session, NULL AS agent, NULL AS due_at, NULL AS note
            FROM messages
            UNION ALL
            SELECT kind, at, {rank_sql('kind')}, 0, NULL, NULL, NULL, chat_key, id, NULL, session, NULL, NULL, NULL
            FROM chat_events
            UNION ALL
            SELECT 'assign', at, {FACT_RANK['assign']}, 0, NULL, NULL, NULL, chat_key, id, NULL, session, agent,
                   NULL, NULL
            FROM assignments
            UNION ALL
            SELECT 'remind', at, {FACT_RANK['remind']}, 0, NULL, NULL, NULL, chat_key, id, NULL, session, NULL,
                   due_at, note
            FROM reminders
        ) f
        JOIN chat_keys k ON k.key = f.chat_key
        JOIN deals d ON d.id = k.deal_id
        LEFT JOIN chats c ON f.rank = {FACT_RANK['message']} AND c.chat_key = f.chat_key AND c.opened_at = f.at
        LEFT JOIN activities a ON a.chat_id = c.id
        WHERE ? IS NULL OR d.id = ?
        ORDER BY f.at, f.rank, f.seq, f.direction, f.author, f.text, f.due_at, f.note, f.chat_key, f.fid
        """,
        [deal_id, deal_id],
    )
    return map(Fact._make, cursor)


def sessions_by_chat_key(store: Store, *, track_waits: bool = False) -> Iterator[tuple[str, str, list]]:
    """Every chat key's channel and sessions, derived afresh from the facts, in key
    order, one key at a time (memory stays flat)."""
    derive_key = deriver(store, touched=False, track_waits=track_waits)
    for key, channel in store.conn.execute("SELECT key, channel FROM chat_keys ORDER BY key"):
        yield key, channel, derive_key(key)


def deriver(store: Store, *, touched: bool, track_waits: bool = False):
    """A function giving each chat key's sessions from its facts, to be called in key
    order: the facts of every chat key, or of those in `temp.touched_keys`, are read
    in one pass each (messages; closes, completions, assignments and reminders)."""

    def source(table: str, alias: str) -> str:
        if touched:
            return f"temp.touched_keys t CROSS JOIN {table} {alias} ON {alias}.chat_key = t.v"
        return f"{table} {alias}"

    conn = store.conn
    messages = Peek(groupby(
        conn.execute(
            f"SELECT m.chat_key, m.sent_at, m.seq, m.direction, m.id, m.author FROM {source('messages', 'm')} "
            f"ORDER BY {'t.v' if touched else 'm.chat_key'}"
        ),
        key=lambda r: r[0],
    ))
    events = Peek(groupby(
        conn.execute(
            f"SELECT e.chat_key, e.at, e.kind, e.session, '', NULL, '' FROM {source('chat_events', 'e')} "
            f"UNION ALL SELECT a.chat_key, a.at, 'assign', a.session, a.agent, NULL, '' "
            f"FROM {source('assignments', 'a')} "
            f"UNION ALL SELECT r.chat_key, r.at, 'remind', r.session, '', nullif(r.due_at, ''), r.note "
            f"FROM {source('reminders', 'r')} "
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


class Peek:
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
