"""Telegram Bot API payloads: a `getUpdates` response (`{"ok": true, "result": [Update…]}`),
one `Update` (a webhook's body), or JSON Lines of either.

`message` and `edited_message` are a bot's chats: their authors are clients (or employees
named with --agent). `business_message` and `edited_business_message` are a Telegram
Business account's chats: in a private chat the chat's partner is the client, and the
account's owner (anyone else, or the business bot writing for them) is the employee. An
edit carries the message's latest text; the message keeps its identity and is counted
once. Chat key `tg:` + the chat's id, as a Telegram Desktop export of the chat gives.
A business message keeps its Telegram id (the owner's export of the chat has the same
ones); a bot's message is `bot:` + its id (a bot's ids are its own). Other updates are
skipped and counted.

Every field is read by its type (chatcrm.importers.payload): an update holding a value of
another type is invalid, the field named. A business message without `from` is invalid
too (the Bot API gives one in every private chat), unless `sender_business_bot` says the
business wrote it.
"""

from __future__ import annotations

from typing import BinaryIO, Iterator

from chatcrm import times
from chatcrm.errors import InvalidInput
from chatcrm.events import Event, Invalid, LiveChat, Skipped
from chatcrm.importers.limits import MAX_TEXT, excerpt, mib
from chatcrm.importers.live import documents, refuse_options
from chatcrm.importers.payload import Fields, Malformed
from chatcrm.importers.roles import normalise

MESSAGE_KINDS = ("message", "edited_message", "business_message", "edited_business_message")

# Content with no text of its own, named in brackets (as the export reader does).
_CONTENT = (
    ("photo", "photo"),
    ("video", "video"),
    ("animation", "GIF"),
    ("voice", "voice message"),
    ("video_note", "video message"),
    ("audio", "audio file"),
    ("document", "file"),
    ("sticker", "sticker"),
    ("venue", "venue"),
    ("location", "location"),
    ("contact", "contact"),
    ("poll", "poll"),
    ("dice", "dice"),
    ("game", "game"),
    ("story", "story"),
    ("invoice", "invoice"),
)


def read(stream: BinaryIO, source: str, options) -> Iterator[Event | Invalid | Skipped]:
    refuse_options(options, source, "a Telegram Bot API payload", agents=False)
    for line, document in documents(stream, source, "Telegram Bot API payload"):
        for update in _updates(document, source, line):
            yield _update(update, source, line, options)


def _updates(document, source: str, line: int) -> list:
    if isinstance(document, dict) and "ok" in document:
        if document.get("ok") is not True:
            description = document.get("description")
            shown = excerpt(description) if isinstance(description, str) and description else "no description"
            raise InvalidInput(f"{source}:{line}: a failed Telegram getUpdates response ({shown}); nothing to import")
        result = document.get("result")
        if not isinstance(result, list):
            raise InvalidInput(f"{source}:{line}: a getUpdates response whose result is not a list of updates")
        return result
    if isinstance(document, dict) and "update_id" in document:
        return [document]
    raise InvalidInput(f"{source}:{line}: not a Telegram Update nor a getUpdates response")


def _update(update, source: str, line: int, options) -> Event | Invalid | Skipped:
    """One update's message, or why it is skipped or invalid (the field named)."""
    if not isinstance(update, dict) or "update_id" not in update:
        return Invalid(source, line, "an update without update_id")
    try:
        fields = Fields(update, "update")
        where = f"update {fields.whole('update_id', required=True)}"
    except Malformed as error:
        return Invalid(source, line, str(error))
    try:
        return _message(fields, where, source, line, options)
    except Malformed as error:
        return Invalid(source, line, f"{where}: {error}")


