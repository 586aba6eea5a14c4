"""Idle chats close on a schedule (docs/rules.md, "Idle chats"; Bitrix24's automatic close).

An open chat is **idle** for a duration when its last message is an employee's, its client
is not waiting (R2: no client message after the last answer) and that last message is at
least that long ago: the client went quiet after an answer. A chat whose client waits is
never idle, however long ago they wrote. `close --idle` closes (and with `--complete`
completes) the idle chats.
"""

from __future__ import annotations


def cutoff(now_epoch: int, idle_seconds: int) -> int:
    """Chats whose last message is at or before this moment have been quiet long enough."""
    return now_epoch - idle_seconds


def is_idle(closed_at: str | None, waiting_since: str | None, last_direction: str | None,
            last_message_epoch: int | None, now_epoch: int, idle_seconds: int) -> bool:
    return (
        closed_at is None
        and waiting_since is None
        and last_direction == "agent"
        and last_message_epoch is not None
        and last_message_epoch <= cutoff(now_epoch, idle_seconds)
    )


# The same rule over the stored `chats` columns (`c`) and their last message (`m`), its
# first three terms those of the partial index `chats_idle` (store/schema.py, m005): the
# query reads only the open chats whose client is not waiting, oldest first.
IDLE_SQL = "c.closed_at IS NULL AND c.waiting_since IS NULL AND c.last_message_at <= ? AND m.direction = 'agent'"
