"""The database schema, created and migrated in this one place (sqlite-utils migrations).

Facts: `messages`, `chat_events` (closes and completions), `assignments`, `reminders`
(follow-ups, since m007) and `chat_keys`
(which deal a chat key belongs to, and what its events said of the client). Derived,
recomputed from the facts on every write and checked by `chatcrm check`: `chats`,
`activities`, `contacts`, and the state columns of `deals`. The `queue` view is the order
of R9 (since m007 at SQLite's current time: see `_queue_view_m007`).

Migrations only add: each one is kept as it shipped, and `open_store` re-derives every
state from the facts after applying any, in the same transaction. A new migration's name
goes into `chatcrm.store.connection.SCHEMA` too (a test checks that they agree).
"""

from __future__ import annotations

from sqlite_utils import Migrations

from chatcrm.store.ddl import (  # noqa: F401 - the statements the migrations share
    CHANGE_FACTS_INDEX,
    DEALS_SEARCH_TRIGGERS,
    MESSAGES_KEY_INDEX,
    MESSAGES_SEARCH_TRIGGER_NAMES,
    MESSAGES_SEARCH_TRIGGERS,
)

migrations = Migrations("chatcrm")

# The queue as the first schema defined it; a migration never changes.
_QUEUE_VIEW_M001 = """
CREATE VIEW queue AS
SELECT
    d.id AS deal_id,
    d.key AS deal_key,
    d.title AS title,
    c.name AS contact,
    c.channel AS channel,
    d.status AS status,
    d.waiting_since AS waiting_since,
    d.open_chats AS open_chats,
    d.active_activities AS active_activities,
    d.last_message_at AS last_message_at,
    m.text AS last_message,
    m.direction AS last_message_direction,
    d.oldest_active_at AS oldest_active_at,
    d.last_event_at AS last_event_at,
    d.created_at AS created_at
FROM deals d
LEFT JOIN contacts c ON c.id = d.contact_id
LEFT JOIN messages m ON m.id = d.last_message_id
ORDER BY d.status_rank, d.queue_key, d.id
"""

# The queue since m002 (m002 creates it, m003 re-creates it after rebuilding `messages`):
# a later change of the view needs a constant of its own, so that these stay as shipped.
QUEUE_VIEW = """
CREATE VIEW queue AS
SELECT
    d.id AS deal_id,
    d.key AS deal_key,
    d.title AS title,
    c.name AS contact,
    c.channel AS channel,
    d.status AS status,
    d.waiting_since AS waiting_since,
    d.open_chats AS open_chats,
    d.active_activities AS active_activities,
    d.last_message_at AS last_message_at,
    m.text AS last_message,
    m.direction AS last_message_direction,
    d.responsible AS responsible,
    d.oldest_active_at AS oldest_active_at,
    d.last_event_at AS last_event_at,
    d.created_at AS created_at
FROM deals d
LEFT JOIN contacts c ON c.id = d.contact_id
LEFT JOIN messages m ON m.id = d.last_message_id
ORDER BY d.status_rank, d.queue_key, d.id
"""



