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
"""

from __future__ import annotations

from typing import BinaryIO, Iterator

from chatcrm import times
from chatcrm.errors import InvalidInput
from chatcrm.events import Event, Invalid, LiveChat, Skipped
from chatcrm.importers.live import documents
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
    for line, document in documents(stream, source, "Telegram Bot API payload"):
        for update in _updates(document, source, line):
            yield from _update(update, source, line, options)


def _updates(document, source: str, line: int) -> list:
    if isinstance(document, dict) and "ok" in document:
        if document.get("ok") is not True:
            description = document.get("description") or "no description"
            raise InvalidInput(f"{source}:{line}: a failed Telegram getUpdates response ({description}); nothing to import")
        result = document.get("result")
        if not isinstance(result, list):
            raise InvalidInput(f"{source}:{line}: a getUpdates response whose result is not a list of updates")
        return result
    if isinstance(document, dict) and "update_id" in document:
        return [document]
    raise InvalidInput(f"{source}:{line}: not a Telegram Update nor a getUpdates response")


def _update(update, source: str, line: int, options) -> Iterator[Event | Invalid | Skipped]:
    if not isinstance(update, dict) or "update_id" not in update:
        yield Invalid(source, line, "an update without update_id")
        return
    kind = next((k for k in MESSAGE_KINDS if k in update), None)
    if kind is None:
        used = next((k for k in update if k != "update_id"), "nothing")
        yield Skipped(source, line, f"update {update['update_id']}: {used}")
        return
    message = update[kind]
    where = f"update {update['update_id']}"
    if not isinstance(message, dict):
        yield Invalid(source, line, f"{where}: {kind} is not an object")
        return
    chat = message.get("chat")
    if not isinstance(chat, dict) or not isinstance(chat.get("id"), int):
        yield Invalid(source, line, f"{where}: {kind} without chat.id")
        return
    if not isinstance(message.get("message_id"), int):
        yield Invalid(source, line, f"{where}: {kind} without message_id")
        return
    try:
        at = times.from_epoch(int(message["date"]))
        edited_at = times.from_epoch(int(message.get("edit_date") or message["date"])) if kind.startswith("edited_") else None
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        yield Invalid(source, line, f"{where}: {kind} without a readable date")
        return
    text = content_text(message)
    if text is None:
        yield Skipped(source, line, f"{where}: a service message")
        return
    sender = message.get("from") if isinstance(message.get("from"), dict) else {}
    author = name_of(sender) or name_of(chat) or str(chat["id"])
    business = kind in ("business_message", "edited_business_message")
    direction = _direction(business, chat, sender, author, message, options)
    contact = name_of(chat) if chat.get("type") == "private" else None
    title = name_of(chat)
    yield Event(
        "message",
        f"tg:{chat['id']}",
        at,
        direction=direction,
        author=author,
        text=text,
        id=str(message["message_id"]) if business else f"bot:{message['message_id']}",
        channel="telegram",
        contact=contact or (author if direction == "client" else None),
        title=f"{title} (telegram)" if title else None,
        edited_at=edited_at,
        live=LiveChat("telegram", str(chat["id"]), message.get("business_connection_id") if business else None),
        source=source,
        line=line,
    )


def _direction(business: bool, chat: dict, sender: dict, author: str, message: dict, options) -> str:
    if options.agents and normalise(author) in {normalise(a) for a in options.agents}:
        return "agent"
    if business and (message.get("sender_business_bot") or (chat.get("type") == "private" and sender.get("id") != chat["id"])):
        return "agent"
    return "client"


def name_of(party: dict) -> str:
    """A user's or a chat's name: first and last name, else the title, else @username."""
    if not isinstance(party, dict):
        return ""
    name = " ".join(str(party[k]) for k in ("first_name", "last_name") if party.get(k)).strip()
    if not name and party.get("title"):
        name = str(party["title"])
    if not name and party.get("username"):
        name = "@" + str(party["username"])
    return name


def content_text(message: dict) -> str | None:
    """A message's text: its text or caption, after a bracketed name of what else it
    carries ([photo], [sticker 👍], [file invoice.pdf], [poll: …]); None for a service
    message (members joining, a pinned message…)."""
    text = message.get("text") or message.get("caption") or ""
    if not isinstance(text, str):
        text = ""
    for field, label in _CONTENT:
        value = message.get(field)
        if value is None:
            continue
        detail = ""
        if isinstance(value, dict):
            if field == "sticker" and value.get("emoji"):
                detail = " " + str(value["emoji"])
            elif field in ("document", "audio") and value.get("file_name"):
                detail = " " + str(value["file_name"])
            elif field == "poll" and value.get("question"):
                detail = ": " + str(value["question"])
            elif field == "venue" and value.get("title"):
                detail = ": " + str(value["title"])
            elif field == "contact":
                detail = ": " + " ".join(str(value[k]) for k in ("first_name", "last_name", "phone_number") if value.get(k))
            elif field == "dice" and value.get("emoji"):
                detail = f" {value['emoji']} {value.get('value', '')}".rstrip()
            elif field == "location" and "latitude" in value:
                detail = f" {value['latitude']},{value.get('longitude')}"
        return f"[{label}{detail}] {text}".strip()
    return text if text else None
