"""Facebook Messenger and Instagram "Download your information" JSON (`message_N.json`).

Meta splits a conversation into files of at most a few thousand messages, newest first,
and writes its text as mojibake (UTF-8 bytes escaped one by one as `\\u00XX`); both are
undone here. The thread's `title` of a one-to-one chat is the other person's name.
"""

from __future__ import annotations

import json
import re
from typing import BinaryIO, Iterator

from chatcrm import times
from chatcrm.errors import InvalidInput
from chatcrm.events import Event, Invalid
from chatcrm.importers.limits import MAX_DEPTH, MAX_JSON_FILE, MAX_JSON_VALUES, mib
from chatcrm.importers.roles import Roles, clean_name, normalise, unresolved

_MEDIA = (("photos", "photo"), ("videos", "video"), ("audio_files", "audio"), ("gifs", "GIF"),
          ("files", "file"), ("sticker", "sticker"), ("share", "link"))
_NOT_MESSAGES = {"Subscribe", "Unsubscribe", "Call"}


def _text_repaired(text: str) -> str:
    """Meta's latin-1 mojibake of one text back to the text; text that is not mojibake stays."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def _repaired(value):
    """A string, or a list's strings, repaired (a dict's are, as it is parsed)."""
    if isinstance(value, str):
        return _text_repaired(value)
    if isinstance(value, list):
        return [v if isinstance(v, dict) else _repaired(v) for v in value]
    return value


def _repair_object(pairs) -> dict:
    """json's object hook: each object's values repaired as it is built, so the document is
    never held twice."""
    return {k: _repaired(v) for k, v in pairs}


def unmojibake(value):
    """Meta's latin-1 mojibake back to text, recursively; text that is not mojibake stays."""
    if isinstance(value, str):
        return _text_repaired(value)
    if isinstance(value, list):
        return [unmojibake(v) for v in value]
    if isinstance(value, dict):
        return {k: unmojibake(v) for k, v in value.items()}
    return value


_THREAD_PATH = re.compile(
    r"(?:^|/)(?P<thread>(?:inbox|archived_threads|filtered_threads|message_requests|e2ee_cutover)/[^/]+)/message_\d+\.json$"
)
# Rows the app writes into a thread that nobody sent as a message: calls, reactions and
# likes, group changes, new-connection notices, unsent messages (the 2024+ exports have no
# `type`). Only whole rows in the app's fixed phrases, per language: a client's sentence
# that begins with "Reaccionó" or holds "called" is the client's message. A phrase that
# names who did it is a notice only when that is the row's sender (or "You").
_REACTION = r"\S{1,16}"
_NOTICE = re.compile(
    rf"^(?:Reacted {_REACTION} to your message|Reaccionó (?:con )?{_REACTION} a tu mensaje|"
    rf"Reagiu (?:com )?{_REACTION} (?:à|a) sua mensagem|A réagi (?:avec )?{_REACTION} à votre message|"
    rf"Hat mit {_REACTION} auf deine Nachricht reagiert|Ha reagito (?:con )?{_REACTION} al tuo messaggio|"
    rf"Heeft met {_REACTION} op je bericht gereageerd|Mereaksi {_REACTION} ke pesan Anda|"
    rf"Отреагировал(?:а|\(а\))? {_REACTION} на ваше сообщение)$|"
    r"^(?:Liked a message|Me gustó un mensaje|Le gustó un mensaje|Curtiu uma mensagem|A aimé un message|"
    r"Mi piace un messaggio|Gefällt eine Nachricht)\.?$|"
    r"^(?:Missed call|Missed video call|Llamada perdida|Videollamada perdida|Chamada perdida|Appel manqué|"
    r"Verpasster Anruf|Chiamata persa|Gemiste oproep)\.?$|"
    r"^(?:The call ended|The video call ended|La llamada terminó|La videollamada terminó|A chamada terminou|"
    r"L'appel est terminé|Der Anruf wurde beendet|La chiamata è terminata)\.?$|"
    r"^You are now connected on Messenger\.?$|^Say hi to your new Facebook friend.{0,80}$|"
    r"^You can now message and call each other.{0,120}$|"
    r"^(?:This message was unsent|Se anuló el envío de este mensaje|Esta mensagem foi cancelada)\.?$"
)
_ACTED = re.compile(
    rf"^(?P<actor>.{{1,120}}?) (?:"
    r"started a call|started a video call|started an audio call|joined the call|joined the video call|"
    r"missed a call from .{1,120}|missed a video call from .{1,120}|called you|"
    rf"reacted {_REACTION} to (?:your|a|their|his|her) message|liked a message|unsent a message|"
    r"named the group .{0,200}|changed the group name to .{0,200}|changed the group photo|removed the group name|"
    r"set the nickname for .{1,200}|set (?:your|his|her|their) nickname to .{0,200}|cleared the nickname for .{1,120}|"
    r"turned (?:on|off) member approval.{0,80}|(?:joined|left) the group|added .{1,200} to the group|"
    r"removed .{1,200} from the group|created the group.{0,200}|changed the (?:chat )?theme.{0,120}|"
    r"set the emoji to .{1,20}|set the quick reaction to .{1,20}|changed the chat colou?rs?.{0,80}|"
    r"made .{1,120} an admin|removed .{1,120} as an admin|"
    r"inició una llamada|inició una videollamada|nombró el grupo .{0,200}|salió del grupo|se unió al grupo|"
    r"añadió a .{1,200} al grupo|agregó a .{1,200} al grupo|eliminó a .{1,200} del grupo|anuló el envío de un mensaje|"
    r"iniciou uma chamada|iniciou uma chamada de vídeo|saiu do grupo|entrou no grupo|adicionou .{1,200} ao grupo|"
    r"removeu .{1,200} do grupo|cancelou o envio de uma mensagem|a quitté le groupe|a rejoint le groupe|"
    r"a ajouté .{1,200} au groupe|a lancé un appel|a retiré un message|hat die Gruppe verlassen|"
    r"ist der Gruppe beigetreten|hat einen Anruf gestartet|hat eine Nachricht zurückgenommen|"
    r"ha abbandonato il gruppo|si è unito al gruppo|ha avviato una chiamata|ha annullato l'invio di un messaggio)\.?$",
    re.S,
)
_YOU = {"you", "tú", "tu", "você", "vous", "du", "jij", "anda", "вы"}