@migrations()
def m001_initial(db) -> None:
    db.executescript(
        """
        CREATE TABLE contacts (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            channel TEXT NOT NULL,
            UNIQUE (name, channel)
        );
        CREATE TABLE deals (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            title TEXT NOT NULL DEFAULT '',
            contact_id INTEGER REFERENCES contacts(id),
            created_at TEXT,
            status TEXT NOT NULL DEFAULT 'grey' CHECK (status IN ('unread', 'green', 'grey')),
            status_rank INTEGER NOT NULL DEFAULT 2,
            queue_key INTEGER NOT NULL DEFAULT 0,
            waiting_since TEXT,
            oldest_active_at TEXT,
            open_chats INTEGER NOT NULL DEFAULT 0,
            active_activities INTEGER NOT NULL DEFAULT 0,
            last_message_id INTEGER,
            last_message_at TEXT,
            last_event_at TEXT
        );
        CREATE INDEX deals_queue ON deals (status_rank, queue_key, id);
        CREATE TABLE chat_keys (
            key TEXT PRIMARY KEY,
            deal_id INTEGER NOT NULL REFERENCES deals(id),
            channel TEXT NOT NULL DEFAULT '',
            channel_at TEXT,
            contact TEXT,
            contact_at TEXT,
            title TEXT,
            title_at TEXT,
            first_at TEXT
        );
        CREATE INDEX chat_keys_deal ON chat_keys (deal_id);
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            chat_key TEXT NOT NULL REFERENCES chat_keys(key),
            uid TEXT NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('client', 'agent')),
            author TEXT NOT NULL,
            text TEXT NOT NULL,
            sent_at TEXT NOT NULL,
            seq INTEGER NOT NULL DEFAULT 0,
            UNIQUE (chat_key, uid)
        );
        CREATE TABLE chat_events (
            id INTEGER PRIMARY KEY,
            chat_key TEXT NOT NULL REFERENCES chat_keys(key),
            kind TEXT NOT NULL CHECK (kind IN ('close', 'complete')),
            at TEXT NOT NULL,
            session TEXT NOT NULL DEFAULT '',
            UNIQUE (chat_key, kind, at, session)
        );
        CREATE TABLE chats (
            id INTEGER PRIMARY KEY,
            chat_key TEXT NOT NULL REFERENCES chat_keys(key),
            deal_id INTEGER NOT NULL REFERENCES deals(id),
            opened_at TEXT NOT NULL,
            opened_by TEXT NOT NULL,
            closed_at TEXT,
            waiting_since TEXT,
            first_response_at TEXT,
            last_message_id INTEGER,
            last_message_at TEXT,
            messages INTEGER NOT NULL DEFAULT 0,
            UNIQUE (chat_key, opened_at)
        );
        CREATE INDEX chats_deal ON chats (deal_id);
        CREATE TABLE activities (
            id INTEGER PRIMARY KEY,
            chat_id INTEGER NOT NULL UNIQUE REFERENCES chats(id),
            deal_id INTEGER NOT NULL REFERENCES deals(id),
            created_at TEXT NOT NULL,
            completed_at TEXT
        );
        CREATE INDEX activities_deal ON activities (deal_id);
        """
    )
    db.execute(_QUEUE_VIEW_M001)


@migrations()
def m002_assignments(db) -> None:
    """Responsible employees: assignments are facts; chats and deals derive theirs."""
    # One statement at a time: executescript() would commit the upgrade's transaction.
    for statement in (
        """
        CREATE TABLE assignments (
            id INTEGER PRIMARY KEY,
            chat_key TEXT NOT NULL REFERENCES chat_keys(key),
            at TEXT NOT NULL,
            session TEXT NOT NULL DEFAULT '',
            agent TEXT NOT NULL,
            UNIQUE (chat_key, at, session, agent)
        )
        """,
        "ALTER TABLE chats ADD COLUMN responsible TEXT",
        "ALTER TABLE deals ADD COLUMN responsible TEXT",
        "CREATE INDEX deals_responsible_queue ON deals (responsible, status_rank, queue_key, id)",
        # Deals point to contacts: without this index, writing a contact while an import's
        # new deals are not written yet makes SQLite scan every deal for its foreign key.
        "CREATE INDEX deals_contact ON deals (contact_id)",
        "DROP VIEW queue",
        QUEUE_VIEW,
    ):
        db.execute(statement)


@migrations()
def m003_messages_key_index(db) -> None:
    """A message's (chat key, uid) uniqueness as a named index instead of a table
    constraint: an import into an empty table drops it and builds it once at its end,
    which costs a third of keeping it up to date row by row."""
    for statement in (
        "DROP VIEW queue",
        """
        CREATE TABLE messages_m003 (
            id INTEGER PRIMARY KEY,
            chat_key TEXT NOT NULL REFERENCES chat_keys(key),
            uid TEXT NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('client', 'agent')),
            author TEXT NOT NULL,
            text TEXT NOT NULL,
            sent_at TEXT NOT NULL,
            seq INTEGER NOT NULL DEFAULT 0
        )
        """,
        "INSERT INTO messages_m003 (id, chat_key, uid, direction, author, text, sent_at, seq) "
        "SELECT id, chat_key, uid, direction, author, text, sent_at, seq FROM messages ORDER BY id",
        "DROP TABLE messages",
        "ALTER TABLE messages_m003 RENAME TO messages",
        MESSAGES_KEY_INDEX,
        QUEUE_VIEW,
    ):
        db.execute(statement)


