"""What the live channels' readers share: telling their payloads apart, and reading
documents that come whole (a webhook body, a getUpdates response) or as JSON Lines."""

from __future__ import annotations

import json
import re
from typing import BinaryIO, Iterator

from chatcrm.errors import InvalidInput

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
    """(line, JSON value) of each document: the whole input when it is one JSON document
    (pretty-printed or not), else each non-blank line (JSON Lines). A broken or cut-off
    document is refused with its line."""
    data = stream.read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise InvalidInput(f"{source}:{line}: not UTF-8 text")
    try:
        whole_document = json.loads(text)
    except json.JSONDecodeError as whole:
        lines = text.split("\n")
        first = next((n for n, line in enumerate(lines) if line.strip()), None)
        try:
            json.loads(lines[first]) if first is not None else None
        except json.JSONDecodeError:
            raise InvalidInput(f"{source}:{whole.lineno}: broken {what} near here ({whole.msg})") from None
    else:
        yield text[: len(text) - len(text.lstrip())].count("\n") + 1, whole_document
        return
    parsed = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            parsed.append((number, json.loads(line)))
        except json.JSONDecodeError as error:
            raise InvalidInput(f"{source}:{number}: broken {what} on this line ({error.msg})") from None
    yield from parsed
