"""Statements the migrations and the import both run (indexes and triggers that a large
import drops and builds again at its end). Kept apart from `schema`, which needs
sqlite-utils, so that a command that writes does not load it."""

# The tables of facts: what an import records, a change links and an undo removes. The
# first four are what the summaries count as messages and other events; a live channel
# also brings edits of messages (`message_edits`) and what it said of the replies it
# delivered (`delivery_statuses`), counted on their own.
EVENT_FACT_TABLES = ("messages", "chat_events", "assignments", "reminders")
LIVE_FACT_TABLES = ("message_edits", "delivery_statuses")
FACT_TABLES = (*EVENT_FACT_TABLES, *LIVE_FACT_TABLES)

MESSAGES_KEY_INDEX = "CREATE UNIQUE INDEX messages_key ON messages (chat_key, uid)"
# Which changes brought a fact (m009); a large first import builds it once at its end.
CHANGE_FACTS_INDEX = "CREATE INDEX change_facts_fact ON change_facts (fact_table, fact_id)"

# The messages' index follows every write to the table. A large import drops these
# triggers and indexes its new messages in one statement at its end (store/batch.py); a
# migration that rebuilds `messages` must create them again.
MESSAGES_SEARCH_TRIGGERS = (
    """
    CREATE TRIGGER messages_search_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (rowid, text, author) VALUES (new.id, new.text, new.author);
    END
    """,
    """
    CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, text, author) VALUES ('delete', old.id, old.text, old.author);
    END
    """,
    """
    CREATE TRIGGER messages_search_update AFTER UPDATE OF text, author ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, text, author) VALUES ('delete', old.id, old.text, old.author);
        INSERT INTO messages_fts (rowid, text, author) VALUES (new.id, new.text, new.author);
    END
    """,
)
MESSAGES_SEARCH_TRIGGER_NAMES = ("messages_search_insert", "messages_search_delete", "messages_search_update")

_DEAL_CONTACT = "(SELECT name FROM contacts WHERE id = new.contact_id)"
DEALS_SEARCH_TRIGGERS = (
    f"""
    CREATE TRIGGER deals_search_insert AFTER INSERT ON deals BEGIN
        INSERT INTO deals_fts (rowid, text, author) VALUES (new.id, new.title, {_DEAL_CONTACT});
    END
    """,
    f"""
    CREATE TRIGGER deals_search_update AFTER UPDATE OF title, contact_id ON deals
    WHEN old.title IS NOT new.title OR old.contact_id IS NOT new.contact_id BEGIN
        DELETE FROM deals_fts WHERE rowid = old.id;
        INSERT INTO deals_fts (rowid, text, author) VALUES (new.id, new.title, {_DEAL_CONTACT});
    END
    """,
    """
    CREATE TRIGGER deals_search_delete AFTER DELETE ON deals BEGIN
        DELETE FROM deals_fts WHERE rowid = old.id;
    END
    """,
)

# How many deals each status rank has, per responsible employee ('' for none), kept by
# these triggers through every write to `deals` (m013): the queue's summary reads a few
# rows, however many deals there are. A row may hold 0.
QUEUE_COUNTS_TABLE = """
CREATE TABLE queue_counts (
    responsible TEXT NOT NULL,
    status_rank INTEGER NOT NULL,
    deals INTEGER NOT NULL,
    PRIMARY KEY (responsible, status_rank)
) WITHOUT ROWID
"""
_COUNT = """
        INSERT OR IGNORE INTO queue_counts (responsible, status_rank, deals)
        VALUES (coalesce(new.responsible, ''), new.status_rank, 0);
        UPDATE queue_counts SET deals = deals + 1
        WHERE responsible = coalesce(new.responsible, '') AND status_rank = new.status_rank;"""
_UNCOUNT = """
        UPDATE queue_counts SET deals = deals - 1
        WHERE responsible = coalesce(old.responsible, '') AND status_rank = old.status_rank;"""
QUEUE_COUNTS_TRIGGERS = (
    f"CREATE TRIGGER deals_counted_insert AFTER INSERT ON deals BEGIN{_COUNT}\n    END",
    f"CREATE TRIGGER deals_counted_delete AFTER DELETE ON deals BEGIN{_UNCOUNT}\n    END",
    "CREATE TRIGGER deals_counted_update AFTER UPDATE OF status_rank, responsible ON deals\n"
    f"    WHEN old.status_rank IS NOT new.status_rank OR old.responsible IS NOT new.responsible BEGIN{_UNCOUNT}{_COUNT}\n    END",
)