@migrations()
def m004_identity_without_direction(db) -> None:
    """An id-less message's identity no longer includes its direction (rules/identity.py):
    the stored ones are named anew, their occurrence numbers kept in order, so that an
    export imported again with other employees changes directions instead of adding
    messages."""
    from chatcrm.rules import identity

    conn = db.conn
    conn.execute("DROP INDEX messages_key")
    rows = conn.execute(
        "SELECT id, chat_key, sent_at, author, text FROM messages WHERE uid >= 'h:' AND uid < 'h;' "
        "ORDER BY chat_key, CAST(substr(uid, instr(uid, '#') + 1) AS INTEGER), id"
    )
    renamed: list[tuple[str, int]] = []
    counts: dict[str, int] = {}  # occurrences of each content in the current chat key
    current = None
    for message_id, chat_key, sent_at, author, text in rows:
        if chat_key != current:
            current, counts = chat_key, {}
        prefix = identity.content_prefix(sent_at, author, text)
        counts[prefix] = counts.get(prefix, 0) + 1
        renamed.append((identity.content_uid(prefix, counts[prefix]), message_id))
        if len(renamed) >= 10_000:
            conn.executemany("UPDATE messages SET uid = ? WHERE id = ?", renamed)
            renamed = []
    conn.executemany("UPDATE messages SET uid = ? WHERE id = ?", renamed)
    conn.execute(MESSAGES_KEY_INDEX)


# Full-text search (store/search.py): FTS5 over the messages (their text and author) and
# over the deals (their title, and their contact as the `author` column), one tokenizer
# for both that ignores case and accents in every script.
SEARCH_TOKENIZER = "unicode61 remove_diacritics 2"



@migrations()
def m005_search_and_idle_index(db) -> None:
    """Full-text search over messages and deals, built in place from what is stored;
    and an index of the open chats whose client is not waiting, by their last message,
    for `close --idle`."""
    for statement in (
        f"CREATE VIRTUAL TABLE messages_fts USING fts5(text, author, content='messages', content_rowid='id', "
        f"tokenize='{SEARCH_TOKENIZER}')",
        "INSERT INTO messages_fts (rowid, text, author) SELECT id, text, author FROM messages",
        *MESSAGES_SEARCH_TRIGGERS,
        f"CREATE VIRTUAL TABLE deals_fts USING fts5(text, author, tokenize='{SEARCH_TOKENIZER}')",
        "INSERT INTO deals_fts (rowid, text, author) "
        "SELECT d.id, d.title, c.name FROM deals d LEFT JOIN contacts c ON c.id = d.contact_id",
        *DEALS_SEARCH_TRIGGERS,
        "CREATE INDEX chats_idle ON chats (last_message_at) WHERE closed_at IS NULL AND waiting_since IS NULL",
    ):
        db.execute(statement)


@migrations()
def m006_stored_waits(db) -> None:
    """Each session's waits (derived, like `chats`): `stats` for a period reads the waits
    that started in it and the sessions opened in it through indexes, instead of deriving
    every chat key's sessions from all its facts. `open_store` derives them after applying
    this migration, as after any."""
    for statement in (
        """
        CREATE TABLE waits (
            id INTEGER PRIMARY KEY,
            chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            answered_by TEXT
        )
        """,
        "CREATE INDEX waits_chat ON waits (chat_id, started_at)",
        "CREATE INDEX waits_started ON waits (started_at)",
        "CREATE INDEX chats_opened ON chats (opened_at)",
        # A chat key's channel without reading its row: `stats` looks it up for every figure.
        "CREATE INDEX chat_keys_channel ON chat_keys (key, channel)",
    ):
        db.execute(statement)


# The queue since m007: statuses that depend on the time (due, pending), at the reader's
# current time. A view has no parameters, so this one reads SQLite's clock — the one
# place that does: `chatcrm list` passes its own now instead (rules/statuses.py builds both).
_SQLITE_NOW = "CAST(strftime('%s', 'now') AS INTEGER)"


