"""WhatsApp's "Export chat" text file, Android and iOS, in the locales' many date styles.

The file is read twice: a first pass over the message headers infers whether dates are
day-first or month-first (as careful parsers do: a day above 12 decides; otherwise the
order under which the dates run forward); the second pass reads the messages. Input
that cannot be re-read (stdin) is spooled to a temporary file, so memory stays flat.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from datetime import datetime
from typing import BinaryIO, Iterator

from chatcrm import times
from chatcrm.errors import InvalidInput, UsageError
from chatcrm.events import Event, Invalid
from chatcrm.importers.roles import Roles, normalise, unresolved

_MARKS = "\u200e\u200f\ufeff"
_SPACE = "[ \u00a0\u202f]"
HEADER = re.compile(
    rf"^[{_MARKS}]*\[?(?P<a>\d{{1,4}})(?P<sep>[./-])(?P<b>\d{{1,2}})[./-](?P<c>\d{{2,4}}),?{_SPACE}+"
    rf"(?P<hour>\d{{1,2}})[:.](?P<minute>\d{{2}})(?:[:.](?P<second>\d{{2}}))?"
    rf"(?:{_SPACE}*(?P<ampm>[aApP])\.?{_SPACE}?[mM]\.?)?"
    rf"(?:\]{_SPACE}*|{_SPACE}+-{_SPACE}+|{_SPACE}*-{_SPACE}*)(?P<rest>.*)$"
)
_AUTHOR = re.compile(r"^(?P<author>[^:]{1,120}?):(?: |$)?(?P<text>.*)$", re.S)

# Notices WhatsApp writes into the chat, not messages anyone sent. On iOS some are written
# as if the contact had sent them, so they are recognised by their text.
SYSTEM = re.compile(
    r"end-to-end encrypt|secured with end-to-end|chiffrés de bout en bout|cifrados de extremo a extremo|"
    r"Ende-zu-Ende|koncovým šifrováním|crittografia end-to-end|criptografia de ponta a ponta|"
    r"security code (?:with .* )?changed|code de sécurité|código de seguridad|"
    r"created group|created this group|added you|were added|joined using this group's invite link|"
    r"changed the subject|changed this group's|changed the group|You're now an admin|"
    r"changed their phone number|message timer|disappearing messages|left$|removed \S",
    re.I,
)
_NOTICE = re.compile(r"(Messages and calls are end-to-end encrypted|Your security code with)")
_FILE_NAME = re.compile(r"^WhatsApp Chat(?: with | - )(?P<name>.+?)(?:\.txt)?$", re.I)


def read(stream: BinaryIO, source: str, options) -> Iterator[Event | Invalid]:
    with tempfile.TemporaryFile() as spool:
        shutil.copyfileobj(stream, spool, 1 << 20)
        spool.seek(0)
        order, authors = _survey(_lines(spool, source))
        key = chat_key(source, options)
        roles = _roles(authors, source, options)
        if roles is None:
            raise unresolved(source, key, authors)
        spool.seek(0)
        yield from _messages(_lines(spool, source), source, key, order, roles, options)


def _lines(spool, source: str) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(spool, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidInput(f"{source}:{number}: not UTF-8 text (byte {error.start + 1})")
        if number == 1:
            line = line.lstrip("\ufeff")
        yield number, line.rstrip("\r\n")


def _survey(lines) -> tuple[str, set[str]]:
    """The date order (`dmy`, `mdy` or `ymd`) and the message authors, from every header."""
    forward = {"dmy": 0, "mdy": 0}
    previous: dict[str, tuple] = {}
    decided = None
    dot = False
    authors: set[str] = set()
    for _, line in lines:
        match = HEADER.match(line)
        if not match:
            continue
        message = _message_part(match["rest"])
        if message:
            authors.add(message[0])
        if decided:
            continue
        a, b, c = match["a"], match["b"], match["c"]
        if len(a) == 4:
            decided = "ymd"
            continue
        a, b = int(a), int(b)
        if a > 12 or b > 12:
            decided = "dmy" if a > 12 else "mdy"
            continue
        dot = dot or match["sep"] == "."
        for order, key in (("dmy", (int(c), b, a)), ("mdy", (int(c), a, b))):
            if order in previous and key >= previous[order]:
                forward[order] += 1
            previous[order] = key
    if decided is None:
        decided = "mdy" if forward["mdy"] > forward["dmy"] and not dot else "dmy"
    return decided, authors


def _message_part(rest: str) -> tuple[str, str] | None:
    """(author, text) of a header's remainder, or None for a notice WhatsApp wrote itself."""
    match = _AUTHOR.match(rest)
    if not match:
        return None  # no author: group created, encryption, "You were added"…
    text = match["text"].lstrip(_MARKS)
    if _NOTICE.match(text) or (match["text"].startswith("\u200e") and SYSTEM.search(text)):
        return None
    return match["author"].strip(_MARKS + " "), text


