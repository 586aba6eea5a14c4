"""Recording an import: events in, fact rows written, then the states they touch derived.

Into an empty `messages` table, a large import drops the (chat key, uid) index and builds
it once at the end (a third of the cost of keeping it up to date row by row); repeated
messages found then are removed, the first one staying. Likewise any large import leaves
the search index's triggers aside and indexes its new messages (and its new deals) in one
statement each at its end (store/search.py), a fifth of the cost of indexing them row by
row.
"""

from __future__ import annotations

import sqlite3
from operator import itemgetter

from chatcrm.errors import InvalidInput
from chatcrm.events import Event, Invalid
from chatcrm.rules import identity, naming
from chatcrm.store import edits, projection, search
from chatcrm.store.connection import Store
from chatcrm.store.ddl import EVENT_FACT_TABLES

FLUSH_EVERY = 5000
_index_order = itemgetter(0, 1)
# The columns of each event fact table, which are also its identity (its UNIQUE constraint),
# in the order of the rows `add` queues for it.
_EVENT_COLUMNS = {
    "chat_events": ("chat_key", "kind", "at", "session"),
    "assignments": ("chat_key", "at", "session", "agent"),
    "reminders": ("chat_key", "at", "session", "due_at", "note"),
}  # a message row's place in the (chat key, uid) index


class _KeyInfo:
    """What one import batch learned about a chat key."""

    __slots__ = ("deal", "named_deal", "channel", "channel_at", "contact", "contact_at", "title", "title_at", "first_at")

    def __init__(self, deal: str | None):
        self.deal = deal  # the key of the deal it is bound to in the database
        self.named_deal: str | None = None
        self.channel = self.channel_at = self.contact = self.contact_at = None
        self.title = self.title_at = self.first_at = None