def _queue_view_m007() -> str:
    from chatcrm.rules import statuses

    return f"""
CREATE VIEW queue AS
SELECT
    d.id AS deal_id,
    d.key AS deal_key,
    d.title AS title,
    c.name AS contact,
    c.channel AS channel,
    {statuses.status_sql(_SQLITE_NOW, 'd')} AS status,
    d.waiting_since AS waiting_since,
    d.follow_up_at AS due_at,
    d.open_chats AS open_chats,
    d.active_activities AS active_activities,
    d.last_message_at AS last_message_at,
    m.text AS last_message,
    m.direction AS last_message_direction,
    d.responsible AS responsible,
    d.oldest_active_at AS oldest_active_at,
    d.last_event_at AS last_event_at,
    d.created_at AS created_at
FROM deals d
LEFT JOIN contacts c ON c.id = d.contact_id
LEFT JOIN messages m ON m.id = d.last_message_id
ORDER BY {statuses.queue_order_sql(_SQLITE_NOW, 'd')}
"""


@migrations()
def m007_follow_ups(db) -> None:
    """Follow-ups (R11): reminders are facts; activities derive their follow-up, deals
    their earliest one (`follow_up_at`) and the moment they turn due (`due_key`, indexed)."""
    for statement in (
        """
        CREATE TABLE reminders (
            id INTEGER PRIMARY KEY,
            chat_key TEXT NOT NULL REFERENCES chat_keys(key),
            at TEXT NOT NULL,
            session TEXT NOT NULL DEFAULT '',
            due_at TEXT NOT NULL DEFAULT '',
            note TEXT NOT NULL DEFAULT '',
            UNIQUE (chat_key, at, session, due_at, note)
        )
        """,
        "ALTER TABLE activities ADD COLUMN follow_up_at TEXT",
        "ALTER TABLE activities ADD COLUMN follow_up_note TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE deals ADD COLUMN follow_up_at TEXT",
        "ALTER TABLE deals ADD COLUMN due_key INTEGER",
        # The due deals in their order; with their stored rank, so that counting them by
        # rank reads the index alone.
        "CREATE INDEX deals_due ON deals (due_key, id, status_rank) WHERE due_key IS NOT NULL",
        "CREATE INDEX deals_responsible_due ON deals (responsible, due_key, id, status_rank) WHERE due_key IS NOT NULL",
        "DROP VIEW queue",
        _queue_view_m007(),
    ):
        db.execute(statement)


@migrations()
def m008_live_channels(db) -> None:
    """Live channels: a message's latest edit; where each live chat's replies go; the
    outbox of replies to deliver, and what the channels said of the ones delivered."""
    for statement in (
        # The time of the edit whose text a message holds (NULL: never edited).
        "ALTER TABLE messages ADD COLUMN edited_at TEXT",
        """
        CREATE TABLE live_chats (
            chat_key TEXT PRIMARY KEY REFERENCES chat_keys(key),
            channel TEXT NOT NULL,
            recipient TEXT NOT NULL,
            via TEXT,
            via_at TEXT
        )
        """,
        """
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            message_id INTEGER NOT NULL UNIQUE REFERENCES messages(id),
            chat_key TEXT NOT NULL REFERENCES chat_keys(key),
            channel TEXT NOT NULL,
            recipient TEXT NOT NULL,
            via TEXT,
            reply_at TEXT NOT NULL,
            tries INTEGER NOT NULL DEFAULT 0,
            next_try_at TEXT NOT NULL,
            lease_owner TEXT,
            lease_until TEXT,
            sent_at TEXT,
            remote_id TEXT,
            last_error TEXT,
            given_up_at TEXT
        )
        """,
        "CREATE INDEX outbox_chat ON outbox (chat_key, reply_at, id)",
        "CREATE INDEX outbox_pending ON outbox (reply_at, id) WHERE sent_at IS NULL AND given_up_at IS NULL",
        "CREATE INDEX outbox_remote ON outbox (remote_id) WHERE remote_id IS NOT NULL",
        """
        CREATE TABLE delivery_statuses (
            remote_id TEXT NOT NULL,
            status TEXT NOT NULL,
            at TEXT NOT NULL,
            error TEXT,
            PRIMARY KEY (remote_id, status)
        )
        """,
    ):
        db.execute(statement)


