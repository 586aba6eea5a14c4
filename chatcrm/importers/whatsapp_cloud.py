"""WhatsApp Business Platform (Cloud API) webhook notifications
(`{"object": "whatsapp_business_account", "entry": [{"changes": [{"value": …}]}]}`), one
document or JSON Lines of them.

Every `messages` entry is a client's message (text, and every other type named in
brackets: `[image] caption`, `[location: name]`, `[reaction 👍]`…), its author the profile
name `contacts` gives, its identity the `wamid`. Chat key `wa:` + the client's `wa_id`
(its digits): `chatcrm ingest --chat wa:34600111222 "WhatsApp Chat with Ana.txt"` puts a
later export of the same client on the same deal. `statuses` entries (sent, delivered,
read, failed) become delivery statuses of the replies chatcrm sent. Other changes are
skipped and counted.
"""

from __future__ import annotations

from typing import BinaryIO, Iterator

from chatcrm import times
from chatcrm.errors import InvalidInput
from chatcrm.events import DeliveryStatus, Event, Invalid, LiveChat, Skipped
from chatcrm.importers.live import documents
from chatcrm.rules.delivery import STATUS_RANK

_MEDIA = {"image": "image", "video": "video", "audio": "audio", "document": "file", "sticker": "sticker"}


def chat_key(wa_id: str) -> str:
    """The chat key of a WhatsApp client: `wa:` + the digits of their wa_id."""
    return "wa:" + "".join(ch for ch in str(wa_id) if ch.isdigit())


def read(stream: BinaryIO, source: str, options) -> Iterator[Event | Invalid | Skipped | DeliveryStatus]:
    for line, document in documents(stream, source, "WhatsApp webhook notification"):
        if not isinstance(document, dict) or document.get("object") != "whatsapp_business_account":
            raise InvalidInput(f"{source}:{line}: not a WhatsApp Cloud API webhook notification "
                               '(no "object": "whatsapp_business_account")')
        entries = document.get("entry")
        if not isinstance(entries, list):
            raise InvalidInput(f"{source}:{line}: a WhatsApp notification without its entry list")
        for entry in entries:
            for change in (entry.get("changes") or []) if isinstance(entry, dict) else []:
                yield from _change(change, source, line)


def _change(change, source: str, line: int) -> Iterator:
    if not isinstance(change, dict) or change.get("field") != "messages" or not isinstance(change.get("value"), dict):
        field = change.get("field") if isinstance(change, dict) else None
        yield Skipped(source, line, f"a {field or 'nameless'} change")
        return
    value = change["value"]
    phone_number_id = (value.get("metadata") or {}).get("phone_number_id")
    names = {
        str(c.get("wa_id")): (c.get("profile") or {}).get("name")
        for c in value.get("contacts") or [] if isinstance(c, dict)
    }
    for message in value.get("messages") or []:
        yield _message(message, names, phone_number_id, source, line)
    for status in value.get("statuses") or []:
        yield _status(status, source, line)
    for key in value:
        if key not in ("messaging_product", "metadata", "contacts", "messages", "statuses"):
            yield Skipped(source, line, f"messages change with {key}")


def _epoch(value) -> str:
    return times.from_epoch(int(value))


def _message(message, names: dict, phone_number_id, source: str, line: int):
    if not isinstance(message, dict) or not message.get("id") or not message.get("from"):
        return Invalid(source, line, "a WhatsApp message without its id or its sender (from)")
    where = f"message {message['id']}"
    try:
        at = _epoch(message["timestamp"])
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return Invalid(source, line, f"{where}: no readable timestamp")
    wa_id = str(message["from"])
    author = names.get(wa_id) or wa_id
    return Event(
        "message",
        chat_key(wa_id),
        at,
        direction="client",
        author=author,
        text=content_text(message),
        id=str(message["id"]),
        channel="whatsapp",
        contact=author,
        title=f"{author} (whatsapp)",
        live=LiveChat("whatsapp", wa_id, str(phone_number_id) if phone_number_id else None),
        source=source,
        line=line,
    )


def content_text(message: dict) -> str:
    """A message's text, whatever its type."""
    kind = message.get("type") or "unknown"
    body = message.get(kind) if isinstance(message.get(kind), dict) else {}
    if kind == "text":
        return str(body.get("body", ""))
    if kind in _MEDIA:
        label = _MEDIA[kind]
        if kind == "document" and body.get("filename"):
            label += " " + str(body["filename"])
        if kind == "sticker" and body.get("animated"):
            label = "animated sticker"
        return f"[{label}] {body.get('caption') or ''}".strip()
    if kind == "location":
        place = ", ".join(str(body[k]) for k in ("name", "address") if body.get(k))
        return f"[location: {place}]" if place else f"[location {body.get('latitude')},{body.get('longitude')}]"
    if kind == "contacts":
        people = message.get("contacts") or []
        named = ", ".join(str((p.get("name") or {}).get("formatted_name", "")) for p in people if isinstance(p, dict))
        return f"[contact: {named}]" if named.strip(", ") else "[contact]"
    if kind == "interactive":
        reply = body.get("button_reply") or body.get("list_reply") or body.get("nfm_reply") or {}
        return str(reply.get("title") or reply.get("body") or "[interactive reply]")
    if kind == "button":
        return str(body.get("text") or body.get("payload") or "[button]")
    if kind == "reaction":
        return f"[reaction {body.get('emoji') or 'removed'}]"
    if kind == "order":
        items = len(body.get("product_items") or [])
        return f"[order: {items} item(s)] {body.get('text') or ''}".strip()
    if kind == "system":
        return f"[system] {body.get('body') or ''}".strip()
    return f"[{kind} message]"


def _status(status, source: str, line: int):
    if not isinstance(status, dict) or not status.get("id"):
        return Invalid(source, line, "a WhatsApp status without the id of its message")
    name = status.get("status")
    if name not in STATUS_RANK:
        return Skipped(source, line, f"status {name!r} of {status['id']}")
    try:
        at = _epoch(status["timestamp"])
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return Invalid(source, line, f"status of {status['id']}: no readable timestamp")
    error = None
    errors = status.get("errors")
    if name == "failed" and isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        details = (first.get("error_data") or {}).get("details")
        error = f"{first.get('code', '')} {first.get('title') or first.get('message') or ''}".strip()
        if details:
            error += f": {details}"
    return DeliveryStatus(str(status["id"]), name, at, error, source, line)
