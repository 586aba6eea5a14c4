"""chatcrm's own event format (docs/rules.md, "The event format"): JSON Lines, or CSV with the same column names."""

from __future__ import annotations

import csv
from typing import BinaryIO, Iterator

import orjson

from chatcrm import times
from chatcrm.errors import InvalidInput
from chatcrm.events import DIRECTIONS, KINDS, Event, Invalid, LiveChat
from chatcrm.importers.limits import MAX_LINE, MAX_VALUE, excerpt, mib, text_lines, unreadable_json
from chatcrm.rules.delivery import SENT_STATE
from chatcrm.rules.cells import restored

FIELDS = (
    "type", "id", "chat", "deal", "deal_id", "chat_id", "activity_id", "channel", "contact", "title",
    "from", "author", "text", "session", "agent", "due", "note", "clear", "at", "edited_at", "recipient", "via",
)  # fmt: skip
_LIVE_FIELDS = ("edited_at", "recipient", "via")  # what live channels add: read by the checked path
_ID_HINTS = ("deal_id", "chat_id", "activity_id")
_BOM = b"\xef\xbb\xbf"
_OPTIONAL_STRINGS = ("channel", "contact", "deal", "title")


def read_jsonl(stream: BinaryIO, source: str, options) -> Iterator[Event | Invalid]:
    loads, tz = orjson.loads, options.tz
    for number, raw in text_lines(stream, source, "a JSON Lines file"):
        try:
            record = loads(raw)
        except orjson.JSONDecodeError:
            # Not JSON as it is: a blank line, or one that starts with a byte order mark
            # (also where files were joined), is read past; anything else is reported.
            if raw.startswith(_BOM):
                raw = raw[len(_BOM):]
            if not raw.strip():
                continue
            try:
                record = loads(raw)
            except orjson.JSONDecodeError as error:
                yield Invalid(source, number, _json_problem(raw, error))
                continue
        yield event_from_record(record, source, number, tz)


def _json_problem(raw: bytes, error) -> str:
    """What is wrong with a line that is not JSON, in words."""
    reason = getattr(error, "msg", None) or str(error)
    column = getattr(error, "colno", None)
    return unreadable_json(raw, reason) or f"bad JSON: {reason}" + (f" at column {column}" if column else "")


def read_csv(stream: BinaryIO, source: str, options) -> Iterator[Event | Invalid]:
    """Rows of chatcrm's columns. A quoted cell may span lines (`export` writes a text with
    newlines so); a record that reaches the end of the file inside quotes is refused naming
    the line where it began, as is a record over MAX_VALUE and a header naming a column twice."""
    csv.field_size_limit(MAX_LINE)
    lines = _Lines(text_lines(stream, source, "a CSV file"), source)
    rows = csv.reader(lines, strict=True)
    try:
        header = next(rows, None)
        if header is None:
            raise InvalidInput(f"{source}:1: the CSV file has no header")
        header = [h.strip() for h in header]
        unknown = [h for h in header if h not in FIELDS]
        missing = [h for h in ("chat", "at") if h not in header]
        twice = sorted({h for h in header if header.count(h) > 1 and h in FIELDS}, key=header.index)
        if unknown or missing or twice:
            problems = []
            if missing:
                problems.append("missing column " + ", ".join(missing))
            if unknown:
                shown = ", ".join(repr(excerpt(h)) for h in unknown[:5])
                problems.append("unknown column " + shown + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""))
            if twice:
                problems.append("column " + ", ".join(twice) + " named twice")
            raise InvalidInput(
                f"{source}:1: wrong CSV header ({'; '.join(problems)}); columns are: {', '.join(FIELDS)}"
            )
        while True:
            lines.record_starts()
            row = next(rows, None)
            if row is None:
                break
            number = rows.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                yield Invalid(source, number, f"{len(row)} cells where the header has {len(header)}")
                continue
            # A cell chatcrm wrote with a quote in front (no formula) reads back as it was.
            record = {name: restored(cell) for name, cell in zip(header, row) if cell != ""}
            yield event_from_record(record, source, number, options.tz)
    except csv.Error as error:
        if "unexpected end of data" in str(error):
            raise InvalidInput(f"{source}:{lines.start}: a quoted cell that is never closed: the record that "
                               "begins on this line runs to the end of the file") from None
        raise InvalidInput(f"{source}:{rows.line_num}: bad CSV: {excerpt(str(error), 80)}") from None


class _Lines:
    """The decoded lines of a CSV file for csv.reader, minding where each record begins
    and that one record (its quoted cells may span lines) stays within MAX_VALUE."""

    def __init__(self, lines, source: str):
        self._lines = lines
        self._source = source
        self.number = 0  # the last line read
        self.start = 1  # the line the record being read begins on
        self._size = 0

    def record_starts(self) -> None:
        self.start = self.number + 1
        self._size = 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        number, raw = next(self._lines)
        self.number = number
        self._size += len(raw)
        if self._size > MAX_VALUE:
            raise InvalidInput(f"{self._source}:{self.start}: a CSV record larger than {mib(MAX_VALUE)} "
                               "(a quoted cell left open?)")
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM):]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidInput(f"{self._source}:{number}: not UTF-8 text (byte {error.start + 1})") from None


def _string(record: dict, name: str, default=None, *, numbers: bool = False):
    value = record.get(name)
    if value is None:
        return default
    if isinstance(value, str):
        return value
    if numbers and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"{name!r} must be a string, not {type(value).__name__}")


