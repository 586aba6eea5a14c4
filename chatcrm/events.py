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
    # A live channel's message (chatcrm.importers.telegram_bot, whatsapp_cloud): when it
    # was last edited (the latest edit's text wins), and where a reply to its chat goes.
    edited_at: str | None = None
    live: "LiveChat | None" = None


# Only Event is made by the million; the others are few, and a class without slots is
# made faster at every start (slots make a second class).


@dataclass(frozen=True)
class LiveChat:
    """Where replies to a chat key go on a live channel: the channel (`telegram` or
    `whatsapp`), the client's id there (Telegram's chat id, WhatsApp's wa_id) and the
    account it came through (a Telegram Business connection id, a WhatsApp phone number
    id), or None."""

    channel: str
    recipient: str
    via: str | None = None


@dataclass
class DeliveryStatus:
    """A live channel's word on a message chatcrm sent (WhatsApp's `statuses`): its remote
    id, `sent`, `delivered`, `read` or `failed`, when, and the error given with a failure."""

    remote_id: str
    status: str
    at: str
    error: str | None = None
    source: str = ""
    line: int = 0


@dataclass
class Skipped:
    """A record of a live payload chatcrm does not use (a callback query, a member
    joining, a status of unknown kind): counted, never an error."""

    source: str
    line: int
    what: str


@dataclass
class Invalid:
    """An input record that cannot be imported, with where it is."""

    source: str
    line: int
    reason: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.reason}"