def read(stream: BinaryIO, source: str, options, channel: str | None = None) -> Iterator[Event | Invalid]:
    """One `message_N.json` file."""
    return read_thread([(source, lambda: stream)], source, options, place=source, channel=channel)


def read_thread(files, source: str, options, place: str = "", channel: str | None = None
                ) -> Iterator[Event | Invalid]:
    """One thread: its `message_1.json … message_N.json` files as (name, opener) pairs.
    Each file is read whole (Meta keeps them to a few MB; bounded by MAX_JSON_FILE and
    MAX_JSON_VALUES) and dropped before the next."""
    seen: set = set()  # rows written twice: the same sender, millisecond and content
    setup = None
    for name, opener in files:
        document = _load(opener, name)
        if setup is None:
            setup = _thread(document, source, options, place, channel)
        key, chan, title, participants, roles = setup
        messages = document["messages"]
        total = len(messages)
        # newest first in the file: read oldest first, and name each by its place in the file
        for index in range(total - 1, -1, -1):
            message = messages[index]
            position = total - index  # its place in time order
            if not isinstance(message, dict) or _not_a_message(message):
                continue
            try:
                stamp = int(message["timestamp_ms"])
            except (KeyError, TypeError, ValueError, OverflowError):
                yield Invalid(name, position, f"message {position}: missing or unreadable timestamp_ms")
                continue
            try:
                at = times.from_epoch(stamp // 1000)
            except (ValueError, OverflowError, OSError) as error:
                yield Invalid(name, position, f"message {position}: timestamp_ms: {error}")
                continue
            author = clean_name(str(message.get("sender_name") or "")) or "unknown"
            text = _text(message)
            twin = (author, stamp, text)
            if twin in seen:
                continue
            seen.add(twin)
            direction = roles.direction(author)
            yield Event(
                "message", key, at, direction=direction, author=author, text=text, channel=chan,
                contact=title if len(participants) == 2 and title else (author if direction == "client" else None),
                title=f"{title} ({chan})" if title else None, source=name, line=position,
            )
        del document, messages


def _load(opener, name: str) -> dict:
    stream = opener()
    try:
        first = stream.read(1 << 16)
        body = first.lstrip(b"\xef\xbb\xbf \t\r\n")
        if not body.startswith(b"{"):
            raise InvalidInput(f"{name}:1: not a Messenger/Instagram export (it does not start with a JSON object)")
        chunks, size = [first], len(first)
        while chunk := stream.read(1 << 20):
            size += len(chunk)
            if size > MAX_JSON_FILE:
                raise InvalidInput(f"{name}: larger than {mib(MAX_JSON_FILE)}; Meta's files are a few MB each")
            chunks.append(chunk)
        raw = b"".join(chunks)
        del chunks
    finally:
        stream.close()
    if raw.count(b",") >= MAX_JSON_VALUES:  # each value parsed costs memory: bounded before parsing
        raise InvalidInput(f"{name}: more than {MAX_JSON_VALUES:,} values; Meta's files hold at most 10,000 messages each")
    try:
        document = json.loads(raw.decode("utf-8-sig"), object_pairs_hook=_repair_object)
    except UnicodeDecodeError as error:
        raise InvalidInput(f"{name}: not UTF-8 text (byte {error.start + 1})")
    except json.JSONDecodeError as error:
        raise InvalidInput(f"{name}:{error.lineno}: broken Messenger export ({error.msg} at column {error.colno})")
    except RecursionError:
        raise InvalidInput(f"{name}:1: nested deeper than a Messenger export is")
    if not isinstance(document, dict) or not isinstance(document.get("messages"), list):
        raise InvalidInput(f"{name}:1: not a Messenger/Instagram export (no 'messages' list)")
    if _depth(document) > MAX_DEPTH:
        raise InvalidInput(f"{name}:1: nested deeper than {MAX_DEPTH} levels; not a Messenger export")
    return document


def _depth(value, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def _thread(document: dict, source: str, options, place: str, channel: str | None):
    title = clean_name(str(document.get("title") or ""))
    listed = document.get("participants")
    participants = [clean_name(str(p.get("name") or "")) for p in (listed if isinstance(listed, list) else [])
                    if isinstance(p, dict)]
    participants = [p for p in participants if p]
    authors = {clean_name(str(m.get("sender_name"))) for m in document["messages"]
               if isinstance(m, dict) and m.get("sender_name")}
    thread_path = document.get("thread_path")
    from_place = _THREAD_PATH.search(place.replace("\\", "/")) if place else None
    if options.chat:
        key = options.chat
    elif isinstance(thread_path, str) and thread_path.strip():
        key = "fb:" + thread_path.strip()
    elif from_place:
        key = "fb:" + from_place["thread"]
    else:
        people = participants or sorted(authors)
        if len(people) < 2:
            raise InvalidInput(f"{source}: nothing in this export names the thread; give its chat key with --chat KEY")
        key = "fb:" + ", ".join(sorted(people, key=str.casefold))
    chan = channel or _channel(document)
    roles = _roles(participants, authors, title, options)
    if roles is None:
        raise unresolved(source, key, authors | set(participants))
    return key, chan, title, participants, roles


def _channel(document: dict) -> str:
    """Instagram or Facebook Messenger, from what the export says: where its media sit
    (`your_instagram_activity/…`), Instagram's own fields, Messenger's `thread_type`."""
    uris = re.findall(r'"uri": "([^"]{0,80})', json.dumps(document.get("messages", [])[:200], ensure_ascii=False))
    if any(u.startswith("your_instagram_activity") for u in uris):
        return "instagram"
    if any(u.startswith("your_facebook_activity") for u in uris):
        return "messenger"
    if "thread_type" in document:
        return "messenger"
    if document.get("joinable_mode") or "instagram" in json.dumps(document.get("image", "")):
        return "instagram"
    return "messenger"


def _not_a_message(message: dict) -> bool:
    kind = message.get("type")
    if (isinstance(kind, str) and kind in _NOT_MESSAGES) or "call_duration" in message:
        return True
    if message.get("is_unsent") is True:
        return True  # a message its sender took back: nothing of it is left to read
    if "users" in message and str(message.get("content", "")).endswith(("joined the group.", "left the group.")):
        return True
    content = message.get("content")
    if not isinstance(content, str) or len(content) > 400 or any(message.get(f) for f, _ in _MEDIA):
        return False
    content = content.strip()
    if _NOTICE.match(content):
        return True
    acted = _ACTED.match(content)
    if acted is None:
        return False
    actor = normalise(clean_name(acted["actor"]))
    return actor in _YOU or actor == normalise(clean_name(str(message.get("sender_name") or "")))


def _text(message: dict) -> str:
    text = message.get("content") if isinstance(message.get("content"), str) else ""
    media = [label for field, label in _MEDIA if message.get(field) and field != "share"]
    placeholder = " ".join(f"[{label}]" for label in media)
    share = message.get("share")
    if isinstance(share, dict):
        for part in (share.get("share_text"), share.get("link")):
            if isinstance(part, str) and part.strip() and part not in text:
                text = f"{text}\n{part}".strip()
        if not text:
            placeholder = (placeholder + " [link]").strip()
    if placeholder and not text:
        return placeholder
    if placeholder:
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