class ImportBatch:
    """Records events inside one write transaction (`add`), then binds new chat keys to
    deals and re-derives what they touch (`finish`)."""

    def __init__(self, store: Store, count_stored_duplicates: bool = False, change_id: int | None = None):
        self.store = store
        # The change (store/changes.py) this batch records: each fact it brings, new or
        # already stored, is linked to it.
        self.change_id = change_id
        self.keys: dict[str, _KeyInfo] = {}
        self.messages_added = 0
        self.events_added = 0
        self.present = 0
        self.directions_changed = 0
        self.edited = 0
        self.statuses_added = 0
        conn = store.conn
        # (max() of a rowid is one lookup, where an EXISTS would start a scan)
        self._empty = conn.execute("SELECT max(id) FROM messages").fetchone()[0] is None
        stored = count_stored_duplicates and not self._empty
        self._occurrences = identity.Occurrences(self._count_stored if stored else None)
        self._message_rows: list[tuple] = []
        self._event_rows: list[tuple] = []
        self._assignment_rows: list[tuple] = []
        self._edit_rows: list[tuple] = []
        self._originals: list[tuple] = []  # live messages that are not edits: (text, chat key, uid)
        self._status_rows: list[tuple] = []
        self._live: dict[str, tuple] = {}  # chat key -> (at, LiveChat) of its latest live message
        self._reminder_rows: list[tuple] = []
        self._deal_hints: dict[str, int] = {}
        self._channels: dict[str, str] = {}
        self._session_hints: dict[tuple[str, str], tuple[int | None, int | None]] = {}
        self._index_dropped = False
        self._search_after: int | None = None  # large import: messages after this id are indexed at the end
        self._any_keys = conn.execute("SELECT max(rowid) FROM chat_keys").fetchone()[0] is not None
        # The facts this batch inserts get ids above these: they are linked in bulk at the end
        # (edits and delivery statuses, written last, are linked as they are written).
        self._last_ids = {
            table: conn.execute(f"SELECT max(id) FROM {table}").fetchone()[0] or 0 for table in EVENT_FACT_TABLES
        } if change_id is not None else {}
        self._no_links = change_id is not None and conn.execute("SELECT 1 FROM change_facts LIMIT 1").fetchone() is None
        conn.execute("PRAGMA defer_foreign_keys=ON")

    def start_file(self) -> None:
        """The events that follow come from another file (or the same one read again):
        id-less messages count their occurrences afresh (rules/identity.py)."""
        self._occurrences.start_file()

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
        # What the events say of the client: the earliest naming wins (rules/naming.py).
        # Most events come later than what is known already: the first comparison
        # settles them.
        first_at = info.first_at
        if first_at is None or at < first_at:
            info.first_at = at
        if info.channel_at is None or at <= info.channel_at:
            channel = event.channel or naming.channel_from_key(event.chat)
            if naming.wins(at, channel, info.channel_at, info.channel):
                # one string object per channel name, however many chats name it
                info.channel, info.channel_at = self._channels.setdefault(channel, channel), at
        if info.contact_at is None or at <= info.contact_at:
            contact = event.contact or (event.author if event.direction == "client" else None)
            if contact and naming.wins(at, contact, info.contact_at, info.contact):
                info.contact, info.contact_at = contact, at
        if event.title and naming.wins(at, event.title, info.title_at, info.title):
            info.title, info.title_at = event.title, at
        if event.type == "message":
            if event.id is not None:
                uid = identity.uid_of_id(event.id)
            else:
                prefix = identity.content_prefix(at, event.author, event.text)
                uid = identity.content_uid(prefix, self._occurrences.next(event.chat, prefix))
            self._message_rows.append(
                (event.chat, uid, event.direction, event.author, event.text, at, event.line, event.edited_at)
            )
            if event.edited_at is not None:
                self._edit_rows.append((event.text, event.edited_at, event.chat, uid))
            elif event.live is not None:
                self._originals.append((event.text, event.chat, uid))
            if event.live is not None:
                known = self._live.get(event.chat)
                if known is None or (at, event.live.via or "") >= (known[0], known[1].via or ""):
                    self._live[event.chat] = (at, event.live)
            if len(self._message_rows) >= FLUSH_EVERY:
                self._flush()
        elif event.type == "assign":
            self._assignment_rows.append((event.chat, at, event.session or "", event.agent))
        elif event.type == "remind":
            # A clear is stored with an empty due time (rules/follow_ups.py).
            self._reminder_rows.append((event.chat, at, event.session or "", event.due_at or "", event.note or ""))
        else:
            self._event_rows.append((event.chat, event.type, at, event.session or ""))

    def add_status(self, status) -> None:
        """Record what a channel said of a message chatcrm sent (an events.DeliveryStatus)."""
        self._status_rows.append((status.remote_id, status.status, status.at, status.error))

    def _count_stored(self, chat_key: str, prefix: str) -> int:
        """How many id-less messages with this content are stored (a reply's occurrence)."""
        return self.store.conn.execute(
            "SELECT count(*) FROM messages WHERE chat_key = ? AND uid >= ? AND uid < ?",
            [chat_key, prefix, prefix + "\uffff"],
        ).fetchone()[0]

    def _flush(self) -> None:
        conn = self.store.conn
        rows = self._message_rows
        if rows:
            if self._search_after is None and len(rows) >= FLUSH_EVERY:
                self._search_after = search.suspend_message_indexing(conn)
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
                "INSERT OR IGNORE INTO messages (chat_key, uid, direction, author, text, sent_at, seq, edited_at) "
                "VALUES (?,?,?,?,?,?,?,?)",
                rows,
            )
            present = len(rows) - cursor.rowcount
            self.messages_added += cursor.rowcount
            self.present += present
            if present and not self._index_dropped and self.change_id is not None:
                # Stored already: linked to this change too, with the direction it says
                # (undoing a change gives each message the direction of the latest
                # change that is not undone).
                conn.executemany(
                    "INSERT OR REPLACE INTO change_facts (change_id, fact_table, fact_id, direction) "
                    "SELECT ?, 'messages', id, ? FROM messages WHERE chat_key = ? AND uid = ?",
                    ((self.change_id, r[2], r[0], r[1]) for r in rows),
                )
            if present and not self._index_dropped:
                # Messages stored already: the import may say their direction anew (the
                # employees named differently); their identity does not depend on it.
                self.directions_changed += conn.executemany(
                    "UPDATE messages SET direction = ? WHERE chat_key = ? AND uid = ? AND direction <> ?",
                    ((r[2], r[0], r[1], r[2]) for r in rows),
                ).rowcount
            self._message_rows = []
        for table, rows in (("chat_events", self._event_rows), ("assignments", self._assignment_rows),
                            ("reminders", self._reminder_rows)):
            if rows:
                self._write_events(table, rows)
                rows.clear()

    def _write_events(self, table: str, rows: list[tuple]) -> None:
        """Insert a flush of one kind of event fact (rows in `_EVENT_COLUMNS` order); the
        ones stored already are counted as present and linked to this change too."""
        conn = self.store.conn
        columns = _EVENT_COLUMNS[table]
        cursor = conn.executemany(
            f"INSERT OR IGNORE INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", rows
        )
        self.events_added += cursor.rowcount
        present = len(rows) - cursor.rowcount
        self.present += present
        if present and self.change_id is not None:
            # A fact's columns are its identity (each table's UNIQUE constraint).
            match = " AND ".join(f"{column} = ?" for column in columns)
            conn.executemany(
                f"INSERT OR IGNORE INTO change_facts (change_id, fact_table, fact_id) "
                f"SELECT ?, '{table}', id FROM {table} WHERE {match}",
                ((self.change_id, *r) for r in rows),
            )

    def _build_index(self) -> None:
        """After a large import into an empty table: remove repeated messages (the first
        stays) and build the (chat key, uid) index."""
        if not self._index_dropped:
            return
        from chatcrm.store.ddl import MESSAGES_KEY_INDEX

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

    def settle(self) -> int:
        """Write what is pending; returns how many facts the batch has added so far."""
        self._flush()
        return self.messages_added + self.events_added

    def _link_new_facts(self) -> None:
        """Link every fact this batch inserted to its change: they are the rows above the
        ids that were the last before it (in id order, so each link lands at the end)."""
        if self.change_id is None:
            return
        from chatcrm.store.ddl import CHANGE_FACTS_INDEX

        conn = self.store.conn
        # The first links of a large import: the fact index is built once, at the end.
        bulk = self._no_links and (conn.execute("SELECT max(id) FROM messages").fetchone()[0] or 0) >= FLUSH_EVERY
        if bulk:
            conn.execute("DROP INDEX change_facts_fact")
        for table, last in self._last_ids.items():
            conn.execute(
                "INSERT OR IGNORE INTO change_facts (change_id, fact_table, fact_id, direction) "
                f"SELECT ?, '{table}', id, {'direction' if table == 'messages' else 'NULL'} FROM {table} "
                "WHERE id > ? ORDER BY id",
                [self.change_id, last],
            )
        if bulk:
            conn.execute(CHANGE_FACTS_INDEX)

    def finish(self) -> None:
        """Bind new chat keys to deals, save what the events said, re-derive the states."""
        self._flush()
        # Before the chat keys are written: each looks up its messages in the index.
        self._build_index()
        self._link_new_facts()
        large = self._search_after is not None
        if large:
            search.index_messages_after(self.store.conn, self._search_after)
            self._search_after = None
        if not self.keys:
            self._finish_live()
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
        ids = projection.allocate(self.store, "deals", [self._deal_hints.get(deal_key) for deal_key in fresh])
        for deal_key, deal_id in zip(fresh, ids):
            # Written whole by refresh_deals, once their state is known; until then the
            # chat keys name them (foreign keys are checked at commit).
            unwritten[deal_key] = deal_id
        del fresh, ids
        conn.executemany(_SAVE_CHAT_KEY, (
            (key, unwritten.get(i.deal), i.deal, i.channel, i.channel_at, i.contact, i.contact_at, i.title,
             i.title_at, i.first_at)
            for key, i in self.keys.items()
        ))
        if self.change_id is not None:
            # What this change's events said of each chat key: undoing a change names
            # the chat keys again from the changes that remain (rules/naming.py).
            conn.executemany(
                "INSERT OR REPLACE INTO change_keys (change_id, chat_key, channel, channel_at, contact, "
                "contact_at, title, title_at, first_at) VALUES (?,?,?,?,?,?,?,?,?)",
                ((self.change_id, key, i.channel, i.channel_at, i.contact, i.contact_at, i.title, i.title_at,
                  i.first_at) for key, i in self.keys.items()),
            )
        keys = sorted(self.keys)
        self.keys = {}
        unwritten_ids = {deal_id: deal_key for deal_key, deal_id in unwritten.items()}
        del unwritten
        if large and unwritten_ids:
            # The new deals go into the search index in one statement, after they are written.
            search.suspend_deal_indexing(conn)
            projection.refresh(self.store, keys, hints=self._session_hints, new_deals=unwritten_ids)
            search.index_deals(conn, sorted(unwritten_ids))
        else:
            projection.refresh(self.store, keys, hints=self._session_hints, new_deals=unwritten_ids)
        self._finish_live()

    def _finish_live(self) -> None:
        """Edits, live chats and delivery statuses, once every message row is written."""
        conn = self.store.conn
        if self._edit_rows or self._originals:
            # Each edit a fact linked to the change; the latest edit wins, whatever order
            # the edits come in (store/edits.py).
            self.edited += edits.record(conn, self.change_id, self._edit_rows, self._originals)
            self._edit_rows = []
            self._originals = []
        if self._live:
            conn.executemany(_SAVE_LIVE_CHAT, (
                (key, live.channel, live.recipient, live.via, at if live.via else None)
                for key, (at, live) in self._live.items()
            ))
            self._live = {}
        if self._status_rows:
            # Each report of a status is a fact: the same status at the same time is the
            # same fact (the first stored keeps its error); it is linked to the change.
            rows = self._status_rows
            self._status_rows = []
            last = conn.execute("SELECT max(id) FROM delivery_statuses").fetchone()[0] or 0
            added = conn.executemany(
                "INSERT OR IGNORE INTO delivery_statuses (remote_id, status, at, error) VALUES (?,?,?,?)", rows
            ).rowcount
            self.statuses_added += added
            self.present += len(rows) - added
            if self.change_id is not None:
                conn.execute(
                    "INSERT OR IGNORE INTO change_facts (change_id, fact_table, fact_id) "
                    "SELECT ?, 'delivery_statuses', id FROM delivery_statuses WHERE id > ? ORDER BY id",
                    [self.change_id, last],
                )
                if added < len(rows):
                    conn.executemany(
                        "INSERT OR IGNORE INTO change_facts (change_id, fact_table, fact_id) "
                        "SELECT ?, 'delivery_statuses', id FROM delivery_statuses "
                        "WHERE remote_id = ? AND status = ? AND at = ?",
                        ((self.change_id, *row[:3]) for row in rows),
                    )


