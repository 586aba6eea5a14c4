"""One exception family; each error carries the exit code of the README's table.

An error's message may hold times (`times.Moment`): the CLI shows them in the user's zone,
as the tables do; `str()` gives them as stored (UTC).
"""

from __future__ import annotations


class ChatcrmError(Exception):
    """An error the user can act on; the CLI prints it as one line on stderr."""

    exit_code = 1

    def __init__(self, *parts):
        super().__init__("".join(str(part) for part in parts))
        self.parts = parts

    def worded(self, show_time) -> str:
        """The message with its times shown by `show_time` (stored text → text)."""
        from chatcrm.times import Moment

        return "".join(show_time(part.value) if isinstance(part, Moment) else str(part) for part in self.parts)


def clipped(text: str, size: int = 60) -> str:
    """What a message quotes of something the user or a file gave: at most `size`
    characters (the CLI escapes what it prints)."""
    return text if len(text) <= size else text[:size] + "…"


PROBLEMS_FOUND = 6  # `chatcrm check` found problems (1 means the database cannot be used at all)


class UsageError(ChatcrmError):
    """The command was called wrongly (a bad option value)."""

    exit_code = 2


class NotFound(ChatcrmError):
    """No such deal, chat or activity."""

    exit_code = 3


class Refused(ChatcrmError):
    """A rule refuses the change (no open chat, a waiting client, an ambiguous target)."""

    exit_code = 4


class InvalidInput(ChatcrmError):
    """Input data that cannot be imported; the message names the file and line."""

    exit_code = 5

    record = None

    @classmethod
    def at(cls, record) -> "InvalidInput":
        """The error for one invalid input record (a chatcrm.events.Invalid)."""
        error = cls(str(record))
        error.record = record
        return error
