"""What the events say of a chat's client: the earliest naming wins (docs/rules.md, "Names").

Several events (and several imports, in any order) may name a chat key's channel, contact
or title. The one named by the earliest event wins; at one instant the smallest value.
Arrival order therefore never changes the name a deal shows.
"""

from __future__ import annotations

_CHANNEL_PREFIXES = {"tg": "telegram", "wa": "whatsapp", "fb": "messenger", "ig": "instagram", "web": "webchat"}


def wins(at: str, value: str, held_at: str | None, held: str | None) -> bool:
    """Whether a naming (`value` at time `at`) replaces the one held so far."""
    return held_at is None or (at, value) < (held_at, held)


def earliest(namings):
    """The winning value of (at, value) pairs, or None when there are none."""
    best = None
    for naming in namings:
        if best is None or wins(naming[0], naming[1], best[0], best[1]):
            best = naming
    return best[1] if best is not None else None


def wins_sql(column: str, *, table: str, new: str = "excluded") -> str:
    """`wins` as SQL, for an upsert of `column` (with its `column_at`): the new naming
    replaces the stored one when it is earlier (ties: the smaller value)."""
    at = f"{column}_at"
    return (
        f"{new}.{at} IS NOT NULL AND ({table}.{at} IS NULL "
        f"OR ({new}.{at}, {new}.{column}) < ({table}.{at}, {table}.{column}))"
    )


def channel_from_key(chat_key: str) -> str:
    """An event that names no channel: the chat key's prefix (`tg:…` → telegram), else `chat`."""
    prefix, sep, _ = chat_key.partition(":")
    if not sep:
        return "chat"
    return _CHANNEL_PREFIXES.get(prefix.lower(), prefix.lower() or "chat")


def deal_title(title: str | None, contact: str | None, channel: str | None, deal_key: str) -> str:
    """A deal's title: the one its events name, else its contact and channel, else its key."""
    if title:
        return title
    if contact:
        return f"{contact} ({channel})" if channel else contact
    return deal_key
