"""Facebook Messenger and Instagram "Download your information" JSON (`message_N.json`).

Meta splits a conversation into files of at most a few thousand messages, newest first,
and writes its text as mojibake (UTF-8 bytes escaped one by one as `\\u00XX`); both are
undone here. The thread's `title` of a one-to-one chat is the other person's name.
"""

from __future__ import annotations

import json
import os
from typing import BinaryIO, Iterator

from chatcrm import times
from chatcrm.errors import InvalidInput
from chatcrm.events import Event, Invalid
from chatcrm.importers.roles import Roles, normalise, unresolved

_MEDIA = (("photos", "photo"), ("videos", "video"), ("audio_files", "audio"), ("gifs", "GIF"),
          ("files", "file"), ("sticker", "sticker"), ("share", "link"))
_NOT_MESSAGES = {"Subscribe", "Unsubscribe", "Call"}


def unmojibake(value):
    """Meta's latin-1 mojibake back to text, recursively; text that is not mojibake stays."""
    if isinstance(value, str):
        try:
            return value.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return value
    if isinstance(value, list):
        return [unmojibake(v) for v in value]
    if isinstance(value, dict):
        return {k: unmojibake(v) for k, v in value.items()}
    return value


def read(stream: BinaryIO, source: str, options, channel: str = "messenger") -> Iterator[Event | Invalid]:
    raw = stream.read()
    try:
        document = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        raise InvalidInput(f"{source}: not UTF-8 text (byte {error.start + 1})")
    except json.JSONDecodeError as error:
        raise InvalidInput(f"{source}:{error.lineno}: broken Messenger export ({error.msg} at column {error.colno})")
    if not isinstance(document, dict) or not isinstance(document.get("messages"), list):
        raise InvalidInput(f"{source}:1: not a Messenger/Instagram export (no 'messages' list)")
    document = unmojibake(document)
    title = document.get("title") or ""
    key = options.chat or "fb:" + (document.get("thread_path") or title or _stem(source))
    if document.get("joinable_mode") or "instagram" in json.dumps(document.get("image", "")):
        channel = "instagram"
    participants = [p.get("name", "") for p in document.get("participants", []) if isinstance(p, dict)]
    authors = {m.get("sender_name") for m in document["messages"] if isinstance(m, dict)} - {None}
    roles = _roles(participants, authors, title, options)
    if roles is None:
        raise unresolved(source, key, authors | set(participants))
    total = len(document["messages"])
    # newest first in the file: read oldest first, and name each by its place in the file
    for index in range(total - 1, -1, -1):
        message = document["messages"][index]
        position = total - index  # its place in time order
        if not isinstance(message, dict) or message.get("type") in _NOT_MESSAGES:
            continue
        if "users" in message and str(message.get("content", "")).endswith(("joined the group.", "left the group.")):
            continue
        try:
            at = times.from_epoch(int(message["timestamp_ms"]) // 1000)
        except (KeyError, TypeError, ValueError, OverflowError, OSError):
            yield Invalid(source, position, f"message {position}: missing or unreadable timestamp_ms")
            continue
        author = str(message.get("sender_name") or "unknown")
        direction = roles.direction(author)
        yield Event(
            "message", key, at, direction=direction, author=author, text=_text(message),
            channel=channel, contact=title if len(participants) == 2 and title else (author if direction == "client" else None),
            title=f"{title} ({channel})" if title else None, source=source, line=position,
        )


def _text(message: dict) -> str:
    text = message.get("content") or ""
    media = [label for field, label in _MEDIA if message.get(field)]
    placeholder = " ".join(f"[{label}]" for label in media)
    if placeholder and not text:
        return placeholder
    if placeholder and "share" not in message:
        return f"{placeholder} {text}"
    return text or "[no text]"


def _roles(participants: list[str], authors: set[str], title: str, options) -> Roles | None:
    if options.agents:
        return Roles(options.agents)
    if len(participants) == 2 and title:
        others = [p for p in participants if normalise(p) != normalise(title)]
        if len(others) == 1:
            return Roles(tuple(others))
    return None


def _stem(source: str) -> str:
    return os.path.splitext(os.path.basename(source))[0]
