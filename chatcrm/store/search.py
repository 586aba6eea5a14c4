"""Full-text search: the FTS5 indexes of the messages and the deals, and their queries.

`messages_fts` indexes each message's `text` and `author` (external content: the text is
stored once, in `messages`); `deals_fts` each deal's title (as `text`) and contact (as
`author`), so that a column filter (`author:ana`) means the same in both. Both are derived
and kept in step by triggers on `messages` and `deals` (store/schema.py, m005): every
write — an import, a reply, a deletion — updates them in the same transaction. A large
import sets the messages' triggers aside and indexes its new messages at its end
(`suspend_message_indexing`, `index_messages_after`), and likewise its new deals
(`suspend_deal_indexing`, `index_deals`). `chatcrm check` verifies both
(`problems`).
"""

from __future__ import annotations

import json
import sqlite3

from chatcrm.rules import statuses
from chatcrm.store.connection import Store

# Where a snippet's match starts and ends: private-use characters, which the renderer
# turns into highlighting or plain markers (a client's own text never holds them by
# accident, and holding them on purpose changes only what is highlighted).
MATCH_START, MATCH_END = "\ue000", "\ue001"
SNIPPET_TOKENS = 16
SEARCH_TABLES = ("messages_fts", "deals_fts")  # and their FTS5 shadow tables


class MalformedQuery(ValueError):
    """The FTS5 query cannot be parsed; the message says why."""


def suspend_message_indexing(conn: sqlite3.Connection) -> int:
    """For a large import: drop the messages' search triggers (in the import's
    transaction: a rollback brings them back). Returns the last message id indexed."""
    from chatcrm.store.ddl import MESSAGES_SEARCH_TRIGGER_NAMES

    for name in MESSAGES_SEARCH_TRIGGER_NAMES:
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    return conn.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0]


def index_messages_after(conn: sqlite3.Connection, last_indexed: int) -> None:
    """Index every message with an id above `last_indexed` in one statement, and bring
    the triggers back for the writes that follow."""
    from chatcrm.store.ddl import MESSAGES_SEARCH_TRIGGERS

    conn.execute(
        "INSERT INTO messages_fts (rowid, text, author) SELECT id, text, author FROM messages WHERE id > ?",
        [last_indexed],
    )
    for statement in MESSAGES_SEARCH_TRIGGERS:
        conn.execute(statement)


def suspend_deal_indexing(conn: sqlite3.Connection) -> None:
    """For a large import: drop the trigger that indexes each new deal as it is written."""
    conn.execute("DROP TRIGGER IF EXISTS deals_search_insert")


def index_deals(conn: sqlite3.Connection, deal_ids: list[int]) -> None:
    """Index these new deals in one statement, and bring the insert trigger back."""
    from chatcrm.store.ddl import DEALS_SEARCH_TRIGGERS

    conn.execute(
        "INSERT INTO deals_fts (rowid, text, author) SELECT d.id, d.title, c.name FROM deals d "
        "LEFT JOIN contacts c ON c.id = d.contact_id WHERE d.id IN (SELECT value FROM json_each(?))",
        [json.dumps(deal_ids)],
    )
    conn.execute(next(t for t in DEALS_SEARCH_TRIGGERS if "deals_search_insert" in t))


_MESSAGE_HITS = """
SELECT 'message' AS kind, m.id AS message_id, m.sent_at AS at, m.direction, m.author, m.text,
       snippet(messages_fts, -1, '{match_start}', '{match_end}', '…', {snippet_tokens}) AS snippet,
       messages_fts.rank AS rank, m.chat_key, k.channel,
       d.id AS deal_id, d.key AS deal_key, d.title, {status} AS status, d.responsible
FROM messages_fts
JOIN messages m ON m.id = messages_fts.rowid
JOIN chat_keys k ON k.key = m.chat_key
JOIN deals d ON d.id = k.deal_id
WHERE messages_fts MATCH ?
"""

_DEAL_HITS = """
SELECT 'deal' AS kind, NULL AS message_id, d.created_at AS at, NULL AS direction, c.name AS author,
       d.title AS text,
       snippet(deals_fts, -1, '{match_start}', '{match_end}', '…', {snippet_tokens}) AS snippet,
       deals_fts.rank AS rank, NULL AS chat_key, c.channel,
       d.id AS deal_id, d.key AS deal_key, d.title, {status} AS status, d.responsible
FROM deals_fts
JOIN deals d ON d.id = deals_fts.rowid
LEFT JOIN contacts c ON c.id = d.contact_id
WHERE deals_fts MATCH ?
"""

_ORDER = {"time": "at DESC, deal_id DESC, message_id DESC", "rank": "rank, at DESC, deal_id DESC"}
_MESSAGE_ORDER = {"time": "m.sent_at DESC, m.id DESC", "rank": "messages_fts.rank, m.sent_at DESC, m.id DESC"}


