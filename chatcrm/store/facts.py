"""The stored facts as streams: for `export` and for re-deriving states (and, in the tests,
for `stats` derived afresh).

Facts are messages, closes and completions (`chat_events`), assignments and reminders; `chat_keys`
holds which deal each chat key belongs to and what its events said of the client.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
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
    return (Fact._make((*row[:11], *profile, *row[11:13])) for row, profile in fact_rows(store, deal_id))


PROFILES_KEPT = 4096  # chat keys whose channel, naming and deal an export keeps at once


def fact_rows(store: Store, deal_id: int | None = None) -> Iterator[tuple]:
    """`facts` as pairs of plain tuples, for an export: the fact (kind, at, chat_key, uid,
    direction, author, text, session, agent, due_at, note, chat_id, activity_id, then three columns that
    only order ties) and its chat key's (channel, contact, contact_at, title, title_at,
    deal_key, deal_id).

    The facts are read table by table in one sorted pass (one deal's through its chat
    keys and each fact table's index on its chat key, so that they cost that deal's facts,
    not the database's), a block of FACTS_PER_READ at a time; a message that opens a
    session is given its chat and activity from the sessions read in the order of their
    openings beside it. Each fact's chat key and deal come from the chat keys seen lately (facts
    in time order come in bursts of one conversation), kept in memory bounded by
    PROFILES_KEPT: each session's opening brings its chat key's, and those a block still
    lacks are looked up in one statement, instead of two lookups a fact inside the sort."""
    conn = store.conn
    # A whole export reads each table in its own order (the chat key index would make it
    # jump about the messages).
    keys, params, whole = "", [], " NOT INDEXED"
    if deal_id is not None:
        whole = ""
        keys = " WHERE {}chat_key IN (SELECT key FROM chat_keys WHERE deal_id = ?)"
        params = [deal_id] * 4
    rows = conn.execute(
        f"""
        SELECT 'message', m.sent_at, m.chat_key, m.uid, m.direction, m.author, coalesce(m.original_text, m.text),
               NULL, NULL, NULL, NULL,
               NULL, NULL, {FACT_RANK['message']}, m.seq, m.id
        FROM messages m{whole}{keys.format('m.')}
        UNION ALL
        SELECT kind, at, chat_key, NULL, NULL, NULL, NULL, session, NULL, NULL, NULL, NULL, NULL, {rank_sql('kind')},
               0, id
        FROM chat_events{keys.format('')}
        UNION ALL
        SELECT 'assign', at, chat_key, NULL, NULL, NULL, NULL, session, agent, NULL, NULL, NULL, NULL,
               {FACT_RANK['assign']}, 0, id
        FROM assignments{keys.format('')}
        UNION ALL
        SELECT 'remind', at, chat_key, NULL, NULL, NULL, NULL, session, NULL, due_at, note, NULL, NULL,
               {FACT_RANK['remind']}, 0, id
        FROM reminders{keys.format('')}
        ORDER BY 2, 14, 15, 5, 6, 7, 10, 11, 3, 16
        """,
        params,
    )

    # The sessions in the order of their openings, to give each the message that opens it
    # (a merge of two time-ordered streams, instead of a lookup a message inside the sort).
    openings = conn.execute(
        "SELECT c.opened_at, c.chat_key, c.id, a.id, k.channel, k.contact, k.contact_at, k.title, k.title_at, d.key, "
        "d.id FROM chats c LEFT JOIN activities a ON a.chat_id = c.id JOIN chat_keys k ON k.key = c.chat_key "
        "JOIN deals d ON d.id = k.deal_id"
        + (" WHERE c.chat_key IN (SELECT key FROM chat_keys WHERE deal_id = ?)" if deal_id is not None else "")
        + " ORDER BY c.opened_at",
        [deal_id] if deal_id is not None else [],
    )
    next_opening = openings.fetchone()
    opening: dict[tuple, tuple] = {}  # (chat key, opened at) -> (chat id, activity id), of the block's instants
    profiles: dict[str, tuple] = {}  # chat key -> its profile, brought by its sessions' openings or looked up
    while block := rows.fetchmany(FACTS_PER_READ):
        first, last = block[0][1], block[-1][1]
        if opening:
            opening = {at: ids for at, ids in opening.items() if at[1] >= first}
        while next_opening is not None and next_opening[0] <= last:
            opening[(next_opening[1], next_opening[0])] = next_opening[2:4]
            profiles[next_opening[1]] = next_opening[4:]
            next_opening = openings.fetchone()
        if opening:
            ats = [row[1] for row in block]
            for (key, at), ids in opening.items():
                for i in range(bisect_left(ats, at), bisect_right(ats, at)):
                    row = block[i]
                    if row[2] == key and row[0] == "message":
                        block[i] = (*row[:11], *ids, *row[13:])
        keys = [row[2] for row in block]
        if len(profiles) > PROFILES_KEPT:
            profiles = {key: profiles[key] for key in set(keys) if key in profiles}
        missing = list(set(keys).difference(profiles))
        for start in range(0, len(missing), KEYS_PER_LOOKUP):
            chunk = missing[start:start + KEYS_PER_LOOKUP]
            for key, *profile in conn.execute(_PROFILES.format(", ".join("?" * len(chunk))), chunk):
                profiles[key] = tuple(profile)
        yield from zip(block, map(profiles.__getitem__, keys))


def edit_rows(store: Store, deal_id: int | None = None) -> Iterator[tuple]:
    """Every stored edit of a message (of one deal's chat keys, when given), as (chat key,
    uid, direction, author, sent at, edited at, text, channel), in the messages' time
    order and each message's edits in theirs. `fact_rows` gives a message's own text."""
    where = " WHERE k.deal_id = ?" if deal_id is not None else ""
    return store.conn.execute(
        "SELECT m.chat_key, m.uid, m.direction, m.author, m.sent_at, e.edited_at, e.text, k.channel "
        "FROM message_edits e JOIN messages m ON m.id = e.message_id JOIN chat_keys k ON k.key = m.chat_key"
        + where + " ORDER BY m.sent_at, m.chat_key, m.uid, e.edited_at, e.id",
        [deal_id] if deal_id is not None else [],
    )


def live_chats(store: Store, deal_id: int | None = None) -> dict[str, tuple[str, str | None]]:
    """The chat keys that came from a live channel (of one deal, when given): chat key ->
    (recipient, via). Few: read whole."""
    where = " WHERE l.chat_key IN (SELECT key FROM chat_keys WHERE deal_id = ?)" if deal_id is not None else ""
    rows = store.conn.execute("SELECT l.chat_key, l.recipient, l.via FROM live_chats l" + where,
                              [deal_id] if deal_id is not None else [])
    return {key: (recipient, via) for key, recipient, via in rows}


FACTS_PER_READ = 1000  # facts read at once, their chat keys' profiles looked up together
KEYS_PER_LOOKUP = 500  # chat keys in one lookup (well under SQLite's limit of parameters)
_PROFILES = (
    "SELECT k.key, k.channel, k.contact, k.contact_at, k.title, k.title_at, d.key, d.id "
    "FROM chat_keys k JOIN deals d ON d.id = k.deal_id WHERE k.key IN ({})"
)


_MESSAGE = FACT_RANK["message"]


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
