"""Telegram Desktop's "Export chat history" JSON (`result.json`), read as a stream.

A single-chat export (`name`, `type`, `id`, `messages`) and a full-account export
(`personal_information`, `chats.list[…]`) are both read token by token (ijson), one
message at a time, so a multi-hundred-MB export never sits in memory whole.
"""

from __future__ import annotations

from typing import BinaryIO, Iterator

from chatcrm import times
from chatcrm.errors import InvalidInput
from chatcrm.events import Event, Invalid
from chatcrm.importers.roles import Roles

_MESSAGE_PREFIXES = ("messages.item", "chats.list.item.messages.item", "left_chats.list.item.messages.item")
_CHAT_PREFIXES = ("", "chats.list.item", "left_chats.list.item")
_MEDIA = {
    "voice_message": "voice message",
    "audio_file": "audio file",
    "video_file": "video",
    "video_message": "video message",
    "animation": "GIF",
    "sticker": "sticker",
}


def flatten(text) -> str:
    """Telegram's `text`: a string, or a list of strings and entity objects."""
    if isinstance(text, str):
        return text
    if isinstance(text, list):
        return "".join(part if isinstance(part, str) else str(part.get("text", "")) for part in text)
    return ""


def media_placeholder(message: dict) -> str | None:
    """A short text naming what a message carries besides text (photo, sticker, file…)."""
    media = message.get("media_type")
    if media in _MEDIA:
        label = _MEDIA[media]
        if media == "sticker" and message.get("sticker_emoji"):
            label += " " + message["sticker_emoji"]
        return f"[{label}]"
    if "photo" in message:
        return "[photo]"
    if "file" in message:
        name = message.get("file_name") or ""
        return f"[file {name}]".replace(" ]", "]") if name else "[file]"
    if "poll" in message and isinstance(message["poll"], dict):
        return f"[poll: {message['poll'].get('question', '')}]"
    if "location_information" in message:
        return "[location]"
    if "contact_information" in message:
        return "[contact]"
    return None


class _Chat:
    def __init__(self, account_id: str | None, options):
        self.meta: dict = {}
        self.account_id = account_id
        self.options = options
        self.roles: Roles | None = None
        self.key: str | None = None

    def start(self, source: str) -> None:
        chat_id = self.meta.get("id")
        kind = self.meta.get("type")
        name = self.meta.get("name")
        if self.options.chat:
            self.key = self.options.chat
        elif chat_id is not None:
            self.key = f"tg:{chat_id}"
        elif name:
            self.key = f"tg:{name}"
        else:
            raise InvalidInput(f"{source}: a Telegram chat with neither id nor name; name it with --chat")
        client_ids = {f"user{chat_id}"} if kind == "personal_chat" and chat_id is not None else None
        agent_ids = {f"user{self.account_id}"} if self.account_id else None
        self.roles = Roles(self.options.agents, client_ids=client_ids, agent_ids=agent_ids)


def read(stream: BinaryIO, source: str, options) -> Iterator[Event | Invalid]:
    import ijson
    from ijson.common import ObjectBuilder

    counter = _LineCounter(stream)
    account: dict = {}
    chat: _Chat | None = None
    builder = None
    message_prefix = None
    chats_seen = 0
    try:
        for prefix, event, value in ijson.parse(counter, buf_size=16384):
            if builder is not None:
                builder.event(event, value)
                if prefix == message_prefix and event == "end_map":
                    if chat.roles is None:
                        chat.start(source)
                    yield from _message(builder.value, chat, source, counter.line, options)
                    builder = None
                continue
            if event == "start_map" and prefix in _MESSAGE_PREFIXES:
                builder, message_prefix = ObjectBuilder(), prefix
                builder.event(event, value)
                continue
            if prefix.startswith("personal_information.") and event in ("number", "string"):
                account[prefix.split(".", 1)[1]] = value
                continue
            if event == "start_map" and prefix in _CHAT_PREFIXES:
                chat = _Chat(str(account["user_id"]) if "user_id" in account else None, options)
                continue
            if chat is not None and event in ("number", "string"):
                parent, _, field = prefix.rpartition(".")
                if field in ("id", "name", "type") and parent in _CHAT_PREFIXES:
                    chat.meta[field] = value
                continue
            if event == "end_map" and prefix in _CHAT_PREFIXES and chat is not None:
                if chat.roles is not None:
                    chats_seen += 1
                    if not chat.roles.known and chat.roles.authors:
                        raise chat.roles.unresolved(source, chat.key)
                chat = None
    except ijson.JSONError as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else "broken JSON"
        raise InvalidInput(f"{source}:{counter.line}: broken Telegram export near here ({reason})")


def _message(message: dict, chat: _Chat, source: str, line: int, options) -> Iterator[Event | Invalid]:
    if message.get("type", "message") != "message":
        return  # service messages: joined, calls, group created, pinned…
    if "date_unixtime" in message:
        try:
            at = times.from_epoch(int(message["date_unixtime"]))
        except (TypeError, ValueError, OverflowError, OSError):
            yield Invalid(source, line, f"message {message.get('id')}: unreadable date_unixtime")
            return
    else:
        try:
            at = times.parse(message.get("date"), options.tz)
        except ValueError as error:
            yield Invalid(source, line, f"message {message.get('id')}: {error}")
            return
    text = flatten(message.get("text"))
    placeholder = media_placeholder(message)
    if placeholder:
        text = f"{placeholder} {text}".strip()
    author = message.get("from") or message.get("actor") or "unknown"
    author_id = message.get("from_id")
    direction = chat.roles.direction(str(author), str(author_id) if author_id is not None else None)
    meta = chat.meta
    contact = meta.get("name") if meta.get("type") == "personal_chat" else None
    yield Event(
        "message",
        chat.key,
        at,
        direction=direction,
        author=str(author),
        text=text,
        id=str(message["id"]) if message.get("id") is not None else None,
        channel="telegram",
        contact=contact or (str(author) if direction == "client" else None),
        title=f"{meta['name']} (telegram)" if meta.get("name") else None,
        source=source,
        line=line,
    )


class _LineCounter:
    """Counts the lines the parser has read, to say where an export broke."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self.line = 1

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.line += data.count(b"\n")
        return data