@migrations()
def m009_change_log(db) -> None:
    """The change log: every write (an import or a command) is a change, linked to each
    fact it brought, so that `chatcrm undo` can take it back. The facts stored before
    this migration belong to one change "before the change log" (id 1, no time)."""
    conn = db.conn
    for statement in (
        """
        CREATE TABLE changes (
            id INTEGER PRIMARY KEY,
            at TEXT,
            command TEXT NOT NULL,
            arguments TEXT NOT NULL DEFAULT '{}',
            messages_added INTEGER NOT NULL DEFAULT 0,
            events_added INTEGER NOT NULL DEFAULT 0,
            present INTEGER NOT NULL DEFAULT 0,
            directions_changed INTEGER NOT NULL DEFAULT 0,
            removed INTEGER NOT NULL DEFAULT 0,
            undoes INTEGER REFERENCES changes(id),
            undone_by INTEGER REFERENCES changes(id)
        )
        """,
        """
        CREATE TABLE change_files (
            change_id INTEGER NOT NULL REFERENCES changes(id),
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            input TEXT NOT NULL,
            sha256 TEXT,
            format TEXT,
            tz TEXT,
            agents TEXT NOT NULL DEFAULT '[]',
            chat TEXT,
            PRIMARY KEY (change_id, position)
        )
        """,
        "CREATE INDEX changes_undone_by ON changes (undone_by)",
        "CREATE INDEX changes_undoes ON changes (undoes)",
        "CREATE INDEX change_files_sha256 ON change_files (sha256)",
        """
        CREATE TABLE change_facts (
            change_id INTEGER NOT NULL REFERENCES changes(id),
            fact_table TEXT NOT NULL CHECK (fact_table IN ('messages', 'chat_events', 'assignments', 'reminders')),
            fact_id INTEGER NOT NULL,
            direction TEXT,
            PRIMARY KEY (change_id, fact_table, fact_id)
        ) WITHOUT ROWID
        """,
        CHANGE_FACTS_INDEX,
        """
        CREATE TABLE change_keys (
            change_id INTEGER NOT NULL REFERENCES changes(id),
            chat_key TEXT NOT NULL,
            channel TEXT,
            channel_at TEXT,
            contact TEXT,
            contact_at TEXT,
            title TEXT,
            title_at TEXT,
            first_at TEXT,
            PRIMARY KEY (change_id, chat_key)
        ) WITHOUT ROWID
        """,
        "CREATE INDEX change_keys_key ON change_keys (chat_key)",
    ):
        conn.execute(statement)
    messages = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    others = (conn.execute("SELECT count(*) FROM chat_events").fetchone()[0]
              + conn.execute("SELECT count(*) FROM assignments").fetchone()[0])
    keys = conn.execute("SELECT count(*) FROM chat_keys").fetchone()[0]
    if not (messages or others or keys):
        return
    conn.execute(
        "INSERT INTO changes (id, at, command, arguments, messages_added, events_added) "
        "VALUES (1, NULL, 'before_change_log', '{}', ?, ?)",
        [messages, others],
    )
    for table in ("messages", "chat_events", "assignments", "reminders"):
        conn.execute(
            f"INSERT INTO change_facts (change_id, fact_table, fact_id, direction) SELECT 1, '{table}', id, "
            f"{'direction' if table == 'messages' else 'NULL'} FROM {table} ORDER BY id"
        )
    conn.execute(
        "INSERT INTO change_keys (change_id, chat_key, channel, channel_at, contact, contact_at, title, title_at, "
        "first_at) SELECT 1, key, channel, channel_at, contact, contact_at, title, title_at, first_at "
        "FROM chat_keys ORDER BY key"
    )


