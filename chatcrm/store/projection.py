"""Deriving the states from the facts: chat sessions, their waits, activities, contacts and deals.

Called by an import (for the chat keys it touched), by every command that records a fact,
and by an upgrade (everything). The rules themselves are pure (chatcrm.derive,
chatcrm.rules); this module reads the facts they need and writes what they give, keeping
ids stable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import groupby
from typing import Iterable, NamedTuple

from chatcrm import derive
from chatcrm.rules import naming
from chatcrm.store.connection import Store
from chatcrm.store.facts import Peek, deriver

REFRESH_SLICE = 2500


class StoredChat(NamedTuple):
    chat_key: str
    id: int
    opened_at: str
    opened_by: str
    closed_at: str | None
    waiting_since: str | None
    first_response_at: str | None
    first_reply_by: str | None
    last_message_id: int | None
    last_message_at: str | None
    messages: int
    responsible: str | None
    activity_id: int
    activity_created_at: str
    completed_at: str | None
    follow_up_at: str | None
    follow_up_note: str

    @property
    def values(self) -> tuple:
        """The derived columns, in the order of `_chat_values`."""
        return (self.opened_at, self.opened_by, self.closed_at, self.waiting_since, self.first_response_at,
                self.first_reply_by, self.last_message_id, self.last_message_at, self.messages, self.responsible)


class KeyProfile(NamedTuple):
    """What a deal's chat key says of it (rules/naming.py)."""

    deal_id: int
    deal_key: str | None  # None for a deal not written yet
    first_at: str | None
    channel: str
    contact: str | None
    contact_at: str | None
    title: str | None
    title_at: str | None
    key: str


