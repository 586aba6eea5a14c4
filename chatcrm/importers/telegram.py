"""Telegram Desktop's "Export chat history" JSON (`result.json`), read as a stream.

A single-chat export (`name`, `type`, `id`, `messages`) and a full-account export
(`personal_information`, `chats.list[…]`) are both read token by token (ijson), one
message at a time, so a multi-hundred-MB export never sits in memory whole.
"""

from __future__ import annotations

import numbers
from typing import BinaryIO, Iterator

from chatcrm import times
from chatcrm.errors import InvalidInput
from chatcrm.events import Event, Invalid
from chatcrm.importers.limits import MAX_DEPTH, MAX_LINE, excerpt, mib
from chatcrm.importers.roles import Roles, clean_name

MAX_VALUE = 2 * MAX_LINE  # bytes of one JSON value or one message

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
        return "".join(part if isinstance(part, str) else _entity_text(part) if isinstance(part, dict) else ""
                       for part in text[:10000])
    return ""


def _entity_text(part: dict) -> str:
    """A formatted entity's text exactly as written: its spaces and line breaks are the
    message's (`{"type": "bold", "text": "Importante: "}` + `mi pedido`)."""
    text = part.get("text")
    return text if isinstance(text, str) else _s(text)


def _s(value) -> str:
    """A scalar as text (ijson gives numbers as Decimal); anything else as nothing."""
    if isinstance(value, bool) or not isinstance(value, (str, numbers.Number)):
        return ""
    return " ".join(str(value).split())


def _joined(*parts, sep: str = ", ") -> str:
    return sep.join(p for p in (_s(x) for x in parts) if p)


def _items(values, field: str = "text") -> str:
    if not isinstance(values, list):
        return ""
    return " / ".join(t for t in (flatten(v.get(field)) if isinstance(v, dict) else "" for v in values[:50]) if t)


def media_placeholder(message: dict) -> str | None:
    """A short text naming what a message was besides text (photo, venue, poll, game…)."""
    media = message.get("media_type")
    if isinstance(media, str) and media in _MEDIA:
        label = _MEDIA[media]
        if media == "sticker" and message.get("sticker_emoji"):
            label += " " + _s(message["sticker_emoji"])
        if media in ("audio_file", "video_file") and message.get("file_name"):
            label += " " + _s(message["file_name"])
        return f"[{label}]"
    if "photo" in message:
        return "[photo]"
    poll = message.get("poll")
    if isinstance(poll, dict):
        options = _items(poll.get("answers"))
        return f"[poll: {flatten(poll.get('question'))}" + (f" — {options}]" if options else "]")
    todo = message.get("todo_list")
    if isinstance(todo, dict):
        items = _items(todo.get("items"))
        return f"[to-do list: {flatten(todo.get('title'))}" + (f" — {items}]" if items else "]")
    if message.get("place_name") or message.get("address"):
        return f"[venue: {_joined(message.get('place_name'), message.get('address'))}]"
    contact = message.get("contact_information")
    if isinstance(contact, dict):
        name = _joined(contact.get("first_name"), contact.get("last_name"), sep=" ")
        return f"[contact: {_joined(name, contact.get('phone_number'))}]"
    if message.get("game_title"):
        return f"[game: {_joined(message.get('game_title'), message.get('game_description'), sep=' — ')}]"
    invoice = message.get("invoice_information")
    if isinstance(invoice, dict):
        amount = _joined(invoice.get("amount"), invoice.get("currency"), sep=" ")
        return f"[invoice: {_joined(invoice.get('title'), invoice.get('description'), amount, sep=' — ')}]"
    giveaway = message.get("giveaway_information")
    if isinstance(giveaway, dict):
        what = _joined(_s(giveaway.get("quantity")) and f"{_s(giveaway.get('quantity'))} prize(s)",
                       _s(giveaway.get("months")) and f"{_s(giveaway.get('months'))} month(s)",
                       _s(giveaway.get("until_date")) and f"until {_s(giveaway.get('until_date'))}")
        return f"[giveaway: {what}]" if what else "[giveaway]"
    if isinstance(message.get("giveaway_results"), dict):
        return "[giveaway results]"
    dice = message.get("dice")
    if isinstance(dice, dict) or message.get("dice_emoji"):
        dice = dice if isinstance(dice, dict) else {"emoji": message.get("dice_emoji"), "value": message.get("dice_value")}
        return f"[dice {_joined(dice.get('emoji'), dice.get('value'), sep=' ')}]".replace(" ]", "]")
    location = message.get("location_information")
    if isinstance(location, dict):
        live = " (live)" if message.get("live_location_period_seconds") else ""
        where = _joined(location.get("latitude"), location.get("longitude"))
        return f"[location{live}: {where}]" if where else f"[location{live}]"
    if "file" in message:
        name = _s(message.get("file_name"))
        return f"[file {name}]" if name else "[file]"
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

    counter = _LineCounter(stream, source)
    account: dict = {}
    chat: _Chat | None = None
    builder = None
    stack: list[tuple[str, bool]] = []  # the open containers: (name, is a map); "item" in arrays
    message_depth = 0
    key = None
    try:
        for event, value in ijson.basic_parse(counter, buf_size=16384):
            counter.token_done()
            if builder is not None:
                builder.event(event, value)
            if event == "map_key":
                key = value
                continue
            if event == "start_map" or event == "start_array":
                name = "" if not stack else (key if stack[-1][1] else "item")
                stack.append((name, event == "start_map"))
                key = None
                if len(stack) > MAX_DEPTH:
                    raise InvalidInput(f"{source}:{counter.line}: nested deeper than {MAX_DEPTH} levels; not a Telegram export")
                if builder is None and event == "start_map":
                    here = ".".join(n for n, _ in stack[1:])
                    if here in _MESSAGE_PREFIXES:
                        builder = ObjectBuilder()
                        builder.event(event, value)
                        message_depth = len(stack)
                        counter.message_started()
                    elif here in _CHAT_PREFIXES:
                        chat = _Chat(str(account["user_id"]) if "user_id" in account else None, options)
                continue
            if event == "end_map" or event == "end_array":
                depth = len(stack)
                here = ".".join(n for n, _ in stack[1:])
                stack.pop()
                key = None
                if builder is not None:
                    if depth == message_depth:
                        if chat is None:
                            chat = _Chat(None, options)
                        if chat.roles is None:
                            if message_depth == 3 and "type" not in chat.meta:
                                chat.meta = {**_top_level(stream), **chat.meta}  # keys sorted: `type` after `messages`
                            chat.start(source)
                        yield from _message(builder.value, chat, source, counter.line, options)
                        builder = None
                        counter.message_done()
                    continue
                if event == "end_map" and here in _CHAT_PREFIXES and chat is not None:
                    if chat.roles is not None and not chat.roles.known and chat.roles.authors:
                        raise chat.roles.unresolved(source, chat.key)
                    chat = None
                continue
            if builder is None and stack and stack[-1][1]:  # a scalar in a map
                parent = ".".join(n for n, _ in stack[1:])
                if parent == "personal_information":
                    account[key] = value
                elif chat is not None and key in ("id", "name", "type") and parent in _CHAT_PREFIXES:
                    chat.meta[key] = value
            key = None
    except ijson.JSONError as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else "broken JSON"
        raise InvalidInput(f"{source}:{counter.line}: broken Telegram export near here ({excerpt(reason, 80)})")


