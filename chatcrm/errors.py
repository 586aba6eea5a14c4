"""One exception family; each error carries the exit code SPEC §3 gives it."""


class ChatcrmError(Exception):
    """An error the user can act on; the CLI prints it as one line on stderr."""

    exit_code = 1


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
