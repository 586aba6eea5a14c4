"""Edits of messages (live channels): each edit is a fact of its own (`message_edits`), and
a message shows the text of its latest edit, else its own (docs/rules.md "Edits").

The latest edit is the one with the latest time; at one time, the greater text, so that
the result never depends on the order in which edits arrive. A message keeps its own
text in `original_text` once an edit replaces it, so that undoing the edits brings it
back. A message first known by an edit (its update came before the original, or alone)
has only its edits until the original arrives.
"""

from __future__ import annotations

import sqlite3

# An edit (?1 text, ?2 time) replaces what a message shows when it is later than the
# edit shown, or at the same time greater (and the message's own text is kept aside).
_SHOW_EDIT = (
    "UPDATE messages SET original_text = coalesce(original_text, CASE WHEN edited_at IS NULL THEN text END), "
    "text = ?1, edited_at = ?2 WHERE chat_key = ?3 AND uid = ?4 "
    "AND (edited_at IS NULL OR edited_at < ?2 OR (edited_at = ?2 AND text < ?1))"
)


def record(conn: sqlite3.Connection, change_id: int | None, edits: list[tuple], originals: list[tuple]) -> int:
    """Store the edits of one import (rows of (text, edited at, chat key, uid)), link each
    to the change (new or stored already), keep the own text of the messages `originals`
    names ((text, chat key, uid) of live messages that are not edits) where only their
    edits were known, and show each message's latest edit. Returns how many stored
    messages an edit changed."""
    if originals and (edits or conn.execute("SELECT 1 FROM message_edits LIMIT 1").fetchone()):
        conn.executemany(
            "UPDATE messages SET original_text = ?1 WHERE chat_key = ?2 AND uid = ?3 "
            "AND edited_at IS NOT NULL AND original_text IS NULL",
            originals,
        )
    if not edits:
        return 0
    last = conn.execute("SELECT max(id) FROM message_edits").fetchone()[0] or 0
    added = conn.executemany(
        "INSERT OR IGNORE INTO message_edits (message_id, edited_at, text) "
        "SELECT id, ?2, ?1 FROM messages WHERE chat_key = ?3 AND uid = ?4",
        edits,
    ).rowcount
    if change_id is not None:
        conn.execute(
            "INSERT OR IGNORE INTO change_facts (change_id, fact_table, fact_id) "
            "SELECT ?, 'message_edits', id FROM message_edits WHERE id > ? ORDER BY id",
            [change_id, last],
        )
        if added < len(edits):  # stored already: linked to this change too
            conn.executemany(
                "INSERT OR IGNORE INTO change_facts (change_id, fact_table, fact_id) "
                "SELECT ?1, 'message_edits', e.id FROM messages m JOIN message_edits e ON e.message_id = m.id "
                "WHERE m.chat_key = ?4 AND m.uid = ?5 AND e.edited_at = ?3 AND e.text = ?2",
                ((change_id, *edit) for edit in edits),
            )
    return conn.executemany(_SHOW_EDIT, edits).rowcount


def show_latest(conn: sqlite3.Connection, message_ids: list[int]) -> int:
    """After edits were removed: each of these messages shows its latest edit left, else
    its own text. Returns how many messages changed what they show."""
    changed = 0
    for message_id in message_ids:
        latest = conn.execute(
            "SELECT text, edited_at FROM message_edits WHERE message_id = ? ORDER BY edited_at DESC, text DESC "
            "LIMIT 1",
            [message_id],
        ).fetchone()
        if latest is not None:
            changed += conn.execute(
                "UPDATE messages SET original_text = coalesce(original_text, CASE WHEN edited_at IS NULL THEN text END), "
                "text = ?, edited_at = ? WHERE id = ? AND (text IS NOT ? OR edited_at IS NOT ?)",
                [latest[0], latest[1], message_id, latest[0], latest[1]],
            ).rowcount
        else:
            # (A message edited before edits were facts of their own has lost its own
            # text: it keeps the text it shows, no longer as an edit.)
            changed += conn.execute(
                "UPDATE messages SET text = coalesce(original_text, text), edited_at = NULL, original_text = NULL "
                "WHERE id = ? AND edited_at IS NOT NULL",
                [message_id],
            ).rowcount
    return changed


def problems(conn: sqlite3.Connection, most: int = 100) -> list[str]:
    """What is wrong with the edits (for `chatcrm check`): every message with edits shows
    the latest of them, and a message shown as edited has the edit it shows."""
    found = []
    for message_id, edited_at in conn.execute(
        "SELECT m.id, l.edited_at FROM messages m JOIN (SELECT e.message_id, e.text, "
        "e.edited_at, row_number() OVER (PARTITION BY e.message_id ORDER BY e.edited_at DESC, e.text DESC) AS n "
        "FROM message_edits e) l ON l.message_id = m.id AND l.n = 1 "
        "WHERE m.text IS NOT l.text OR m.edited_at IS NOT l.edited_at ORDER BY m.id LIMIT ?",
        [most],
    ):
        found.append(f"edits: message {message_id} does not show its latest edit (of {edited_at})")
    for (message_id,) in conn.execute(
        "SELECT m.id FROM messages m WHERE m.edited_at IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM message_edits e WHERE e.message_id = m.id) ORDER BY m.id LIMIT ?",
        [most],
    ):
        found.append(f"edits: message {message_id} is shown as edited, but no edit of it is stored")
    return found
