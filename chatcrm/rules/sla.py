"""Waiting longer than the SLA (docs/rules.md, "SLA").

A client has waited longer than the SLA when the time since they began to wait is
strictly greater than it: waiting exactly as long as the SLA is within it.
"""

from __future__ import annotations


def cutoff(now_epoch: int, sla_seconds: int) -> int:
    """Clients waiting since before this moment (strictly) are over the SLA."""
    return now_epoch - sla_seconds


def overdue(waiting_since_epoch: int, now_epoch: int, sla_seconds: int) -> bool:
    return waiting_since_epoch < cutoff(now_epoch, sla_seconds)


# The same rule over the queue's stored columns: an unread deal's queue key is its
# waiting-since (rules/statuses.py), compared with `cutoff`.
OVERDUE_SQL = "status_rank = 0 AND queue_key < ?"
