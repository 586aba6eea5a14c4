"""The change log: every write recorded as a change, and a change taken back (`undo`).

A change is an import (`ingest`) or a command (`reply`, `close`, `complete`, `assign`,
`undo`): its time (the command's `now`), what it was (`command`, `arguments` as JSON, and
for an import each file's name, SHA-256, format and options in `change_files`), what it
added (counts) and a link to each fact it brought (`change_facts`, new or already stored:
a fact two changes brought is linked to both). `change_keys` keeps what each change's
events said of each chat key (channel, contact, title and their times), so that an undo
can name the chat keys again from the changes that remain.

A change is *live* until it is undone. Undoing one removes the facts no live change
links to any more, gives back the directions it changed, and re-derives every state those
chat keys touch; chat keys, chats and deals left with no facts disappear.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import groupby

from chatcrm.rules import naming
from chatcrm.store import edits, projection
from chatcrm.store.connection import Store
from chatcrm.store.ddl import EVENT_FACT_TABLES, FACT_TABLES

BEFORE_CHANGE_LOG = "before_change_log"  # the command of the change that holds older facts


def begin(store: Store, at: str | None, command: str, arguments: dict) -> int:
    """Record a new change (inside the caller's write transaction); returns its id."""
    cursor = store.conn.execute(
        "INSERT INTO changes (at, command, arguments) VALUES (?, ?, ?)",
        [at, command, json.dumps(arguments, ensure_ascii=False, sort_keys=True)],
    )
    return cursor.lastrowid


def add_file(store: Store, change_id: int, position: int, name: str, input_name: str, sha256: str | None,
             fmt: str | None, tz: str | None, agents: list[str], chat: str | None) -> None:
    """One source an import read (`name`), from the input named (`input_name`: a file, a
    ZIP or a folder) whose bytes have this SHA-256."""
    store.conn.execute(
        "INSERT INTO change_files (change_id, position, name, input, sha256, format, tz, agents, chat) "
        "VALUES (?,?,?,?,?,?,?,?,?)",
        [change_id, position, name, input_name, sha256, fmt, tz, json.dumps(agents, ensure_ascii=False), chat],
    )


def set_counts(store: Store, change_id: int, *, messages_added: int = 0, events_added: int = 0, present: int = 0,
               directions_changed: int = 0, removed: int = 0) -> None:
    store.conn.execute(
        "UPDATE changes SET messages_added = ?, events_added = ?, present = ?, directions_changed = ?, "
        "removed = ? WHERE id = ?",
        [messages_added, events_added, present, directions_changed, removed, change_id],
    )


def earlier_imports(store: Store, sha256: str, than: int) -> list[dict]:
    """The live changes before `than` that imported a file with these bytes, newest first."""
    return store.rows(
        "SELECT f.change_id, c.at, f.name, f.input, f.format, f.tz, f.agents, f.chat FROM change_files f "
        "JOIN changes c ON c.id = f.change_id WHERE f.sha256 = ? AND f.change_id < ? AND c.undone_by IS NULL "
        "ORDER BY f.change_id DESC, f.position",
        [sha256, than],
    )


def any_known_bytes(store: Store, than: int) -> bool:
    """Whether a live change before `than` imported bytes whose SHA-256 it knows."""
    return store.conn.execute(
        "SELECT 1 FROM change_files f JOIN changes c ON c.id = f.change_id WHERE f.sha256 IS NOT NULL "
        "AND f.change_id < ? AND c.undone_by IS NULL LIMIT 1",
        [than],
    ).fetchone() is not None


def find(store: Store, change_id: int) -> dict | None:
    return store.row("SELECT * FROM changes WHERE id = ?", [change_id])


def listing(store: Store, limit: int | None = None) -> list[dict]:
    """The changes, newest first, each with its files and the number of facts linked to it."""
    rows = store.rows(
        "SELECT c.*, (SELECT count(*) FROM change_facts l WHERE l.change_id = c.id) AS facts "
        "FROM changes c ORDER BY c.id DESC LIMIT ?",
        [-1 if limit is None else limit],
    )
    for row in rows:
        row["arguments"] = json.loads(row["arguments"])
        row["files"] = [
            {**f, "agents": json.loads(f["agents"])}
            for f in store.rows(
                "SELECT name, input, sha256, format, tz, agents, chat FROM change_files WHERE change_id = ? "
                "ORDER BY position",
                [row["id"]],
            )
        ]
    return rows


@dataclass
class Undone:
    """What undoing a change did."""

    messages_removed: int = 0
    events_removed: int = 0
    edits_removed: int = 0  # edits of messages (live channels)
    statuses_removed: int = 0  # what live channels said of delivered replies
    kept: int = 0  # facts it brought that another live change also brought: they stay
    directions_restored: int = 0
    texts_restored: int = 0  # messages that show an earlier edit, or their own text, again
    replies_unqueued: int = 0  # replies removed from the outbox before they were delivered
    deals_removed: int = 0

    @property
    def removed(self) -> int:
        return self.messages_removed + self.events_removed + self.edits_removed + self.statuses_removed


def sent_replies(store: Store, change_id: int, now: str) -> list[dict]:
    """The replies among the messages only this change brought that a live channel has
    taken, or that a `deliver` run holds at `now`: they cannot be taken back."""
    return store.rows(
        "SELECT o.id AS reply_id, o.sent_at, o.lease_until FROM change_facts l JOIN outbox o ON o.message_id = l.fact_id "
        "WHERE l.change_id = ? AND l.fact_table = 'messages' AND (o.sent_at IS NOT NULL OR o.lease_until > ?) "
        "AND NOT EXISTS (SELECT 1 FROM change_facts x JOIN changes c ON c.id = x.change_id WHERE x.fact_table = "
        "'messages' AND x.fact_id = l.fact_id AND x.change_id <> l.change_id AND c.undone_by IS NULL) ORDER BY o.id",
        [change_id, now],
    )


def undo(store: Store, change_id: int, undo_id: int) -> Undone:
    """Take change `change_id` back (inside the caller's write transaction), as change
    `undo_id`: remove the facts no live change links to any more, give back the
    directions it changed, and re-derive what its chat keys touch."""
    conn = store.conn
    result = Undone()
    conn.execute("PRAGMA defer_foreign_keys=ON")
    conn.execute("UPDATE changes SET undone_by = ? WHERE id = ?", [undo_id, change_id])
    conn.execute("DROP TABLE IF EXISTS temp.orphans")
    conn.execute(
        "CREATE TEMP TABLE orphans AS SELECT l.fact_table, l.fact_id FROM change_facts l "
        "WHERE l.change_id = ? AND NOT EXISTS (SELECT 1 FROM change_facts o JOIN changes c ON c.id = o.change_id "
        "WHERE o.fact_table = l.fact_table AND o.fact_id = l.fact_id AND c.undone_by IS NULL)",
        [change_id],
    )
    linked = conn.execute("SELECT count(*) FROM change_facts WHERE change_id = ?", [change_id]).fetchone()[0]
    # The edits of a message that goes go with it (whichever change brought them).
    cascaded = conn.execute(
        "INSERT INTO temp.orphans SELECT 'message_edits', e.id FROM message_edits e "
        "WHERE e.message_id IN (SELECT fact_id FROM temp.orphans WHERE fact_table = 'messages') "
        "AND e.id NOT IN (SELECT fact_id FROM temp.orphans WHERE fact_table = 'message_edits')"
    ).rowcount
    # The messages that stay and lose an edit show the latest edit left, else their own text.
    reshown = [row[0] for row in conn.execute(
        "SELECT DISTINCT e.message_id FROM message_edits e WHERE e.id IN "
        "(SELECT fact_id FROM temp.orphans WHERE fact_table = 'message_edits') AND e.message_id NOT IN "
        "(SELECT fact_id FROM temp.orphans WHERE fact_table = 'messages') ORDER BY e.message_id"
    )]
    # A reply that goes leaves the outbox: it is never delivered (service.undo refuses
    # to take back one a channel has taken).
    result.replies_unqueued = conn.execute(
        "DELETE FROM outbox WHERE message_id IN (SELECT fact_id FROM temp.orphans WHERE fact_table = 'messages')"
    ).rowcount
    # The chat keys it concerns: those its events named (every fact it brought is of one).
    keys = [row[0] for row in conn.execute(
        "SELECT chat_key FROM change_keys WHERE change_id = ? ORDER BY chat_key", [change_id]
    )]
    for table in FACT_TABLES:
        removed = conn.execute(
            f"DELETE FROM {table} WHERE id IN (SELECT fact_id FROM temp.orphans WHERE fact_table = ?)", [table]
        ).rowcount
        if table == "messages":
            result.messages_removed = removed
        elif table == "message_edits":
            result.edits_removed = removed
        elif table == "delivery_statuses":
            result.statuses_removed = removed
        else:
            result.events_removed += removed
    conn.execute(
        "DELETE FROM change_facts WHERE (fact_table, fact_id) IN (SELECT fact_table, fact_id FROM temp.orphans)"
    )
    result.kept = linked - (result.removed - cascaded)
    result.texts_restored = edits.show_latest(conn, reshown)
    # Each message it brought that stays takes the direction the latest live change says.
    restore = conn.execute(
        "SELECT l.fact_id, (SELECT o.direction FROM change_facts o JOIN changes c ON c.id = o.change_id "
        "WHERE o.fact_table = 'messages' AND o.fact_id = l.fact_id AND c.undone_by IS NULL "
        "ORDER BY o.change_id DESC LIMIT 1) FROM change_facts l WHERE l.change_id = ? AND l.fact_table = 'messages'",
        [change_id],
    )
    result.directions_restored = conn.executemany(
        "UPDATE messages SET direction = ? WHERE id = ? AND direction <> ?",
        ((said, fact_id, said) for fact_id, said in restore if said is not None),
    ).rowcount
    conn.execute("DROP TABLE temp.orphans")
    result.deals_removed = _rederive(store, keys)
    return result


def _rederive(store: Store, keys: list[str]) -> int:
    """Re-derive these chat keys after facts were removed: those with no facts left go,
    with their chats and activities, and so do deals left with no chat key; the others
    are named again by the live changes. Returns how many deals went."""
    conn = store.conn
    deals = projection.refresh_chats(store, keys)
    projection.fill_temp(store, "touched_keys", "TEXT", keys)
    gone = [row[0] for row in conn.execute(
        "SELECT t.v FROM temp.touched_keys t WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.chat_key = t.v) "
        "AND NOT EXISTS (SELECT 1 FROM chat_events e WHERE e.chat_key = t.v) "
        "AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.chat_key = t.v)"
    )]
    # (where a live chat's replies went goes with its chat key)
    conn.executemany("DELETE FROM live_chats WHERE chat_key = ?", ((key,) for key in gone))
    conn.executemany("DELETE FROM chat_keys WHERE key = ?", ((key,) for key in gone))
    empty = [deal_id for deal_id in sorted(deals)
             if conn.execute("SELECT 1 FROM chat_keys WHERE deal_id = ? LIMIT 1", [deal_id]).fetchone() is None]
    contacts = [row[0] for deal_id in empty
                for row in conn.execute("SELECT contact_id FROM deals WHERE id = ?", [deal_id]) if row[0] is not None]
    conn.executemany("DELETE FROM deals WHERE id = ?", ((deal_id,) for deal_id in empty))
    conn.executemany(
        "DELETE FROM contacts WHERE id = ? AND NOT EXISTS (SELECT 1 FROM deals WHERE contact_id = ?)",
        ((contact_id, contact_id) for contact_id in contacts),
    )
    remaining = sorted(set(keys) - set(gone))
    _rename(store, remaining)
    projection.refresh(store, [], deals - set(empty))
    return len(empty)


def _rename(store: Store, keys: list[str]) -> None:
    """Name these chat keys from what the live changes' events said: the earliest naming
    wins (rules/naming.py), as it did when they were imported."""
    conn = store.conn
    projection.fill_temp(store, "touched_keys", "TEXT", keys)
    rows = conn.execute(
        "SELECT k.chat_key, k.channel, k.channel_at, k.contact, k.contact_at, k.title, k.title_at, k.first_at "
        "FROM temp.touched_keys t CROSS JOIN change_keys k ON k.chat_key = t.v "
        "JOIN changes c ON c.id = k.change_id WHERE c.undone_by IS NULL ORDER BY t.v"
    )
    updates = []
    for key, group in groupby(rows, key=lambda r: r[0]):
        group = list(group)
        named = []
        for value, at in ((1, 2), (3, 4), (5, 6)):
            namings = [(r[at], r[value]) for r in group if r[at] is not None and r[value] is not None]
            best = None
            for naming_at, naming_value in namings:
                if best is None or naming.wins(naming_at, naming_value, best[0], best[1]):
                    best = (naming_at, naming_value)
            named.extend(best[::-1] if best else (None, None))
        first_at = min((r[7] for r in group if r[7] is not None), default=None)
        updates.append((*named, first_at, key))
    conn.executemany(
        "UPDATE chat_keys SET channel = coalesce(?, channel), channel_at = ?, contact = ?, contact_at = ?, "
        "title = ?, title_at = ?, first_at = ? WHERE key = ?",
        updates,
    )


def problems(store: Store) -> list[str]:
    """What is wrong with the change log (for `chatcrm check`): every fact is linked to a
    live change, every link to a fact that exists, and each live change's links agree
    with what it says it added."""
    conn = store.conn
    found: list[str] = []
    for table in FACT_TABLES:
        for (fact_id,) in conn.execute(
            f"SELECT f.id FROM {table} f WHERE NOT EXISTS (SELECT 1 FROM change_facts l JOIN changes c "
            f"ON c.id = l.change_id WHERE l.fact_table = '{table}' AND l.fact_id = f.id AND c.undone_by IS NULL) "
            "ORDER BY f.id LIMIT 100"
        ):
            found.append(f"change log: {table} row {fact_id} is linked to no change that is not undone")
        for change_id, fact_id in conn.execute(
            f"SELECT l.change_id, l.fact_id FROM change_facts l WHERE l.fact_table = '{table}' "
            f"AND NOT EXISTS (SELECT 1 FROM {table} f WHERE f.id = l.fact_id) ORDER BY l.fact_id LIMIT 100"
        ):
            found.append(f"change log: change {change_id} is linked to {table} row {fact_id}, which does not exist")
    found += edits.problems(conn)
    for (fact_id,) in conn.execute(
        "SELECT m.id FROM messages m WHERE m.direction IS NOT (SELECT l.direction FROM change_facts l "
        "JOIN changes c ON c.id = l.change_id WHERE l.fact_table = 'messages' AND l.fact_id = m.id "
        "AND c.undone_by IS NULL ORDER BY l.change_id DESC LIMIT 1) ORDER BY m.id LIMIT 100"
    ):
        found.append(f"change log: message {fact_id}'s direction is not the one the latest change that brought "
                     "it says")
    # (the counts are of messages and other events; edits and statuses are counted apart)
    counted = ", ".join(f"'{table}'" for table in EVENT_FACT_TABLES)
    for change_id, added, messages, present, links in conn.execute(
        "SELECT c.id, c.messages_added + c.events_added, c.messages_added, c.present, "
        f"(SELECT count(*) FROM change_facts l WHERE l.change_id = c.id AND l.fact_table IN ({counted})) FROM changes c "
        "WHERE c.undone_by IS NULL ORDER BY c.id"
    ):
        if not messages <= links <= added + present:
            found.append(
                f"change log: change {change_id} says it added {added} fact(s) ({present} already present) "
                f"but is linked to {links}"
            )
    for change_id, target in conn.execute(
        "SELECT c.id, c.undone_by FROM changes c LEFT JOIN changes u ON u.id = c.undone_by "
        "WHERE c.undone_by IS NOT NULL AND (u.id IS NULL OR u.command <> 'undo' OR u.undoes <> c.id)"
    ):
        found.append(f"change log: change {change_id} is marked undone by change {target}, which is no undo of it")
    return found


def count(store: Store) -> int:
    return store.conn.execute("SELECT count(*) FROM changes").fetchone()[0]