def _earliest_column(column: str) -> str:
    """An upsert's update of a naming and its time: the earliest wins (rules/naming.py)."""
    return (
        f"{column} = CASE WHEN {naming.wins_sql(column, table='chat_keys')} "
        f"THEN excluded.{column} ELSE chat_keys.{column} END, "
        f"{column}_at = coalesce(min(excluded.{column}_at, chat_keys.{column}_at), "
        f"excluded.{column}_at, chat_keys.{column}_at)"
    )


_SAVE_CHAT_KEY = f"""
INSERT INTO chat_keys (key, deal_id, channel, channel_at, contact, contact_at, title, title_at, first_at)
VALUES (?, coalesce(?, (SELECT id FROM deals WHERE key = ?)), ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    {_earliest_column('channel')},
    {_earliest_column('contact')},
    {_earliest_column('title')},
    first_at = min(excluded.first_at, chat_keys.first_at)
"""

# Where a live chat's replies go: its channel and client stay; the account it came
# through is the one its latest message named (a Telegram Business connection can change).
_SAVE_LIVE_CHAT = """
INSERT INTO live_chats (chat_key, channel, recipient, via, via_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (chat_key) DO UPDATE SET
    via = CASE WHEN excluded.via_at IS NOT NULL AND (live_chats.via_at IS NULL OR excluded.via_at > live_chats.via_at
                    OR (excluded.via_at = live_chats.via_at AND excluded.via > live_chats.via))
          THEN excluded.via ELSE live_chats.via END,
    via_at = CASE WHEN excluded.via_at IS NOT NULL AND (live_chats.via_at IS NULL OR excluded.via_at > live_chats.via_at
                    OR (excluded.via_at = live_chats.via_at AND excluded.via > live_chats.via))
          THEN excluded.via_at ELSE live_chats.via_at END
"""