def _top_level(stream) -> dict:
    """The single-chat export's own `id`, `name` and `type`, wherever they stand in the
    file (a file written with sorted keys has them after `messages`): read in a pass of
    its own, the stream then put back where it was. Nothing, for a stream that cannot seek."""
    import ijson

    try:
        if not stream.seekable():
            return {}
        where = stream.tell()
    except (OSError, ValueError):
        return {}
    found: dict = {}
    depth = 0
    key = None
    try:
        stream.seek(0)
        for event, value in ijson.basic_parse(stream, buf_size=65536):
            if event in ("start_map", "start_array"):
                depth += 1
            elif event in ("end_map", "end_array"):
                depth -= 1
            elif event == "map_key":
                key = value if depth == 1 else None
                continue
            elif depth == 1 and key in ("id", "name", "type"):
                found[key] = value
            key = None
    except ijson.JSONError:
        pass  # the main pass says where the file breaks
    finally:
        stream.seek(where)
    return found


def _message(message: dict, chat: _Chat, source: str, line: int, options) -> Iterator[Event | Invalid]:
    if message.get("type", "message") != "message":
        return  # service messages: joined, calls, group created, pinned…
    if "date_unixtime" in message:
        try:
            at = times.from_epoch(int(message["date_unixtime"]))
        except (TypeError, ValueError, OverflowError, OSError):
            yield Invalid(source, line, f"message {excerpt(_s(message.get('id')))}: unreadable date_unixtime")
            return
    else:
        try:
            at = times.parse(message.get("date"), options.tz)
        except (ValueError, OverflowError) as error:
            yield Invalid(source, line, f"message {excerpt(_s(message.get('id')))}: {excerpt(str(error), 120)}")
            return
    text = flatten(message.get("text"))
    placeholder = media_placeholder(message)
    if placeholder:
        text = f"{placeholder} {text}".strip()
    origin = _s(message.get("forwarded_from")) or _s(message.get("saved_from"))
    if origin or "forwarded_from" in message:
        text = f"[forwarded from {origin or 'a hidden account'}] {text}".strip()
    author = clean_name(_s(message.get("from")) or _s(message.get("actor"))) or "unknown"
    author_id = message.get("from_id")
    direction = chat.roles.direction(author, str(author_id) if author_id is not None else None)
    meta = chat.meta
    name = clean_name(_s(meta.get("name")))
    kind = meta.get("type")
    if kind == "personal_chat" or kind in _CHANNELS:
        contact = name or None
    else:
        contact = None
    title = None
    if name:
        title = f"{name} (telegram channel)" if kind in _CHANNELS else f"{name} (telegram)"
    yield Event(
        "message",
        chat.key,
        at,
        direction=direction,
        author=author,
        text=text or "[no text]",
        id=str(message["id"]) if message.get("id") is not None else None,
        channel="telegram",
        contact=contact or (author if direction == "client" else None),
        title=title,
        source=source,
        line=line,
    )


_CHANNELS = ("public_channel", "private_channel")


class _LineCounter:
    """Counts the lines the parser has read, to say where an export broke, and refuses
    one value (a string, a run of blanks) or one message larger than the bounds."""

    def __init__(self, stream: BinaryIO, source: str):
        self._stream = stream
        self._source = source
        self.line = 1
        self._since_token = 0
        self._message = None  # bytes read since the message began, while one is read

    def token_done(self) -> None:
        self._since_token = 0

    def message_started(self) -> None:
        self._message = 0

    def message_done(self) -> None:
        self._message = None

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.line += data.count(b"\n")
        self._since_token += len(data)
        if self._since_token > MAX_VALUE:
            raise InvalidInput(f"{self._source}:{self.line}: one value longer than {mib(MAX_VALUE)}; not a Telegram export")
        if self._message is not None:
            self._message += len(data)
            if self._message > MAX_VALUE:
                raise InvalidInput(f"{self._source}:{self.line}: a message larger than {mib(MAX_VALUE)}; not a Telegram export")
        return data
