"""What the commands read: deals, their chats and messages, the queue, the employees.

Every query here goes through an index (tests/test_query_plans.py), so that the everyday
commands cost the same however large the database grows.
"""

from __future__ import annotations

from chatcrm.rules import employees as employee_rule
from chatcrm.rules import idle as idle_rule
from chatcrm.rules import sla as sla_rule
from chatcrm.rules import statuses
from chatcrm.rules.statuses import STATUSES
from chatcrm.store.connection import Store


def is_empty(store: Store) -> bool:
    """Whether the database holds no deal yet (a lookup of the largest id, not a scan)."""
    return store.conn.execute("SELECT max(id) FROM deals").fetchone()[0] is None


def _deal_columns(status: str) -> str:
    """A deal's row as the `queue` view gives it, its status being `status` (SQL)."""
    return f"""
        d.id AS deal_id, d.key AS deal_key, d.title AS title, c.name AS contact, c.channel AS channel,
        {status} AS status, d.waiting_since AS waiting_since, d.follow_up_at AS due_at,
        d.open_chats AS open_chats, d.active_activities AS active_activities,
        d.last_message_at AS last_message_at, m.text AS last_message, m.direction AS last_message_direction,
        d.responsible AS responsible, d.oldest_active_at AS oldest_active_at, d.last_event_at AS last_event_at,
        d.created_at AS created_at
        FROM deals d
        LEFT JOIN contacts c ON c.id = d.contact_id
        LEFT JOIN messages m ON m.id = d.last_message_id
    """


def find_deal(store: Store, ref: str, now_epoch: int | None = None) -> dict | None:
    """A deal (its row of the queue) by its id (digits) or its key, with its status at
    `now_epoch` (without one, R8's status alone: unread, green or grey)."""
    status = statuses.status_sql(":now", "d") if now_epoch is not None else "d.status"
    sql = "SELECT " + _deal_columns(status)
    row = None
    if ref.isascii() and ref.isdigit() and len(ref) < 19:  # an id SQLite can hold; longer digits are a key
        row = store.row(sql + " WHERE d.id = :ref", {"ref": int(ref), "now": now_epoch})
    if row is None:
        row = store.row(sql + " WHERE d.key = :ref", {"ref": ref, "now": now_epoch})
    return row