def _positive(record: dict, name: str) -> int | None:
    value = record[name]
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0):
        return value
    raise ValueError(f"{name!r} must be a positive whole number, not {value!r}")


def event_from_record(record, source: str, line: int, tz) -> Event | Invalid:
    """A native event from one decoded record (a JSON object or a CSV row)."""
    if type(record) is dict:
        event = _plain_message(record, source, line, tz)
        if event is not None:
            return event
    return _checked_event(record, source, line, tz)


def _plain_message(record: dict, source: str, line: int, tz) -> Event | None:
    """The common case, read straight: a message whose fields are all strings and whose
    time is stored text already. Anything else (or any doubt) returns None and goes
    through `_checked_event`; a test checks that the two agree."""
    for value in record.values():
        if type(value) is not str:
            return None
    get = record.get
    if get("type", "message") != "message" or "deal_id" in record or "chat_id" in record or "activity_id" in record:
        return None
    if any(name in record for name in _LIVE_FIELDS):
        return None
    chat, direction, deal = get("chat"), get("from"), get("deal")
    if direction not in DIRECTIONS or chat is None or not chat.strip() or (deal is not None and not deal.strip()):
        return None
    at = times.stored_text(get("at"))
    if at is None:
        return None
    contact = get("contact")
    author = get("author") or ((contact or "client") if direction == "client" else "agent")
    # Positional, in Event's field order: type, chat, at, direction, author, text, id,
    # channel, contact, deal, title, session, agent, deal_id, chat_id, activity_id.
    return Event(
        "message", chat, at, direction, author, get("text", ""), get("id"), get("channel"), contact, deal,
        get("title"), None, None, None, None, None, source, line,
    )  # fmt: skip


def _checked_event(record, source: str, line: int, tz) -> Event | Invalid:
    """Any record, every field checked: the event, or what is wrong with it."""
    if not isinstance(record, dict):
        return Invalid(source, line, f"expected a JSON object, found {type(record).__name__}")
    try:
        kind = _string(record, "type", "message") or "message"
        if kind not in KINDS:
            return Invalid(source, line, f"unknown type {kind!r} (use message, close, complete, assign or remind)")
        chat = _string(record, "chat", numbers=True)
        if not chat or not chat.strip():
            return Invalid(source, line, "missing 'chat'")
        if record.get("at") in (None, ""):
            return Invalid(source, line, "missing 'at'")
        try:
            at = times.parse(record["at"], tz)
        except ValueError as error:
            return Invalid(source, line, f"'at': {error}")
        extra = {name: _string(record, name) for name in _OPTIONAL_STRINGS}
        extra.update((name, _positive(record, name)) for name in _ID_HINTS if name in record)
        if extra["deal"] is not None and not extra["deal"].strip():
            return Invalid(source, line, "'deal' is empty")
        if kind != "message":
            session = agent = None
            if kind != "close" and record.get("session") not in (None, ""):
                try:
                    session = times.parse(record["session"], tz)
                except ValueError as error:
                    return Invalid(source, line, f"'session': {error}")
            if kind == "assign":
                agent = _string(record, "agent")
                if agent is None or not agent.strip():
                    return Invalid(source, line, "missing 'agent' (the employee the chat is assigned to)")
            due_at, note = None, ""
            if kind == "remind":
                clear = record.get("clear") in (True, "true")
                if record.get("clear") not in (None, "", True, False, "true", "false"):
                    return Invalid(source, line, "'clear' must be true or false")
                has_due = record.get("due") not in (None, "")
                if clear == has_due:
                    return Invalid(source, line, "a remind event needs a 'due' time, or 'clear': true")
                if has_due:
                    try:
                        due_at = times.parse(record["due"], tz)
                    except ValueError as error:
                        return Invalid(source, line, f"'due': {error}")
                note = _string(record, "note", "") or ""
            return Event(kind, chat, at, source=source, line=line, session=session, agent=agent, due_at=due_at,
                         note=note, **extra)
        direction = _string(record, "from")
        if direction is None:
            return Invalid(source, line, "missing 'from' (client or agent)")
        if direction not in DIRECTIONS:
            return Invalid(source, line, f"unknown 'from' {direction!r} (use client or agent)")
        default_author = (extra["contact"] or "client") if direction == "client" else "agent"
        message_id = _string(record, "id", numbers=True)
        edited_at = live = None
        if record.get("edited_at") not in (None, ""):
            if not message_id:
                return Invalid(source, line, "an edit ('edited_at') names the message it edits by its 'id'")
            try:
                edited_at = times.parse(record["edited_at"], tz)
            except ValueError as error:
                return Invalid(source, line, f"'edited_at': {error}")
        recipient = _string(record, "recipient", numbers=True)
        if recipient:
            if extra["channel"] not in SENT_STATE:
                return Invalid(source, line, f"'recipient' goes with a live channel ({', '.join(SENT_STATE)}) "
                                             "as 'channel'")
            live = LiveChat(extra["channel"], recipient, _string(record, "via", numbers=True) or None)
        elif record.get("via") not in (None, ""):
            return Invalid(source, line, "'via' goes with a 'recipient'")
        return Event(
            "message",
            chat,
            at,
            direction=direction,
            author=_string(record, "author", default_author) or default_author,
            text=_string(record, "text", ""),
            id=message_id,
            source=source,
            line=line,
            edited_at=edited_at,
            live=live,
            **extra,
        )
    except ValueError as error:
        return Invalid(source, line, str(error))
