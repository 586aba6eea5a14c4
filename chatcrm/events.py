"""The events importers produce and the store records (docs/rules.md, "The event format")."""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("message", "close", "complete", "assign", "remind")
DIRECTIONS = ("client", "agent")


@dataclass(slots=True)
class Event:
    """One fact: a message, a close, a completion, an assignment or a reminder of a chat key.

    `at` is stored time text (see chatcrm.times). `source`/`line` say where it was read,
    for error messages.
    """

    type: str
    chat: str
    at: str
    direction: str | None = None
    author: str = ""
    text: str = ""
    id: str | None = None
    channel: str | None = None
    contact: str | None = None
    deal: str | None = None
    title: str | None = None
    session: str | None = None  # a complete's, an assign's or a remind's target session (its opened-at)
    agent: str | None = None  # an assign event's employee
    # Ids the deal and the session this event opens had where it was exported; a new
    # database gives them again when they are free (`chatcrm export` round trips).
    deal_id: int | None = None
    chat_id: int | None = None
    activity_id: int | None = None
    source: str = ""
    line: int = 0
    due_at: str | None = None  # a reminder's follow-up time; None: the reminder clears it
    note: str = ""  # a reminder's note


@dataclass(slots=True)
class Invalid:
    """An input record that cannot be imported, with where it is."""

    source: str
    line: int
    reason: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.reason}"