def _message(update: Fields, where: str, source: str, line: int, options) -> Event | Skipped:
    kind = next((k for k in MESSAGE_KINDS if k in update.value), None)
    if kind is None:
        used = next((k for k in update.keys() if k != "update_id"), "nothing")
        return Skipped(source, line, f"{where}: {excerpt(used)}")
    message = Fields(update.value[kind], kind)
    chat = message.object("chat")
    if chat is None:
        raise Malformed(f"{kind} without chat.id")
    chat_id = chat.whole("id", required=True)
    message_id = message.whole("message_id", required=True)
    date = message.whole("date", required=True)
    edited = (message.whole("edit_date") or date) if kind.startswith("edited_") else None
    try:
        at = times.from_epoch(date)
        edited_at = times.from_epoch(edited) if edited is not None else None
    except ValueError as error:  # outside the times chatcrm keeps
        raise Malformed(f"{kind}.date: {error}") from None
    text = content_text(message)
    if text is None:
        return Skipped(source, line, f"{where}: a service message")
    business = kind in ("business_message", "edited_business_message")
    sender = message.object("from")
    if sender is None and business and not message.has("sender_business_bot"):
        # A business chat is a private chat, where every message has a sender (the Bot API
        # leaves `from` out only in channels): without one, nobody can say who wrote it.
        raise Malformed(f"{kind} without from (who wrote it)")
    chat_type = chat.text("type")
    author = name_of(sender) or name_of(chat) or str(chat_id)
    direction = _direction(business, chat_id, chat_type, sender, author, message, options)
    title = name_of(chat)
    contact = title if chat_type == "private" else None
    via = message.text("business_connection_id") if business else None
    if len(text) > MAX_TEXT:
        raise Malformed(f"{kind}.text is longer than {mib(MAX_TEXT)}")
    return Event(
        "message",
        f"tg:{chat_id}",
        at,
        direction=direction,
        author=author,
        text=text,
        id=str(message_id) if business else f"bot:{message_id}",
        channel="telegram",
        contact=contact or (author if direction == "client" else None),
        title=f"{title} (telegram)" if title else None,
        edited_at=edited_at,
        live=LiveChat("telegram", str(chat_id), via),
        source=source,
        line=line,
    )


def _direction(business: bool, chat_id: int, chat_type: str | None, sender: Fields | None, author: str,
               message: Fields, options) -> str:
    if options.agents and normalise(author) in {normalise(a) for a in options.agents}:
        return "agent"
    if business:
        if message.object("sender_business_bot") is not None:
            return "agent"  # the business bot wrote for the account's owner
        if chat_type == "private" and sender is not None and sender.whole("id", required=True) != chat_id:
            return "agent"
    return "client"


def name_of(party: Fields | None) -> str:
    """A user's or a chat's name: first and last name, else the title, else @username."""
    if party is None:
        return ""
    name = " ".join(n for n in (party.text("first_name"), party.text("last_name")) if n).strip()
    if not name:
        name = party.text("title") or ""
    if not name and party.text("username"):
        name = "@" + party.text("username")
    return name


def content_text(message: Fields) -> str | None:
    """A message's text: its text or caption, after a bracketed name of what else it
    carries ([photo], [sticker 👍], [file invoice.pdf], [poll: …]); None for a service
    message (members joining, a pinned message…)."""
    text = message.text("text") or message.text("caption") or ""
    for field, label in _CONTENT:
        if not message.has(field):
            continue
        detail = ""
        if field == "photo":
            message.items(field)  # a list of sizes
        else:
            value = message.object(field)
            if field == "sticker" and value.text("emoji"):
                detail = " " + value.text("emoji")
            elif field in ("document", "audio") and value.text("file_name"):
                detail = " " + value.text("file_name")
            elif field == "poll" and value.text("question"):
                detail = ": " + value.text("question")
            elif field == "venue" and value.text("title"):
                detail = ": " + value.text("title")
            elif field == "contact":
                detail = ": " + " ".join(v for v in (value.text("first_name"), value.text("last_name"),
                                                     value.text("phone_number")) if v)
            elif field == "dice" and value.text("emoji"):
                number = value.whole("value")
                detail = f" {value.text('emoji')} {'' if number is None else number}".rstrip()
            elif field == "location" and value.has("latitude"):
                detail = f" {value.number('latitude')},{value.number('longitude')}"
        return f"[{label}{detail}] {text}".strip()
    return text if text else None
