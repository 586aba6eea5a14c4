"""What `chatcrm list` shows: the queue, the deals in queue order with each group's
count, and the employees a queue may be narrowed to (docs/rules.md, R9).

Read-only and kept apart from `chatcrm.service`, so that `list` loads only what it uses.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatcrm import times
from chatcrm.errors import NotFound, UsageError
from chatcrm.rules import employees as employee_rule
from chatcrm.rules import sla as sla_rule
from chatcrm.rules import statuses
from chatcrm.store import Store, queries


MOST_DEALS = 1 << 62  # more deals than any database holds, and an integer SQLite takes


def checked_limit(limit: int | None) -> int | None:
    """`--limit N`: 0 or more; one larger than any database holds shows them all (SQLite
    takes no integer past 2^63)."""
    if limit is None:
        return None
    if limit < 0:
        raise UsageError("--limit must be 0 or more")
    return min(limit, MOST_DEALS)


def employee(store: Store, agent: str) -> str:
    """`agent` as an employee of the database, else NotFound naming the likeliest ones."""
    agent = agent.strip()
    if not queries.is_employee(store, agent):
        raise NotFound(f"no employee {agent!r}{_known_employees(store, agent)}")
    return agent


@dataclass
class Queue:
    rows: list[dict]
    counts: dict[str, int]
    agent: str | None = None
    sla_seconds: int | None = None
    overdue: int = 0  # unread deals (of `agent`) waiting longer than the SLA, shown or not

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def any_overdue_listed(self) -> bool:
        """Whether a deal of `rows` has a client waiting longer than the SLA (rules/sla.py)."""
        return any(row.get("overdue") for row in self.rows)


def queue(
    store: Store,
    *,
    now: str,
    status: str | None = None,
    limit: int | None = None,
    agent: str | None = None,
    sla_seconds: int | None = None,
) -> Queue:
    """R9: the deals in queue order, with each group's count.

    `agent` keeps the deals that employee is responsible for; `sla_seconds` marks the
    deals whose client has waited longer than that as overdue (rules/sla.py).
    """
    if status is not None:
        try:
            statuses.parse(status)
        except ValueError as error:
            raise UsageError(str(error))
    limit = checked_limit(limit)
    if agent is not None:
        agent = employee(store, agent)
    now_epoch = times.epoch(now)
    rows = queries.queue(store, now_epoch, status, limit, agent)
    for row in rows:
        since = row["waiting_since"]
        since_epoch = times.epoch(since) if since else None
        row["waiting_seconds"] = max(0, now_epoch - since_epoch) if since else None
        row["overdue"] = None if sla_seconds is None else (
            since_epoch is not None and sla_rule.overdue(since_epoch, now_epoch, sla_seconds)
        )
    overdue = queries.count_overdue(store, now_epoch, sla_seconds, agent) if sla_seconds is not None else 0
    return Queue(rows, queries.queue_counts(store, now_epoch, agent), agent, sla_seconds, overdue)


def _known_employees(store: Store, name: str) -> str:
    import difflib

    names = queries.employees(store)
    if not names:
        return " (nobody has replied or been assigned yet)"
    close = [n for n in names if employee_rule.same(n, name)] or difflib.get_close_matches(name, names, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    shown = ", ".join(names[:10]) + (", …" if len(names) > 10 else "")
    return f" (employees: {shown})"