def _moment(match, order: str, tz) -> str:
    a, b, c = int(match["a"]), int(match["b"]), int(match["c"])
    year, month, day = {"dmy": (c, b, a), "mdy": (c, a, b), "ymd": (a, b, c)}[order]
    if year < 100:
        year += 2000
    hour = int(match["hour"])
    if match["ampm"]:
        pm = match["ampm"] in "pP"
        if hour == 12:
            hour = 0
        if pm:
            hour += 12
    local = datetime(year, month, day, hour, int(match["minute"]), int(match["second"] or 0))
    return times.stored(local.replace(tzinfo=tz))


def chat_key(source: str, options) -> str:
    if options.chat:
        return options.chat
    if source == "<stdin>":
        raise UsageError("a WhatsApp export read from stdin needs its chat key: --chat KEY")
    stem = os.path.splitext(os.path.basename(source))[0]
    named = _FILE_NAME.match(stem)
    return "wa:" + (named["name"] if named else stem)


def _messages(lines, source: str, key: str, order: str, roles: Roles, options) -> Iterator[Event | Invalid]:
    pending: list | None = None  # [line, at, author, text lines] of the message being read
    seen_header = False
    for number, line in lines:
        match = HEADER.match(line)
        if not match:
            if pending is not None:
                pending[3].append(line)
            elif line.strip() and not seen_header:
                raise InvalidInput(f"{source}:{number}: not a WhatsApp chat export (no date at the start of the line)")
            continue
        seen_header = True
        if pending is not None:
            yield _event(pending, key, roles, source)
            pending = None
        try:
            at = _moment(match, order, options.tz)
        except ValueError as error:
            yield Invalid(source, number, f"impossible date or time: {error}")
            continue
        message = _message_part(match["rest"])
        if message is not None:
            pending = [number, at, message[0], [message[1]]]
    if pending is not None:
        yield _event(pending, key, roles, source)
    if not seen_header:
        raise InvalidInput(f"{source}:1: not a WhatsApp chat export (no message header found)")


def _event(pending: list, key: str, roles: Roles, source: str) -> Event:
    number, at, author, text_lines = pending
    direction = roles.direction(author)
    return Event(
        "message", key, at, direction=direction, author=author, text="\n".join(text_lines),
        channel="whatsapp", contact=author if direction == "client" else None, source=source, line=number,
    )


def _roles(authors: set[str], source: str, options) -> Roles | None:
    """--agent names the employees; else a chat named after one of exactly two authors
    (`WhatsApp Chat with Ana.txt`) makes Ana the client and the other the employee."""
    if options.agents:
        return Roles(options.agents)
    named = _FILE_NAME.match(os.path.splitext(os.path.basename(source))[0]) if source != "<stdin>" else None
    if named and len(authors) == 2:
        others = [a for a in authors if normalise(a) != normalise(named["name"])]
        if len(others) == 1:
            return Roles(tuple(others))
    return None
