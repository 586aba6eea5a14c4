"""What the commands read: deals, their chats and messages, the queue, the employees.

Every query here goes through an index (tests/test_query_plans.py), so that the everyday
commands cost the same however large the database grows.
"""

from __future__ import annotations

from chatcrm.rules import employees as employee_rule
from chatcrm.rules import idle as idle_rule
from chatcrm.rules import sla as sla_rule
from chatcrm.rules.statuses import STATUSES
from chatcrm.store.connection import Store


def is_empty(store: Store) -> bool:
    """Whether the database holds no deal yet (a lookup of the largest id, not a scan)."""
    return store.conn.execute("SELECT max(id) FROM deals").fetchone()[0] is None


def find_deal(store: Store, ref: str) -> dict | None:
    """A deal (its row of the queue) by its id (digits) or its key."""
    row = None
    if ref.isascii() and ref.isdigit() and len(ref) < 19:  # an id SQLite can hold; longer digits are a key
        row = store.row("SELECT * FROM queue WHERE deal_id = ?", [int(ref)])
    if row is None:
        row = store.row("SELECT * FROM queue WHERE deal_key = ?", [ref])
    return row


def deal_chats(store: Store, deal_id: int) -> list[dict]:
    """The deal's chat sessions with their activities, oldest first."""
    return store.rows(
        """
        SELECT c.id AS chat_id, c.chat_key, k.channel, c.opened_at, c.opened_by, c.closed_at,
               c.waiting_since, c.first_response_at, c.last_message_at, c.messages, c.responsible,
               a.id AS activity_id, a.created_at AS activity_created_at, a.completed_at
        FROM chats c JOIN activities a ON a.chat_id = c.id JOIN chat_keys k ON k.key = c.chat_key
        WHERE c.deal_id = ?
        ORDER BY c.opened_at, c.chat_key
        """,
        [deal_id],
    )


def deal_messages(store: Store, deal_id: int) -> list[dict]:
    return store.rows(
        """
        SELECT m.id, m.chat_key, m.direction, m.author, m.text, m.sent_at, m.seq
        FROM chat_keys k JOIN messages m ON m.chat_key = k.key
        WHERE k.deal_id = ?
        ORDER BY m.sent_at, m.seq, m.direction, m.author, m.text
        """,
        [deal_id],
    )


def deal_assignments(store: Store, deal_id: int) -> list[dict]:
    return store.rows(
        """
        SELECT a.chat_key, a.at, a.session, a.agent
        FROM chat_keys k JOIN assignments a ON a.chat_key = k.key
        WHERE k.deal_id = ?
        ORDER BY a.at, a.agent
        """,
        [deal_id],
    )


def queue(store: Store, status: str | None = None, limit: int | None = None, agent: str | None = None) -> list[dict]:
    """The queue's rows (the `queue` view: R9's order), filtered."""
    sql = "SELECT * FROM queue"
    where, params = _queue_filter(status=status, agent=agent)
    if where:
        sql += " WHERE " + where
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return store.rows(sql, params)


def queue_counts(store: Store, agent: str | None = None) -> dict[str, int]:
    """How many deals have each status (of `agent`'s, when given)."""
    counts = dict.fromkeys(STATUSES, 0)
    sql = "SELECT status_rank, count(*) FROM deals"
    where, params = _queue_filter(agent=agent)
    if where:
        sql += " WHERE " + where
    for rank, count in store.conn.execute(sql + " GROUP BY status_rank", params):
        counts[STATUSES[rank]] = count
    return counts


def count_overdue(store: Store, now_epoch: int, sla_seconds: int, agent: str | None = None) -> int:
    """Unread deals (of `agent`'s) whose client has waited longer than the SLA, through
    the queue indexes (rules/sla.py)."""
    sql = "SELECT count(*) FROM deals WHERE " + sla_rule.OVERDUE_SQL
    params: list = [sla_rule.cutoff(now_epoch, sla_seconds)]
    if agent is not None:
        sql += " AND responsible = ?"
        params.append(agent)
    return store.conn.execute(sql, params).fetchone()[0]


def idle_chats(store: Store, cutoff: str) -> list[dict]:
    """The open chats that have been quiet since an employee's message at or before
    `cutoff` (rules/idle.py), oldest first, through the `chats_idle` index."""
    return store.rows(
        f"""
        SELECT c.id AS chat_id, c.chat_key, c.deal_id, c.opened_at, c.last_message_at, m.author,
               a.id AS activity_id, a.completed_at
        FROM chats c INDEXED BY chats_idle
        JOIN messages m ON m.id = c.last_message_id
        JOIN activities a ON a.chat_id = c.id
        WHERE {idle_rule.IDLE_SQL}
        ORDER BY c.last_message_at, c.id
        """,
        [cutoff],
    )


def is_employee(store: Store, name: str) -> bool:
    """Whether `name` is an employee's (rules/employees.py)."""
    return any(store.conn.execute(sql, [name]).fetchone() for sql in employee_rule.exists_sql())


def employees(store: Store) -> list[str]:
    """Every employee's name (rules/employees.py)."""
    return [row[0] for row in store.conn.execute(employee_rule.names_sql())]


def _queue_filter(status: str | None = None, agent: str | None = None) -> tuple[str, list]:
    clauses, params = [], []
    if status:
        clauses.append("status = ?")
        params.append(status)
    if agent is not None:
        clauses.append("responsible = ?")
        params.append(agent)
    return " AND ".join(clauses), params
