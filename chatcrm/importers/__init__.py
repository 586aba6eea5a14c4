"""Importers: pure functions from an export's bytes to chatcrm events.

Each format module offers `read(stream, source, options)`, which yields `Event`s, and
`Invalid` records for entries it cannot use; a file that is broken as a whole (cut off,
not the format at all) raises `InvalidInput` naming the file and the place. No database,
no clock: the service decides what to do with what they yield.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
from dataclasses import dataclass
from datetime import tzinfo
from typing import BinaryIO, Callable, Iterator

from chatcrm.errors import InvalidInput, UsageError
from chatcrm.events import Event, Invalid
from chatcrm.times import UTC

FORMATS = ("jsonl", "csv", "telegram", "whatsapp", "messenger", "telegram-bot", "whatsapp-cloud")
HEAD_BYTES = 1 << 16
BOM = b"\xef\xbb\xbf"


@dataclass
class ImportOptions:
    tz: tzinfo = UTC
    agents: tuple[str, ...] = ()
    chat: str | None = None  # the chat key, for formats whose file does not name one


Progress = Callable[[int], None]


def reader(fmt: str):
    """The `read` function of a format."""
    if fmt in ("jsonl", "csv"):
        from chatcrm.importers import native

        return native.read_jsonl if fmt == "jsonl" else native.read_csv
    if fmt == "telegram":
        from chatcrm.importers import telegram

        return telegram.read
    if fmt == "whatsapp":
        from chatcrm.importers import whatsapp

        return whatsapp.read
    if fmt == "messenger":
        from chatcrm.importers import messenger

        return messenger.read
    if fmt in ("telegram-bot", "whatsapp-cloud"):
        from chatcrm.importers import telegram_bot, whatsapp_cloud

        return telegram_bot.read if fmt == "telegram-bot" else whatsapp_cloud.read
    raise UsageError(f"unknown format {fmt!r} (use one of: {', '.join(FORMATS)})")


def source_name(path: str) -> str:
    return "<stdin>" if path == "-" else path


def source_size(path: str) -> int | None:
    if path == "-":
        return None
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def open_source(path: str, progress: Progress | None = None) -> tuple[bytes, BinaryIO]:
    """The first bytes of a file (or `-`, stdin) and a stream that reads it all from the start."""
    if path == "-":
        raw = sys.stdin.buffer
    else:
        if os.path.isdir(path):
            raise UsageError(f"{path} is a folder, not a file")
        try:
            raw = open(path, "rb")
        except OSError as error:
            raise UsageError(f"cannot read {path}: {error.strerror or error}")
    head = raw.read(HEAD_BYTES)
    return head, io.BufferedReader(_Replay(head, raw, progress), buffer_size=HEAD_BYTES)


class _Replay(io.RawIOBase):
    """Gives back the bytes already read for detection, then the rest of the stream."""

    def __init__(self, head: bytes, rest: BinaryIO, progress: Progress | None):
        self._head = memoryview(head)
        self._rest = rest
        self._progress = progress
        self._done = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if len(self._head):
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
        else:
            read1 = getattr(self._rest, "read1", self._rest.read)
            data = read1(len(buffer))
            n = len(data)
            buffer[:n] = data
        self._done += n
        if self._progress is not None and n:
            self._progress(self._done)
        return n

    def close(self) -> None:
        if self._rest is not sys.stdin.buffer:
            self._rest.close()
        super().close()


_WHATSAPP_HEAD = re.compile(
    r"^[\u200e\u200f\ufeff]*\[?\d{1,4}[./-]\d{1,2}[./-]\d{1,4},?\s+\d{1,2}[:.]\d{2}"
)


def detect(head: bytes, path: str) -> str:
    """The format of a file from its first bytes (and, failing that, its name)."""
    name = source_name(path)
    text = head[len(BOM):] if head.startswith(BOM) else head
    stripped = text.lstrip()
    if not stripped:
        raise InvalidInput(f"{name}: the file is empty; there is nothing to import")
    from chatcrm.importers.live import detect as detect_live

    live = detect_live(stripped)
    if live:
        return live
    decoded = stripped.decode("utf-8", errors="replace")
    first_line = decoded.split("\n", 1)[0].strip()
    if decoded.startswith("{"):
        try:
            record = json.loads(first_line)
        except ValueError:
            record = None
        if isinstance(record, dict) and ("chat" in record or "at" in record):
            return "jsonl"
        if isinstance(record, dict):
            return _json_document_kind(record.keys(), name)
        return _json_document_kind(re.findall(r'"([a-z_]+)"\s*:', decoded), name)
    if _WHATSAPP_HEAD.match(first_line):
        return "whatsapp"
    if decoded.startswith("["):
        raise InvalidInput(f"{name}:1: a JSON array is not an export chatcrm reads (use JSON Lines: one event per line)")
    columns = [c.strip().strip('"').lower() for c in first_line.split(",")]
    if "chat" in columns and "at" in columns:
        return "csv"
    extension = os.path.splitext(path)[1].lower()
    by_extension = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".txt": "whatsapp"}
    if extension in by_extension:
        return by_extension[extension]
    raise InvalidInput(
        f"{name}:1: cannot tell the format of this file; name it with --format ({', '.join(FORMATS)})"
    )


def _json_document_kind(keys, name: str) -> str:
    keys = set(keys)
    if "participants" in keys or "timestamp_ms" in keys or "sender_name" in keys:
        return "messenger"
    if keys & {"personal_information", "chats", "date_unixtime", "from_id"} or {"messages", "type"} <= keys:
        return "telegram"
    raise InvalidInput(
        f"{name}:1: a JSON document chatcrm does not recognise (expected JSON Lines events, "
        "a Telegram or a Messenger/Instagram export); name the format with --format"
    )


def read_source(path: str, fmt: str | None, options: ImportOptions, progress: Progress | None = None
                ) -> tuple[str, str, Iterator[Event | Invalid]]:
    """(source name, format, events) for one input file."""
    head, stream = open_source(path, progress)
    name = source_name(path)
    chosen = fmt or detect(head, path)
    read = reader(chosen)
    return name, chosen, _closing(read(stream, name, options), stream)


def _closing(events: Iterator, stream: BinaryIO) -> Iterator:
    try:
        yield from events
    finally:
        stream.close()