def deal_chats(store: Store, deal_id: int) -> list[dict]:
    """The deal's chat sessions with their activities, oldest first."""
    return store.rows(
        """
        SELECT c.id AS chat_id, c.chat_key, k.channel, c.opened_at, c.opened_by, c.closed_at,
               c.waiting_since, c.first_response_at, c.last_message_at, c.messages, c.responsible,
               a.id AS activity_id, a.created_at AS activity_created_at, a.completed_at,
               a.follow_up_at, a.follow_up_note
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


def latest_message_id(store: Store, event) -> int:
    """The id of the id-less message just recorded for `event` (its latest occurrence)."""
    from chatcrm.rules import identity

    prefix = identity.content_prefix(event.at, event.author, event.text)
    return store.conn.execute(
        "SELECT max(id) FROM messages WHERE chat_key = ? AND uid >= ? AND uid < ?",
        [event.chat, prefix, prefix + "\uffff"],
    ).fetchone()[0]


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


def deal_reminders(store: Store, deal_id: int) -> list[dict]:
    return store.rows(
        """
        SELECT r.chat_key, r.at, r.session, nullif(r.due_at, '') AS due_at, r.note
        FROM chat_keys k JOIN reminders r ON r.chat_key = k.key
        WHERE k.deal_id = ?
        ORDER BY r.at, r.due_at, r.note
        """,
        [deal_id],
    )


def queue(store: Store, now_epoch: int, status: str | None = None, limit: int | None = None,
          agent: str | None = None) -> list[dict]:
    """The queue's rows at `now_epoch` in R9's order, filtered: each status read in turn
    from its own index range (rules/statuses.py, `branches`), as the `queue` view orders
    them at SQLite's clock."""
    rows: list[dict] = []
    for name, (condition, order) in statuses.branches(":now", "d").items():
        if status is not None and name != status:
            continue
        if limit is not None and len(rows) >= limit:
            break
        sql = f"SELECT {_deal_columns(repr(name))} WHERE {condition}"
        params: dict = {"now": now_epoch}
        if agent is not None:
            sql += " AND d.responsible = :agent"
            params["agent"] = agent
        sql += f" ORDER BY {order}"
        if limit is not None:
            sql += " LIMIT :limit"
            params["limit"] = limit - len(rows)
        rows += store.rows(sql, params)
    return rows


def queue_counts(store: Store, now_epoch: int, agent: str | None = None) -> dict[str, int]:
    """How many deals have each status at `now_epoch` (of `agent`'s, when given): the
    stored ranks' counts (`queue_counts`, a few rows), less the deals of each that are due
    by now."""
    counts = dict.fromkeys(STATUSES, 0)
    where, params = _queue_filter(agent=agent)  # queue_counts has the deals' `responsible` too
    sql = "SELECT status_rank, sum(deals) FROM queue_counts" + (f" WHERE {where}" if where else "")
    for rank, count in store.conn.execute(sql + " GROUP BY status_rank", params):
        counts[STATUSES[rank]] = count
    # (`+status_rank`: grouped from the due deals' range of deals_due, not by a scan of
    # every deal in deals_queue's order)
    due_sql = "SELECT status_rank, count(*) FROM deals WHERE due_key <= ?" + (f" AND {where}" if where else "")
    for rank, count in store.conn.execute(due_sql + " GROUP BY +status_rank", [now_epoch, *params]):
        counts[STATUSES[rank]] -= count
        counts[statuses.DUE] += count
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


# ------------------------------------------------------------------ stats
# `stats` reads the stored sessions and waits (derived from the facts like every state,
# and compared by `check`): those of a period through the indexes on their starts.

def _seconds_sql() -> str:
    """A stored time as seconds since the epoch, in SQL: `unixepoch` where SQLite has it
    (3.38), which does at once what `strftime('%s')` and a cast do."""
    import sqlite3

    return "unixepoch({})" if sqlite3.sqlite_version_info >= (3, 38) else "CAST(strftime('%s', {}) AS INTEGER)"


_SECONDS = _seconds_sql()


def _period(column: str, since: str | None, until: str | None) -> tuple[str, list]:
    clauses, params = [], []
    if since is not None:
        clauses.append(f"{column} >= ?")
        params.append(since)
    if until is not None:
        clauses.append(f"{column} < ?")
        params.append(until)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


# A figure's channel is its session's (`chats.channel`, its chat key's stored beside it).
# The figures come grouped by channel and employee, each group's durations listed as a
# JSON array of seconds (NULL for none; group_concat skips NULLs): one row a group, not
# one a figure.
_LIST = "'[' || group_concat({}) || ']'"


def stats_sessions(store: Store, since: str | None, until: str | None):
    """The sessions opened in [since, until), grouped by (channel, replier, responsible):
    the first responses (seconds from the opening to the first reply) of those a client
    opened, whose replier is the author of its first reply (stored beside it); and the
    times to close (seconds from the opening to the close) of those closed, whose employee
    is the responsible."""
    where, params = _period("c.opened_at", since, until)
    answered = "c.opened_by = 'client' AND c.first_response_at IS NOT NULL"
    return store.conn.execute(
        f"""
        SELECT c.channel,
               CASE WHEN {answered} THEN c.first_reply_by END,
               c.responsible,
               {_LIST.format(f"CASE WHEN {answered} THEN {_SECONDS.format('c.first_response_at')} - "
                             f"{_SECONDS.format('c.opened_at')} END")},
               {_LIST.format(f"{_SECONDS.format('c.closed_at')} - {_SECONDS.format('c.opened_at')}")}
        FROM chats c{where or ' WHERE 1'} AND (c.closed_at IS NOT NULL OR {answered})
        GROUP BY 1, 2, 3
        """,
        params,
    )


def stats_session_count(store: Store, since: str | None, until: str | None) -> int:
    where, params = _period("opened_at", since, until)
    return store.conn.execute(f"SELECT count(*) FROM chats{where}", params).fetchone()[0]


def stats_waits(store: Store, since: str | None, until: str | None, now_epoch: int):
    """The waits that started in [since, until), grouped by (channel, who answered, else
    the session's responsible): the seconds waited (until `now_epoch` while still
    waiting), and how many of them nobody answered."""
    where, params = _period("w.started_at", since, until)
    return store.conn.execute(
        f"""
        SELECT c.channel, coalesce(nullif(w.answered_by, ''), c.responsible),
               {_LIST.format(f"coalesce({_SECONDS.format('w.ended_at')}, ?) - {_SECONDS.format('w.started_at')}")},
               count(*) - count(w.answered_by)
        FROM waits w JOIN chats c ON c.id = w.chat_id{where}
        GROUP BY 1, 2
        """,
        [now_epoch, *params],
    )
