"""A deal's status and its rank in the queue (rules R8 and R9 in docs/rules.md).

A deal is `unread` while a client waits in any of its sessions, else `green` while it has
an active activity, else `grey`. The queue shows them in that order; within a status by
its queue key (see `queue_key`), then by the lower deal id.
"""

from __future__ import annotations

UNREAD, GREEN, GREY = "unread", "green", "grey"
STATUSES = (UNREAD, GREEN, GREY)  # in queue order: a status's rank is its place here
RANK = {status: rank for rank, status in enumerate(STATUSES)}


def is_unread(closed_at: str | None, waiting_since: str | None) -> bool:
    """R2/R5: a session is unread while it is open and a client waits for an answer."""
    return closed_at is None and waiting_since is not None


def status_of(waiting_since: str | None, active_activities: int) -> str:
    """R8: unread while a client waits, else green while an activity is active, else grey."""
    if waiting_since is not None:
        return UNREAD
    if active_activities:
        return GREEN
    return GREY


def queue_key(status: str, waiting_since_epoch: int | None, oldest_active_epoch: int | None,
              last_event_epoch: int | None) -> int:
    """R9, within a status: Unread deals longest waiting first (earliest waiting-since),
    green deals oldest active activity first, grey deals most recent first."""
    if status == UNREAD:
        return waiting_since_epoch
    if status == GREEN:
        return oldest_active_epoch
    return -last_event_epoch if last_event_epoch is not None else 0


# The queue's order as SQL over the stored `deals d` columns (ties: the lower deal id);
# the `queue` view orders by it (a test checks).
QUEUE_ORDER_SQL = "d.status_rank, d.queue_key, d.id"


def parse(value: str) -> str:
    """A status named by a user; raises ValueError naming the ones there are."""
    if value not in STATUSES:
        raise ValueError(f"unknown status {value!r} (use {', '.join(STATUSES[:-1])} or {STATUSES[-1]})")
    return value
