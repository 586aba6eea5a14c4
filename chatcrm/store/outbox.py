"""The outbox: replies waiting for a live channel, the runs that deliver them, and what
the channels said of them (rules/delivery.py): each report of a status a fact of its own,
the earliest report of a status being when it happened.

A reply is taken (`claim`) in a write transaction that gives it to one run for a lease:
two runs never hold one reply, and a run that dies lets go when its lease runs out. A
chat's replies go one at a time, in the order they were written: a reply is not taken
while an earlier one of its chat is still to be delivered.
"""

from __future__ import annotations

from chatcrm import times
from chatcrm.rules import delivery
from chatcrm.store.connection import Store

# The statuses of reply `o`: reported for its remote id, on a channel that reports them.
_ITS_STATUS = (f"o.remote_id IS NOT NULL AND o.channel IN ({', '.join(repr(c) for c in delivery.STATUS_CHANNELS)}) "
               "AND s.remote_id = o.remote_id")
_STATUS_RANK = f"(SELECT max({delivery.rank_sql('s.status')}) FROM delivery_statuses s WHERE {_ITS_STATUS})"

_ENTRY = f"""
SELECT o.id AS reply_id, o.message_id, o.chat_key, o.channel, o.recipient, o.via, o.reply_at,
       o.tries, o.next_try_at, o.lease_owner, o.lease_until, o.sent_at, o.remote_id, o.last_error,
       o.given_up_at, m.author, m.text, k.deal_id, {_STATUS_RANK} AS status_rank,
       (SELECT s.error FROM delivery_statuses s WHERE {_ITS_STATUS}
        AND s.status = 'failed' ORDER BY s.at, s.id LIMIT 1) AS status_error,
       (SELECT max(first) FROM (SELECT min(s.at) AS first FROM delivery_statuses s
        WHERE {_ITS_STATUS} GROUP BY s.status)) AS status_at
FROM outbox o JOIN messages m ON m.id = o.message_id JOIN chat_keys k ON k.key = o.chat_key
"""


def live_chat(store: Store, chat_key: str) -> dict | None:
    """Where replies to this chat key go, when it came from a live channel."""
    return store.row("SELECT chat_key, channel, recipient, via FROM live_chats WHERE chat_key = ?", [chat_key])


def enqueue(store: Store, message_id: int, live: dict, reply_at: str) -> int:
    """Queue the reply `message_id` for its live chat; returns its outbox id."""
    cursor = store.conn.execute(
        "INSERT INTO outbox (message_id, chat_key, channel, recipient, via, reply_at, next_try_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [message_id, live["chat_key"], live["channel"], live["recipient"], live["via"], reply_at, reply_at],
    )
    return cursor.lastrowid


def entries(store: Store, *, everything: bool = False, limit: int | None = None) -> list[dict]:
    """The outbox's replies in delivery order: those still to deliver and those given up,
    or (`everything`) all of them."""
    sql = _ENTRY
    if not everything:
        sql += " WHERE o.sent_at IS NULL"
    sql += " ORDER BY o.reply_at, o.id"
    params: list = []
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return store.rows(sql, params)


def entry(store: Store, reply_id: int) -> dict | None:
    return store.row(_ENTRY + " WHERE o.id = ?", [reply_id])


def by_message(store: Store, message_ids: list[int]) -> dict[int, dict]:
    """The outbox entries of these messages (the replies among them), by message id."""
    found: dict[int, dict] = {}
    for start in range(0, len(message_ids), 500):
        chunk = message_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in store.rows(_ENTRY + f" WHERE o.message_id IN ({marks})", chunk):
            found[row["message_id"]] = row
    return found


def claim(store: Store, now: str, owner: str, lease_seconds: int) -> dict | None:
    """Take the next reply due for delivery for `owner` until the lease runs out; None
    when nothing is due. Call inside a write transaction."""
    row = store.row(
        """
        SELECT o.id FROM outbox o
        WHERE o.sent_at IS NULL AND o.given_up_at IS NULL AND o.next_try_at <= ?1
          AND (o.lease_until IS NULL OR o.lease_until <= ?1)
          AND NOT EXISTS (
              SELECT 1 FROM outbox p
              WHERE p.chat_key = o.chat_key AND (p.reply_at, p.id) < (o.reply_at, o.id)
                AND p.sent_at IS NULL AND p.given_up_at IS NULL)
        ORDER BY o.reply_at, o.id
        LIMIT 1
        """,
        [now],
    )
    if row is None:
        return None
    until = times.from_epoch(times.epoch(now) + lease_seconds)
    store.conn.execute("UPDATE outbox SET lease_owner = ?, lease_until = ? WHERE id = ?", [owner, until, row["id"]])
    return entry(store, row["id"])


def record_sent(store: Store, reply_id: int, now: str, remote_id: str | None) -> None:
    """The channel took the reply (whichever run held it: it was sent)."""
    store.conn.execute(
        "UPDATE outbox SET sent_at = coalesce(sent_at, ?), remote_id = coalesce(?, remote_id), "
        "tries = tries + 1, lease_owner = NULL, lease_until = NULL, last_error = NULL WHERE id = ?",
        [now, remote_id, reply_id],
    )


def record_failure(store: Store, reply_id: int, owner: str, now: str, error: str) -> dict | None:
    """A failed try by `owner`: tried again after the back-off, or given up. Returns the
    entry as it is now, or None when the run no longer held it (its lease ran out and
    another run took it)."""
    row = store.row("SELECT tries, sent_at FROM outbox WHERE id = ? AND lease_owner = ?", [reply_id, owner])
    if row is None or row["sent_at"] is not None:
        return None
    tries = row["tries"] + 1
    wait = delivery.backoff(tries)
    next_try = times.from_epoch(times.epoch(now) + wait) if wait is not None else now
    store.conn.execute(
        "UPDATE outbox SET tries = ?, next_try_at = ?, last_error = ?, given_up_at = ?, "
        "lease_owner = NULL, lease_until = NULL WHERE id = ?",
        [tries, next_try, error, None if wait is not None else now, reply_id],
    )
    return entry(store, reply_id)


def counts(store: Store, now: str) -> dict[str, int]:
    """How many replies wait (due now or later) and how many were given up."""
    row = store.row(
        "SELECT sum(given_up_at IS NULL) AS waiting, sum(given_up_at IS NULL AND next_try_at > ?) AS later, "
        "sum(given_up_at IS NOT NULL) AS failed FROM outbox WHERE sent_at IS NULL",
        [now],
    )
    return {k: row[k] or 0 for k in ("waiting", "later", "failed")}