def refresh(
    store: Store,
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
        deals |= refresh_chats(store, chat_keys[start : start + REFRESH_SLICE], hints)
    ordered = sorted(deals)
    for start in range(0, len(ordered), REFRESH_SLICE):
        refresh_deals(store, ordered[start : start + REFRESH_SLICE], new_deals)


def refresh_all(store: Store) -> None:
    conn = store.conn
    keys = [row[0] for row in conn.execute("SELECT key FROM chat_keys ORDER BY key")]
    refresh(store, keys, (row[0] for row in conn.execute("SELECT id FROM deals")))


def refresh_chats(store: Store, chat_keys: Iterable[str], hints: dict | None = None) -> set[int]:
    """Re-derive the sessions and activities of these chat keys from their facts.

    Ids stay stable: a stored session keeps its id when a derived session still
    contains its opening time. A new session takes the (chat id, activity id) that
    `hints` gives for its (chat key, opening time) when free. Returns the ids of the
    deals concerned.
    """
    fill_temp(store, "touched_keys", "TEXT", chat_keys)
    conn = store.conn
    derive_key = deriver(store, touched=True, track_waits=True)
    stored = groupby(
        map(StoredChat._make, conn.execute(
            "SELECT c.chat_key, c.id, c.opened_at, c.opened_by, c.closed_at, c.waiting_since, "
            "c.first_response_at, c.first_reply_by, c.last_message_id, c.last_message_at, c.messages, "
            "c.responsible, a.id, a.created_at, a.completed_at, a.follow_up_at, a.follow_up_note "
            "FROM temp.touched_keys t CROSS JOIN chats c ON c.chat_key = t.v "
            "JOIN activities a ON a.chat_id = c.id ORDER BY t.v, c.opened_at"
        )),
        key=lambda r: r.chat_key,
    )
    keys = conn.execute(
        "SELECT t.v, k.deal_id FROM temp.touched_keys t CROSS JOIN chat_keys k ON k.key = t.v ORDER BY t.v"
    ).fetchall()
    stored_waits = Peek(groupby(
        conn.execute(
            "SELECT c.chat_key, w.chat_id, w.started_at, w.ended_at, w.answered_by "
            "FROM temp.touched_keys t CROSS JOIN chats c ON c.chat_key = t.v "
            "CROSS JOIN waits w ON w.chat_id = c.id ORDER BY t.v, w.chat_id, w.started_at"
        ),
        key=lambda r: r[0],
    ))
    next_stored = Peek(stored)
    inserts: list[tuple] = []
    wait_rows: list[tuple] = []  # (chat id, started, ended, answered by)
    wait_deletes: list[tuple] = []
    updates: list[tuple] = []
    activity_updates: list[tuple] = []
    deletes: list[tuple] = []
    deals: set[int] = set()
    for key, deal_id in keys:
        deals.add(deal_id)
        sessions = derive_key(key)
        existing = list(next_stored.take(key))
        waits_of: dict[int, list[tuple]] = {}
        for _, chat_id, *wait in stored_waits.take(key):
            waits_of.setdefault(chat_id, []).append(tuple(wait))
        for session, row in _match_sessions(sessions, existing, deletes):
            values = _chat_values(session)
            if row is None:
                inserts.append((session.opened_at, key, deal_id, values, session))
                continue
            if waits_of.get(row.id, []) != [tuple(w) for w in session.waits]:
                wait_deletes.append((row.id,))
                wait_rows.extend((row.id, *w) for w in session.waits)
            if row.values != values:
                updates.append((*values, row.id))
            activity = _activity_values(session)
            if (row.activity_created_at, row.completed_at, row.follow_up_at, row.follow_up_note) != activity:
                activity_updates.append((*activity, row.activity_id))
    if deletes:
        conn.executemany("DELETE FROM activities WHERE chat_id = ?", deletes)
        conn.executemany("DELETE FROM chats WHERE id = ?", deletes)
    conn.executemany(
        "UPDATE chats SET opened_at = ?, opened_by = ?, closed_at = ?, waiting_since = ?, "
        "first_response_at = ?, first_reply_by = ?, last_message_id = ?, last_message_at = ?, messages = ?, "
        "responsible = ? "
        "WHERE id = ?",
        updates,
    )
    conn.executemany(
        "UPDATE activities SET created_at = ?, completed_at = ?, follow_up_at = ?, follow_up_note = ? WHERE id = ?",
        activity_updates,
    )
    if inserts:
        inserts.sort(key=lambda i: (i[0], i[1]))
        wanted = [(hints or {}).get((key, opened_at), (None, None)) for opened_at, key, *_ in inserts]
        chat_ids = allocate(store, "chats", [w[0] for w in wanted])
        activity_ids = allocate(store, "activities", [w[1] for w in wanted])
        chat_rows, activity_rows = [], []
        for chat_id, activity_id, (_, key, deal_id, values, session) in zip(chat_ids, activity_ids, inserts):
            chat_rows.append((chat_id, key, deal_id, *values))
            activity_rows.append((activity_id, chat_id, deal_id, *_activity_values(session)))
            wait_rows.extend((chat_id, *w) for w in session.waits)
        conn.executemany(
            "INSERT INTO chats (id, chat_key, deal_id, opened_at, opened_by, closed_at, waiting_since, "
            "first_response_at, first_reply_by, last_message_id, last_message_at, messages, responsible) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            chat_rows,
        )
        conn.executemany(
            "INSERT INTO activities (id, chat_id, deal_id, created_at, completed_at, follow_up_at, follow_up_note) "
            "VALUES (?,?,?,?,?,?,?)",
            activity_rows,
        )
    conn.executemany("DELETE FROM waits WHERE chat_id = ?", wait_deletes)
    conn.executemany("INSERT INTO waits (chat_id, started_at, ended_at, answered_by) VALUES (?,?,?,?)", wait_rows)
    return deals


_KEY_CHANNEL = "(SELECT k.channel FROM chat_keys k WHERE k.key = chats.chat_key)"


def refresh_deals(store: Store, deal_ids: Iterable[int], new_deals: dict[int, str] | None = None) -> None:
    """Re-derive the deals' contact, title, created-at, status and queue place, and
    their sessions' channel.

    `new_deals` ({id: key}) are deals an import has bound chats to but not yet
    written: they are inserted whole, once.
    """
    new_deals = new_deals or {}
    fill_temp(store, "touched_deals", "INTEGER", deal_ids)
    conn = store.conn
    # A session's channel is its chat key's, as named once every change is applied (an
    # import's naming, or an undo's naming anew), like the deal's contact and title.
    conn.execute(
        f"UPDATE chats SET channel = {_KEY_CHANNEL} "
        f"WHERE deal_id IN (SELECT v FROM temp.touched_deals) AND channel IS NOT {_KEY_CHANNEL}"
    )
    chats = groupby(
        conn.execute(
            "SELECT c.deal_id, c.opened_at, c.closed_at, c.waiting_since, a.created_at, a.completed_at, "
            "c.last_message_at, c.last_message_id, c.responsible, a.follow_up_at FROM temp.touched_deals t "
            "CROSS JOIN chats c ON c.deal_id = t.v JOIN activities a ON a.chat_id = c.id ORDER BY t.v"
        ),
        key=lambda r: r[0],
    )
    profiles = groupby(
        map(KeyProfile._make, conn.execute(
            "SELECT t.v, d.key, k.first_at, k.channel, k.contact, k.contact_at, k.title, k.title_at, k.key "
            "FROM temp.touched_deals t CROSS JOIN chat_keys k ON k.deal_id = t.v LEFT JOIN deals d ON d.id = t.v "
            "ORDER BY t.v"
        )),
        key=lambda r: r.deal_id,
    )
    next_chats = Peek(chats)
    rows = []
    for deal_id, keys in profiles:
        profile = _deal_profile(list(keys), new_deals.get(deal_id))
        state = derive.derive_deal(
            (derive.ChatState(*r[1:]) for r in next_chats.take(deal_id)), profile.created_at
        )
        rows.append((profile, state, deal_id))
    contact_ids = _contact_ids(store, {(p.contact, p.channel) for p, _, _ in rows if p.contact})
    # In id order: each lands after the previous one in the table.
    inserts = sorted((row for row in rows if row[2] in new_deals), key=lambda row: row[2])
    updates = [row for row in rows if row[2] not in new_deals] if inserts else rows
    conn.executemany(
        "INSERT INTO deals (key, title, contact_id, created_at, status, status_rank, queue_key, waiting_since, "
        "oldest_active_at, open_chats, active_activities, last_message_id, last_message_at, last_event_at, "
        "responsible, follow_up_at, due_key, id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        ((p.key, *_deal_values(p, s, contact_ids), deal_id) for p, s, deal_id in inserts),
    )
    conn.executemany(
        "UPDATE deals SET title = ?, contact_id = ?, created_at = ?, status = ?, status_rank = ?, "
        "queue_key = ?, waiting_since = ?, oldest_active_at = ?, open_chats = ?, active_activities = ?, "
        "last_message_id = ?, last_message_at = ?, last_event_at = ?, responsible = ?, follow_up_at = ?, "
        "due_key = ? WHERE id = ?",
        ((*_deal_values(p, s, contact_ids), deal_id) for p, s, deal_id in updates),
    )


def fill_temp(store: Store, name: str, column_type: str, values: Iterable) -> None:
    conn = store.conn
    conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} (v {column_type} PRIMARY KEY)")
    conn.execute(f"DELETE FROM temp.{name}")
    conn.executemany(f"INSERT OR IGNORE INTO temp.{name} (v) VALUES (?)", ((v,) for v in values))


