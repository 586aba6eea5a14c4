"""Which stored message an imported one is (docs/rules.md, "Message identity").

A message with an id is known by its chat key and that id. One without (WhatsApp exports
have none) is known by its chat key, time, author and text, and its occurrence number among
identical messages of the same file: a client who sends "ok" twice in a minute keeps both,
and importing the file again adds nothing. The direction is not part of it: importing an
export again with the employees named correctly changes the direction of the messages it
concerns instead of adding them again.
"""

from __future__ import annotations

try:  # hashlib's BLAKE2 is this module; importing it alone skips loading OpenSSL (~3 ms a command)
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - a Python built without it
    from hashlib import blake2b


def uid_of_id(message_id: str) -> str:
    return "id:" + message_id


def content_prefix(at: str, author: str, text: str) -> str:
    """The uid of an id-less message up to its occurrence number (`h:DIGEST#`)."""
    digest = blake2b(
        "\x1f".join((at, author, text)).encode("utf-8", "surrogatepass"), digest_size=12
    ).hexdigest()
    return "h:" + digest + "#"


def content_uid(prefix: str, occurrence: int) -> str:
    return prefix + str(occurrence)


class Occurrences:
    """Counts identical id-less messages within one file (`start_file` for the next one)."""

    def __init__(self, stored_count=None):
        self._counts: dict[tuple[str, str], int] = {}
        self._stored_count = stored_count  # (chat key, prefix) -> how many are stored, or None

    def start_file(self) -> None:
        self._counts = {}

    def next(self, chat_key: str, prefix: str) -> int:
        slot = (chat_key, prefix)
        count = self._counts.get(slot)
        if count is None:
            count = self._stored_count(chat_key, prefix) if self._stored_count is not None else 0
        count += 1
        self._counts[slot] = count
        return count