@migrations()
def m010_live_facts_in_the_change_log(db) -> None:
    """Edits and delivery statuses become facts of the change log: each edit a row of its
    own (`message_edits`; a message's text is its latest edit's, else its own, kept in
    `original_text` once it is edited), each status with an id, and both linked to the
    changes that brought them. The ones stored before are linked to the change "before the
    change log" (made here when there is none)."""
    conn = db.conn
    for statement in (
        # A message's own text once an edit replaced it (NULL: never edited, or only its
        # edits are known).
        "ALTER TABLE messages ADD COLUMN original_text TEXT",
        """
        CREATE TABLE message_edits (
            id INTEGER PRIMARY KEY,
            message_id INTEGER NOT NULL REFERENCES messages(id),
            edited_at TEXT NOT NULL,
            text TEXT NOT NULL,
            UNIQUE (message_id, edited_at, text)
        )
        """,
        "INSERT INTO message_edits (message_id, edited_at, text) SELECT id, edited_at, text FROM messages "
        "WHERE edited_at IS NOT NULL ORDER BY id",
        # Each report of a status is a fact (the same status at another time too); the
        # earliest report of a status is when it happened.
        """
        CREATE TABLE delivery_statuses_m010 (
            id INTEGER PRIMARY KEY,
            remote_id TEXT NOT NULL,
            status TEXT NOT NULL,
            at TEXT NOT NULL,
            error TEXT,
            UNIQUE (remote_id, status, at)
        )
        """,
        "INSERT INTO delivery_statuses_m010 (remote_id, status, at, error) SELECT remote_id, status, at, error "
        "FROM delivery_statuses ORDER BY remote_id, status",
        "DROP TABLE delivery_statuses",
        "ALTER TABLE delivery_statuses_m010 RENAME TO delivery_statuses",
        # The links' table, its CHECK naming the two new fact tables.
        """
        CREATE TABLE change_facts_m010 (
            change_id INTEGER NOT NULL REFERENCES changes(id),
            fact_table TEXT NOT NULL CHECK (fact_table IN ('messages', 'chat_events', 'assignments', 'reminders',
                                                           'message_edits', 'delivery_statuses')),
            fact_id INTEGER NOT NULL,
            direction TEXT,
            PRIMARY KEY (change_id, fact_table, fact_id)
        ) WITHOUT ROWID
        """,
        "INSERT INTO change_facts_m010 SELECT change_id, fact_table, fact_id, direction FROM change_facts "
        "ORDER BY change_id, fact_table, fact_id",
        "DROP TABLE change_facts",
        "ALTER TABLE change_facts_m010 RENAME TO change_facts",
        "CREATE INDEX change_facts_fact ON change_facts (fact_table, fact_id)",
    ):
        conn.execute(statement)
    if not (conn.execute("SELECT 1 FROM message_edits LIMIT 1").fetchone()
            or conn.execute("SELECT 1 FROM delivery_statuses LIMIT 1").fetchone()):
        return
    row = conn.execute("SELECT min(id) FROM changes WHERE command = 'before_change_log'").fetchone()
    before = row[0]
    if before is None:
        before = conn.execute(
            "INSERT INTO changes (at, command, arguments) VALUES (NULL, 'before_change_log', '{}')"
        ).lastrowid
    for table in ("message_edits", "delivery_statuses"):
        conn.execute(
            f"INSERT OR IGNORE INTO change_facts (change_id, fact_table, fact_id) SELECT ?, '{table}', id "
            f"FROM {table} ORDER BY id",
            [before],
        )


@migrations()
def m011_chat_channels(db) -> None:
    """Each session's channel beside it (its chat key's, derived like the rest of `chats`
    and compared by `check`): `stats` groups its figures by channel without looking up a
    chat key for each of them. `open_store` derives it after applying this migration, as
    after any."""
    db.execute("ALTER TABLE chats ADD COLUMN channel TEXT NOT NULL DEFAULT ''")


@migrations()
def m012_first_repliers(db) -> None:
    """The author of each session's first reply beside it (`chats.first_reply_by`, derived
    like the rest of `chats` and compared by `check`): whom `stats` counts a first response
    for, read without looking through each session's waits. `open_store` derives it after
    applying this migration, as after any."""
    db.execute("ALTER TABLE chats ADD COLUMN first_reply_by TEXT")


@migrations()
def m013_queue_counts(db) -> None:
    """How many deals each status has, per responsible employee (`queue_counts`), kept by
    triggers on `deals` as their ranks and responsibles change: `list`'s summary reads a
    few rows instead of counting every deal (compared with a count of the deals by
    `check`)."""
    from chatcrm.store.ddl import QUEUE_COUNTS_TABLE, QUEUE_COUNTS_TRIGGERS

    db.execute(QUEUE_COUNTS_TABLE)
    for statement in QUEUE_COUNTS_TRIGGERS:
        db.execute(statement)
    db.execute(
        "INSERT INTO queue_counts (responsible, status_rank, deals) "
        "SELECT coalesce(responsible, ''), status_rank, count(*) FROM deals GROUP BY 1, 2"
    )
