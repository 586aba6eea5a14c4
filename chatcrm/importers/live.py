"""What the live channels' readers share: telling their payloads apart, and reading
documents that come whole (a webhook body, a getUpdates response) or as JSON Lines."""

from __future__ import annotations

import json
import re
from typing import BinaryIO, Iterator

import orjson

from chatcrm.errors import InvalidInput, UsageError
from chatcrm.importers.limits import MAX_DEPTH, MAX_VALUE, MAX_VALUES, mib, text_lines, unreadable_json

_BOM = b"\xef\xbb\xbf"

_TELEGRAM_FIRST_KEY = re.compile(rb'^\{\s*"(update_id|ok)"\s*:')
_WHATSAPP = re.compile(rb'"object"\s*:\s*"whatsapp_business_account"')


def detect(text: bytes) -> str | None:
    """`telegram-bot` or `whatsapp-cloud` for a live channel's payload (its first bytes,
    without a BOM or leading spaces), else None.

    A first line that is a JSON object is told by its keys (so a chatcrm event whose text
    quotes these names stays an event); a document spread over lines by its first key, or
    by WhatsApp's `"object"` anywhere in it."""
    if not text.startswith(b"{"):
        return None
    try:
        first = json.loads(text.split(b"\n", 1)[0])
    except (ValueError, RecursionError):
        first = None
    if isinstance(first, dict):
        if first.get("object") == "whatsapp_business_account":
            return "whatsapp-cloud"
        if "update_id" in first or ("ok" in first and ("result" in first or "description" in first)):
            return "telegram-bot"
        return None
    if _TELEGRAM_FIRST_KEY.match(text):
        return "telegram-bot"
    if _WHATSAPP.search(text):
        return "whatsapp-cloud"
    return None


def documents(stream: BinaryIO, source: str, what: str) -> Iterator[tuple[int, object]]:
    """(line, JSON value) of each document: each non-blank line (JSON Lines) when the first
    one is a JSON value by itself, else the whole input as one document spread over lines
    (a pretty-printed webhook body). A broken or cut-off document is refused with its line,
    and so is anything past the bounds (limits.py): a line or a document over 16 MiB (a
    getUpdates response of 100 long messages, \\u-escaped, is one line of about 10 MB),
    binary data, nesting deeper than 64 levels. At most one line, or one
    document, is held in memory."""
    lines = text_lines(stream, source, f"a {what}", limit=MAX_VALUE)
    for number, raw in lines:
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM):]
        if raw.strip():
            break
    else:
        return
    try:
        first = _parsed(raw, source, number, what)
    except orjson.JSONDecodeError:
        yield number, _document(number, raw, lines, source, what)
        return
    yield number, _shallow(first, source, number, what)
    for number, raw in lines:
        if raw.startswith(_BOM):  # where files were joined (`cat a.jsonl b.jsonl`)
            raw = raw[len(_BOM):]
        if not raw.strip():
            continue
        try:
            value = _parsed(raw, source, number, what)
        except orjson.JSONDecodeError as error:
            raise InvalidInput(f"{source}:{number}: broken {what} on this line ({_problem(raw, error)})") from None
        yield number, _shallow(value, source, number, what)


def _document(start: int, first: bytes, lines, source: str, what: str):
    """One document whose first line (`start`) is not JSON by itself, read to the end."""
    chunks, size = [first], len(first)
    for number, raw in lines:
        size += len(raw)
        if size > MAX_VALUE:
            raise InvalidInput(f"{source}:{start}: a document spread over lines larger than {mib(MAX_VALUE)}; "
                               f"not a {what}")
        chunks.append(raw)
    data = b"".join(chunks)
    del chunks
    try:
        value = _parsed(data, source, start, what)
    except orjson.JSONDecodeError as error:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as bad:
            line = start + data[: bad.start].count(b"\n")
            raise InvalidInput(f"{source}:{line}: not UTF-8 text") from None
        line = start + error.lineno - 1
        raise InvalidInput(f"{source}:{line}: broken {what} near here ({_problem(data, error)})") from None
    return _shallow(value, source, start, what)


def _problem(raw: bytes, error) -> str:
    """What is wrong with text that is not JSON, in words."""
    reason = error.msg
    if said := unreadable_json(raw, reason):
        return said
    if "depth" in reason:
        return f"nested deeper than {MAX_DEPTH} levels"
    if "infinity" in reason:
        return "a number too large to be an id or a time"
    return reason


def _shallow(value, source: str, line: int, what: str):
    """The value, refused when nested deeper than MAX_DEPTH (no payload nests a tenth of
    it); walked with one iterator per level, so in memory proportional to its depth."""
    kind = type(value)
    if kind is not dict and kind is not list:
        return value
    stack = [iter(value.values() if kind is dict else value)]
    while stack:
        for item in stack[-1]:
            kind = type(item)
            if kind is dict or kind is list:
                if len(stack) >= MAX_DEPTH:
                    raise InvalidInput(f"{source}:{line}: nested deeper than {MAX_DEPTH} levels; not a {what}")
                stack.append(iter(item.values() if kind is dict else item))
                break
        else:
            stack.pop()
    return value


def _parsed(raw: bytes, source: str, line: int, what: str):
    """orjson's value of a line or a document, refused beforehand when it holds more
    values than any payload does (each would be a Python object: memory stays bounded)."""
    if raw.count(b",") > MAX_VALUES:
        raise InvalidInput(f"{source}:{line}: more than {MAX_VALUES:,} values in one document; not a {what}")
    return orjson.loads(raw)


def refuse_options(options, source: str, what: str, *, agents: bool) -> None:
    """A live payload names its chats by the channel's own ids (where replies go), so
    `--chat` is refused rather than ignored; so is `--agent` where the payload itself says
    who wrote every message (`agents`: a WhatsApp notification holds only clients')."""
    if options.chat:
        raise UsageError(f"{source}: --chat does not apply to {what}: its chats are keyed by the channel's "
                         "own ids (tg:CHAT_ID, wa:WA_ID), where replies go; import it without --chat")
    if agents and options.agents:
        raise UsageError(f"{source}: --agent does not apply to {what}: every message in it is a client's "
                         "(replies are chatcrm's own); import it without --agent")
