"""A deal's status and its rank in the queue (rules R8, R9 and R11 in docs/rules.md).

A deal is `unread` while a client waits in any of its sessions; else, while it has an
active activity, `due` when a follow-up's time has come on one of them (rules/follow_ups.py),
`pending` when every active activity has a follow-up still in the future, `green`
otherwise; else `grey`. The queue shows them in that order; within a status by its queue
key (see `queue_key`), then by the lower deal id.

`due` and `pending` depend on the current time, the others on the facts alone. So the
store keeps what does not change with time (`stored_rank`: unread, green, pending —
every active activity followed up — or grey, and the earliest follow-up as `due_key`), and
the reader splits due, green and pending by comparing `due_key` with its own now
(`STATUS_SQL`, `BRANCHES`), through indexes.
"""

from __future__ import annotations

from typing import Iterable

UNREAD, DUE, GREEN, PENDING, GREY = "unread", "due", "green", "pending", "grey"
STATUSES = (UNREAD, DUE, GREEN, PENDING, GREY)  # in queue order: a status's rank is its place here
RANK = {status: rank for rank, status in enumerate(STATUSES)}
# The statuses of R8 alone, stored in `deals.status` (the CHECK constraint of the first schema).
BASE_STATUSES = (UNREAD, GREEN, GREY)


def is_unread(closed_at: str | None, waiting_since: str | None) -> bool:
    """R2/R5: a session is unread while it is open and a client waits for an answer."""
    return closed_at is None and waiting_since is not None


def base_status(waiting_since: str | None, active_activities: int) -> str:
    """R8: unread while a client waits, else green while an activity is active, else grey."""
    if waiting_since is not None:
        return UNREAD
    if active_activities:
        return GREEN
    return GREY


def status_of(waiting_since: str | None, active_follow_ups: Iterable[str | None], now: str) -> str:
    """R8 and R11 at the time `now`: `active_follow_ups` holds each active activity's
    follow-up time (None where it has none)."""
    follow_ups = list(active_follow_ups)
    status = base_status(waiting_since, len(follow_ups))
    if status != GREEN:
        return status
    set_ = [f for f in follow_ups if f is not None]
    if set_ and min(set_) <= now:
        return DUE
    if len(set_) == len(follow_ups):
        return PENDING
    return GREEN


def stored_rank(base: str, all_followed: bool) -> int:
    """The rank the store keeps: a green deal whose every active activity has a follow-up
    is pending until its earliest follow-up comes (then due, at read time)."""
    if base == GREEN and all_followed:
        return RANK[PENDING]
    return RANK[base]


def queue_key(rank: int, waiting_since_epoch: int | None, oldest_active_epoch: int | None,
              last_event_epoch: int | None, follow_up_epoch: int | None = None) -> int:
    """R9, within a stored rank: Unread deals longest waiting first (earliest
    waiting-since), green deals oldest active activity first, pending deals soonest
    follow-up first, grey deals most recent first. (Due deals are ordered by `due_key`,
    their earliest follow-up.)"""
    if rank == RANK[UNREAD]:
        return waiting_since_epoch
    if rank == RANK[GREEN]:
        return oldest_active_epoch
    if rank == RANK[PENDING]:
        return follow_up_epoch
    return -last_event_epoch if last_event_epoch is not None else 0


def due_key(base: str, follow_up_epoch: int | None) -> int | None:
    """The stored moment a deal turns due: its earliest follow-up on an active activity,
    unless a client waits (R4: unread comes first) or nothing is active."""
    return follow_up_epoch if base == GREEN else None


# SQL over the stored `deals` columns (of `table`, when named) at the moment `now` (an SQL
# expression giving epoch seconds: a parameter, or in the `queue` view SQLite's clock).

def status_sql(now: str, table: str = "") -> str:
    """The status at `now`."""
    t = f"{table}." if table else ""
    return (
        f"CASE WHEN {t}status_rank = {RANK[UNREAD]} THEN '{UNREAD}' WHEN {t}due_key <= {now} THEN '{DUE}' "
        f"WHEN {t}status_rank = {RANK[GREEN]} THEN '{GREEN}' WHEN {t}status_rank = {RANK[PENDING]} THEN '{PENDING}' "
        f"ELSE '{GREY}' END"
    )


def branches(now: str, table: str = "") -> dict[str, tuple[str, str]]:
    """Each status as (condition, order): each reads one range of one index (deals_queue,
    deals_due, or their `responsible` twins), so the queue is read in order, not sorted."""
    t = f"{table}." if table else ""
    return {
        UNREAD: (f"{t}status_rank = {RANK[UNREAD]}", f"{t}queue_key, {t}id"),
        DUE: (f"{t}due_key <= {now}", f"{t}due_key, {t}id"),
        GREEN: (f"{t}status_rank = {RANK[GREEN]} AND ({t}due_key IS NULL OR {t}due_key > {now})", f"{t}queue_key, {t}id"),
        PENDING: (f"{t}status_rank = {RANK[PENDING]} AND {t}queue_key > {now}", f"{t}queue_key, {t}id"),
        GREY: (f"{t}status_rank = {RANK[GREY]}", f"{t}queue_key, {t}id"),
    }


def queue_order_sql(now: str, table: str = "") -> str:
    """The whole queue's order as one ORDER BY (the `queue` view; `list` reads `branches`)."""
    t = f"{table}." if table else ""
    due = f"({t}status_rank <> {RANK[UNREAD]} AND {t}due_key <= {now})"
    return (f"CASE WHEN {due} THEN {RANK[DUE]} ELSE {t}status_rank END, "
            f"CASE WHEN {due} THEN {t}due_key ELSE {t}queue_key END, {t}id")


def parse(value: str) -> str:
    """A status named by a user; raises ValueError naming the ones there are."""
    if value not in STATUSES:
        raise ValueError(f"unknown status {value!r} (use {', '.join(STATUSES[:-1])} or {STATUSES[-1]})")
    return value