def search(
    store: Store,
    query: str,
    *,
    limit: int,
    sort: str = "time",
    deal_id: int | None = None,
    channel: str | None = None,
    agent: str | None = None,
    author: str | None = None,
    status: str | None = None,
    since: str | None = None,
    until: str | None = None,
    now_epoch: int | None = None,
) -> list[dict]:
    """The messages and deals that match the FTS5 `query`, newest first (`sort="time"`)
    or best first (`sort="rank"`, FTS5's bm25), at most `limit`, filtered. A deal matches
    by its title or contact; its time is when it was created. Each deal's status is the one
    at `now_epoch` (rules/statuses.py: due and pending depend on it). Raises MalformedQuery.

    The messages in two steps: which ones (the matches' ids, in order, up to `limit`,
    reading only what the filters need), then their rows and snippets, so that a word
    found in most messages costs a walk of its index entries, not a snippet each."""
    # The moment is a whole number of our own, written into the SQL: the statement's
    # parameters stay in the order of its clauses.
    deal_status = statuses.status_sql(str(int(now_epoch)), "d") if now_epoch is not None else "d.status"
    shown = {"match_start": MATCH_START, "match_end": MATCH_END, "snippet_tokens": SNIPPET_TOKENS,
             "status": deal_status}
    filters = {"deal_id": deal_id, "channel": channel, "agent": agent, "author": author, "status": status,
               "since": since, "until": until}
    try:
        ids = _message_ids(store, query, sort, limit, deal_status, **filters)
        hits = store.rows(_MESSAGE_HITS.format(**shown) + " AND messages_fts.rowid IN (SELECT value FROM json_each(?))",
                          [query, json.dumps(ids)]) if ids else []
        sql, params = _filtered(_DEAL_HITS.format(**shown), [query], "c.name", "c.channel", "d.created_at",
                                deal_status, **filters)
        hits += store.rows(sql + f" ORDER BY {_ORDER[sort]} LIMIT ?", [*params, limit])
    except sqlite3.OperationalError as error:
        if _is_query_error(error):
            raise MalformedQuery(str(error)) from None
        raise
    hits.sort(key=lambda h: (h["at"] or "", h["deal_id"], h["message_id"] or 0), reverse=True)
    if sort == "rank":
        hits.sort(key=lambda h: h["rank"])  # stable: equal ranks stay newest first
    return hits[:limit]


def _message_ids(store: Store, query: str, sort: str, limit: int, deal_status: str, **filters) -> list[int]:
    if sort == "rank" and all(value is None for value in filters.values()):
        # The index alone, in FTS5's own order by rank (it keeps the best `limit` as it goes).
        sql = "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rank LIMIT ?"
        return [row[0] for row in store.conn.execute(sql, [query, limit])]
    joins = ""
    if any(filters[name] is not None for name in ("deal_id", "channel", "agent", "status")):
        joins = " JOIN chat_keys k ON k.key = m.chat_key JOIN deals d ON d.id = k.deal_id"
    base = f"SELECT m.id FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid{joins} WHERE messages_fts MATCH ?"
    sql, params = _filtered(base, [query], "m.author", "k.channel", "m.sent_at", deal_status, **filters)
    return [row[0] for row in store.conn.execute(sql + f" ORDER BY {_MESSAGE_ORDER[sort]} LIMIT ?", [*params, limit])]


def _filtered(sql: str, params: list, author_column: str, channel_column: str, at_column: str, status_column: str, *,
              deal_id, channel, agent, author, status, since, until) -> tuple[str, list]:
    for clause, value in (
        ("d.id = ?", deal_id),
        (f"{channel_column} = ?", channel),
        ("d.responsible = ?", agent),
        (f"{author_column} = ? COLLATE NOCASE", author),
        (f"{status_column} = ?", status),
        (f"{at_column} >= ?", since),
        (f"{at_column} < ?", until),
    ):
        if value is not None:
            sql += f" AND {clause}"
            params = [*params, value]
    return sql, params


def _is_query_error(error: sqlite3.OperationalError) -> bool:
    text = str(error)
    return text.startswith(("fts5:", "no such column", "unknown special query", "unterminated string"))


def problems(store: Store) -> list[str]:
    """What is wrong with the search indexes: a message or deal missing from them, or
    indexed with other words than it holds."""
    conn = store.conn
    found = []
    missing = conn.execute(
        "SELECT count(*), min(m.id) FROM messages m WHERE NOT EXISTS "
        "(SELECT 1 FROM messages_fts_docsize s WHERE s.id = m.id)"
    ).fetchone()
    if missing[0]:
        found.append(f"search index: {missing[0]} message(s) are not indexed (the first: message {missing[1]})")
    stray = conn.execute(
        "SELECT count(*), min(s.id) FROM messages_fts_docsize s WHERE NOT EXISTS "
        "(SELECT 1 FROM messages m WHERE m.id = s.id)"
    ).fetchone()
    if stray[0]:
        found.append(f"search index: {stray[0]} indexed message(s) are not stored (the first: message {stray[1]})")
    if not found:
        try:
            conn.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")
        except sqlite3.DatabaseError:
            found.append("search index: the messages' index does not hold the words the messages hold")
    try:
        conn.execute("INSERT INTO deals_fts (deals_fts) VALUES ('integrity-check')")
    except sqlite3.DatabaseError:
        found.append("search index: the deals' index is damaged")
    for deal_id, in conn.execute(
        "SELECT rowid FROM (SELECT rowid, text, author FROM deals_fts EXCEPT "
        "SELECT d.id, d.title, c.name FROM deals d LEFT JOIN contacts c ON c.id = d.contact_id) "
        "UNION SELECT id FROM (SELECT d.id, d.title, c.name FROM deals d LEFT JOIN contacts c ON c.id = d.contact_id "
        "EXCEPT SELECT rowid, text, author FROM deals_fts) ORDER BY 1 LIMIT 10"
    ):
        found.append(f"search index: deal {deal_id}'s title or contact is not indexed as stored")
    return found
