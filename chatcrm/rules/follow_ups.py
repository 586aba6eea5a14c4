"""Follow-ups on activities (rule R11 in docs/rules.md).

A follow-up (`chatcrm remind`) is a fact like a message: a reminder, recorded at its own
time, sets the follow-up of one activity to a moment (or, a clear, removes it). The
reminder with the latest time wins, whatever the order in which reminders arrive; at one
instant the one with the greatest (due time, note) — so a set wins over a clear. A
reminder on an activity completed by then changes nothing, and completing the activity
ends its follow-up. A follow-up is due from its very moment on: at `due_at` itself.
"""

from __future__ import annotations


def instant_order(due_at: str | None, note: str | None) -> tuple[str, str]:
    """Where a reminder goes among reminders of the same instant: the last one wins."""
    return (due_at or "", note or "")


def is_due(due_at: str, now: str) -> bool:
    """A follow-up's time has come at `due_at` itself (stored times compare as text)."""
    return due_at <= now