def allocate(store: Store, table: str, wanted: list[int | None]) -> list[int]:
    """Ids for new rows of `table`: each the id it asks for when that is free (an
    export's ids come back), else the next unused one."""
    conn = store.conn
    hinted = [w for w in wanted if w]
    taken: set[int] = set()
    if hinted:
        taken = {
            row[0]
            for row in conn.execute(
                f"SELECT id FROM {table} WHERE id IN (SELECT value FROM json_each(?))", [json.dumps(hinted)]
            )
        }
    following = max((conn.execute(f"SELECT max(id) FROM {table}").fetchone()[0] or 0) + 1, max(hinted, default=0) + 1)
    ids = []
    for want in wanted:
        if want and want not in taken:
            ids.append(want)
            taken.add(want)
        else:
            ids.append(following)
            following += 1
    return ids


def _contact_ids(store: Store, contacts: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    conn = store.conn
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


def _match_sessions(sessions: list[derive.Session], existing: list[StoredChat], deletes: list[tuple]):
    """Pair each derived session with the stored row whose opening it contains (or None)."""
    position = 0
    for index, session in enumerate(sessions):
        span_end = sessions[index + 1].opened_at if index + 1 < len(sessions) else None
        kept = None
        while position < len(existing) and (span_end is None or existing[position].opened_at < span_end):
            if kept is None:
                kept = existing[position]
            else:
                deletes.append((existing[position].id,))
            position += 1
        yield session, kept
    deletes.extend((row.id,) for row in existing[position:])


@dataclass
class _Profile:
    key: str
    created_at: str | None
    contact: str | None
    channel: str
    title: str


def _deal_profile(keys: list[KeyProfile], new_key: str | None = None) -> _Profile:
    """A deal's created-at, contact, channel and title from its chat keys: the channel of
    its first chat key, the earliest naming of contact and title (rules/naming.py)."""
    deal_key = keys[0].deal_key or new_key
    first = min(keys, key=lambda r: (r.first_at or "", r.key))
    contact = naming.earliest((r.contact_at, r.contact) for r in keys if r.contact_at)
    title = naming.earliest((r.title_at, r.title) for r in keys if r.title_at)
    created = min((r.first_at for r in keys if r.first_at), default=None)
    channel = first.channel
    return _Profile(deal_key, created, contact, channel, naming.deal_title(title, contact, channel, deal_key))


def _deal_values(p: _Profile, s: derive.DealState, contact_ids: dict) -> tuple:
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
        s.follow_up_at,
        s.due_key,
    )


def _activity_values(session: derive.Session) -> tuple:
    """An activity's derived columns: created, completed, its follow-up (R11)."""
    return (session.opened_at, session.completed_at, session.follow_up_at, session.follow_up_note)


def _chat_values(session: derive.Session) -> tuple:
    return (
        session.opened_at,
        session.opened_by,
        session.closed_at,
        session.waiting_since if session.unread else None,
        session.first_response_at,
        session.first_reply_by,
        session.last_message_id,
        session.last_message_at,
        session.messages,
        session.responsible,
    )
