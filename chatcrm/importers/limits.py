"""The bounds every importer keeps, whatever it is given, and how errors quote input.

A file is untrusted: it may be nested without end, endless (`/dev/zero`), one huge line,
or binary. Each importer refuses such input with `FILE:LINE: what is wrong`, holding at
most about one line or one record in memory, and quotes at most a short excerpt of it.
"""

from __future__ import annotations

from typing import BinaryIO, Iterator

from chatcrm.errors import InvalidInput, clipped

MAX_LINE = 8 << 20  # bytes in one line of a text format (JSON Lines, CSV, WhatsApp)
MAX_TEXT = 1 << 20  # characters in one message (a WhatsApp message spans lines)
MAX_DEPTH = 64  # nesting of JSON arrays and objects
MAX_VALUE = 16 << 20  # bytes of one live payload (one line, or spread over lines), or one CSV record
MAX_VALUES = 1 << 20  # commas (values) in one live payload document: 100 updates of 4,096 characters stay below
MAX_JSON_FILE = 32 << 20  # bytes of one Messenger/Instagram file (read whole; Meta writes a few MB)
MAX_JSON_VALUES = 1 << 18  # commas (values) in one such file: Meta's 10,000 messages a file stay far below
MAX_SPOOL = 256 << 20  # bytes of a WhatsApp export read from a pipe (kept for two passes)
MAX_INVALID = 1000  # invalid records in one file before the file is refused
EXCERPT = 40  # characters of the input an error message quotes


def excerpt(text: str, size: int = EXCERPT) -> str:
    """At most `size` characters of untrusted text (errors.clipped), control characters escaped."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}"
                   for c in clipped(text, size))


def mib(size: int) -> str:
    return f"{size >> 20} MiB"


def text_lines(stream: BinaryIO, source: str, what: str, limit: int = MAX_LINE) -> Iterator[tuple[int, bytes]]:
    """(number, bytes) of each line, refusing a line over `limit` and binary data."""
    readline = stream.readline
    number = 0
    while True:
        raw = readline(limit + 1)
        if not raw:
            return
        number += 1
        if len(raw) > limit and not (len(raw) == limit + 1 and raw.endswith(b"\n")):
            raise InvalidInput(f"{source}:{number}: a line longer than {mib(limit)}; not {what}")
        if b"\0" in raw:
            raise InvalidInput(f"{source}:{number}: binary data (a NUL byte); not {what}")
        yield number, raw


def unreadable_json(raw: bytes, reason: str) -> str | None:
    """What every JSON reader says first of text the parser refused for `reason`: that it
    is not UTF-8 (naming the byte), or that a string escapes half a UTF-16 surrogate pair;
    None when it is neither, for the reader to word the rest."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"not UTF-8 text (byte {bad.start + 1})"
    if "surrogate" in reason:
        return "a string holds an unpaired UTF-16 surrogate escape (\\ud800-\\udfff)"
    return None
