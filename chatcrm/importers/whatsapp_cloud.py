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

Every field is read by its type (chatcrm.importers.payload): a message, a status or a
change holding a value of another type is invalid, the field named. `from`, `wa_id` and
`phone_number_id` must be digits: they become a chat key and where replies go.
"""

from __future__ import annotations

from typing import BinaryIO, Iterator

from chatcrm import times
from chatcrm.errors import InvalidInput
from chatcrm.events import DeliveryStatus, Event, Invalid, LiveChat, Skipped
from chatcrm.importers.limits import MAX_TEXT, excerpt, mib
from chatcrm.importers.live import documents, refuse_options
from chatcrm.importers.payload import Fields, Malformed, whole
from chatcrm.rules.delivery import STATUS_RANK

_MEDIA = {"image": "image", "video": "video", "audio": "audio", "document": "file", "sticker": "sticker"}


def chat_key(wa_id: str) -> str:
    """The chat key of a WhatsApp client: `wa:` + their wa_id (digits, as the importer
    accepts it; any other character of a stored id is dropped)."""
    return "wa:" + "".join(ch for ch in str(wa_id) if ch.isdigit())


def read(stream: BinaryIO, source: str, options) -> Iterator[Event | Invalid | Skipped | DeliveryStatus]:
    refuse_options(options, source, "a WhatsApp Cloud API notification", agents=True)
    for line, document in documents(stream, source, "WhatsApp webhook notification"):
        if not isinstance(document, dict) or document.get("object") != "whatsapp_business_account":
            raise InvalidInput(f"{source}:{line}: not a WhatsApp Cloud API webhook notification "
                               '(no "object": "whatsapp_business_account")')
        entries = document.get("entry")
        if not isinstance(entries, list):
            raise InvalidInput(f"{source}:{line}: a WhatsApp notification without its entry list")
        for number, entry in enumerate(entries):
            try:
                changes = Fields(entry, f"entry[{number}]").items("changes")
            except Malformed as error:
                yield Invalid(source, line, str(error))
                continue
            for change in changes:
                yield from _change(change, source, line)


def _change(change, source: str, line: int) -> Iterator:
    try:
        fields = Fields(change, "change")
        field = fields.text("field")
        if field != "messages":
            yield Skipped(source, line, f"a {excerpt(field) if field else 'nameless'} change")
            return
        value = fields.object("value", required=True)
        metadata = value.object("metadata")
        phone_number_id = metadata.digits("phone_number_id") if metadata is not None else None
        names = {}
        for contact in value.objects("contacts"):  # the profile names of the senders
            profile = contact.object("profile")
            wa_id = contact.digits("wa_id")
            if wa_id is not None:
                names[wa_id] = profile.text("name") if profile is not None else None
        messages, statuses = value.items("messages"), value.items("statuses")
    except Malformed as error:
        yield Invalid(source, line, str(error))
        return
    for number, message in enumerate(messages):
        yield _message(message, number, names, phone_number_id, source, line)
    for number, status in enumerate(statuses):
        yield _status(status, number, source, line)
    for key in value.keys():
        if key not in ("messaging_product", "metadata", "contacts", "messages", "statuses"):
            yield Skipped(source, line, f"messages change with {excerpt(key)}")


def _time(fields: Fields, key: str = "timestamp") -> str:
    """A Unix time, as WhatsApp writes it (digits in a string) or as a number."""
    value = fields.value.get(key)
    seconds = value if whole(value) else int(fields.digits(key, required=True, most=12))
    try:
        return times.from_epoch(seconds)
    except ValueError as error:
        raise Malformed(f"{fields.path}.{key}: {error}") from None


def _message(message, number: int, names: dict, phone_number_id, source: str, line: int):
    try:
        fields = Fields(message, f"messages[{number}]")
        where = f"message {excerpt(fields.text('id', required=True))}"
    except Malformed as error:
        return Invalid(source, line, str(error))
    try:
        wa_id = fields.digits("from", required=True)
        at = _time(fields)
        text = content_text(fields)
    except Malformed as error:
        return Invalid(source, line, f"{where}: {error}")
    if len(text) > MAX_TEXT:
        return Invalid(source, line, f"{where}: a text longer than {mib(MAX_TEXT)}")
    author = names.get(wa_id) or wa_id
    return Event(
        "message",
        chat_key(wa_id),
        at,
        direction="client",
        author=author,
        text=text,
        id=fields.value["id"],
        channel="whatsapp",
        contact=author,
        title=f"{author} (whatsapp)",
        live=LiveChat("whatsapp", wa_id, phone_number_id),
        source=source,
        line=line,
    )


_EMPTY = Fields({}, "message")


def content_text(message: Fields) -> str:
    """A message's text, whatever its type."""
    kind = message.text("type") or "unknown"
    body = (message.object(kind) if kind not in _NOT_CONTENT else None) or _EMPTY
    if kind == "text":
        return body.text("body") or ""
    if kind in _MEDIA:
        label = _MEDIA[kind]
        if kind == "document" and body.text("filename"):
            label += " " + body.text("filename")
        if kind == "sticker" and body.flag("animated"):
            label = "animated sticker"
        return f"[{label}] {body.text('caption') or ''}".strip()
    if kind == "location":
        place = ", ".join(v for v in (body.text("name"), body.text("address")) if v)
        return f"[location: {place}]" if place else f"[location {body.number('latitude')},{body.number('longitude')}]"
    if kind == "contacts":
        named = ", ".join(person.object("name").text("formatted_name") or "" if person.has("name") else ""
                          for person in message.objects("contacts"))
        return f"[contact: {named}]" if named.strip(", ") else "[contact]"
    if kind == "interactive":
        reply = body.object("button_reply") or body.object("list_reply") or body.object("nfm_reply") or _EMPTY
        return reply.text("title") or reply.text("body") or "[interactive reply]"
    if kind == "button":
        return body.text("text") or body.text("payload") or "[button]"
    if kind == "reaction":
        return f"[reaction {body.text('emoji') or 'removed'}]"
    if kind == "order":
        items = len(body.items("product_items"))
        return f"[order: {items} item(s)] {body.text('text') or ''}".strip()
    if kind == "system":
        return f"[system] {body.text('body') or ''}".strip()
    return f"[{excerpt(kind)} message]"


# Fields of a message that are not an object of its content, whatever its `type` says
# (a contacts message's `contacts` is a list).
_NOT_CONTENT = {"id", "from", "timestamp", "type", "context", "errors", "referral", "identity", "contacts"}


def _status(status, number: int, source: str, line: int):
    try:
        fields = Fields(status, f"statuses[{number}]")
        remote_id = fields.text("id", required=True)
        name = fields.text("status")
        if name not in STATUS_RANK:
            return Skipped(source, line, f"status {excerpt(name) if name else 'without a name'} of {excerpt(remote_id)}")
        at = _time(fields)
        error = None
        errors = fields.objects("errors")
        if name == "failed" and errors:
            first = errors[0]
            data = first.object("error_data")
            details = data.text("details") if data is not None else None
            code = first.whole("code")
            error = f"{'' if code is None else code} {first.text('title') or first.text('message') or ''}".strip()
            if details:
                error += f": {details}"
    except Malformed as error:
        return Invalid(source, line, str(error))
    return DeliveryStatus(remote_id, name, at, error, source, line)
