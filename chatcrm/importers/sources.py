"""Opening what users have in hand, in front of the importers: a file, stdin, a folder or
a ZIP, and what format each export inside is.

A path is one source or several: a WhatsApp "Export chat" ZIP holds one chat, a Telegram
`ChatExport_DATE/` folder its `result.json`, a Meta "Download your information" ZIP or
folder every thread under `messages/inbox/THREAD/message_N.json` (a thread split over
several files is one chat). Everything is read in place, one member at a time, as a
stream; media files are never read. Formats chatcrm does not read (Discord, Signal,
Slack) are refused by name.

Each source's bytes are hashed (SHA-256) as they are read, in the same pass: a file's, what
stdin gives, a ZIP's or a folder's member (a Meta thread's files one after the other). The
change log knows an export by that digest, wherever it comes from: piped twice, or the same
WhatsApp chat inside another ZIP (`Digest`).
"""

from __future__ import annotations

import bz2  # noqa: F401  (its errors are among those a damaged member raises)
import hashlib
import io
import json
import lzma
import os
import re
import stat
import sys
import zipfile
import zlib
from struct import error as struct_error
from typing import BinaryIO, Callable, Iterator

from chatcrm.errors import InvalidInput, UsageError
from chatcrm.events import Event, Invalid
from chatcrm.importers.limits import MAX_INVALID, excerpt

HEAD_BYTES = 1 << 16
BOM = b"\xef\xbb\xbf"
MAX_MEMBERS = 1 << 17  # entries of a folder or ZIP looked at
MAX_RATIO = 100  # what an archive's members may expand to, times their compressed size…
RATIO_FLOOR = 4 << 20  # …once they have given this many bytes (chat text compresses 5–10 times)
# What reading a damaged member raises: a bad CRC, broken deflate/LZMA/bzip2 data, a cut end.
_DAMAGED = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, OSError, EOFError)
Progress = Callable[[int], None]
Source = tuple[str, str, Iterator]


def source_name(path: str) -> str:
    """The name an input is shown and recorded by: a file name's bytes that are not UTF-8
    (the shell passes them as they are) written as \\xNN, so that the name can be stored."""
    if path == "-":
        return "<stdin>"
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def source_size(path: str) -> int | None:
    if path == "-":
        return None
    try:
        return os.path.getsize(path) if os.path.isfile(path) else None
    except OSError:
        return None


# ------------------------------------------------------------------ content identity


class Digest:
    """The SHA-256 of a source's bytes, taken as its streams are read (`watch`). Known
    (`hexdigest`) once every stream it watches has been read to its end; None before, or
    when a stream was read with a gap."""

    def __init__(self):
        self._hash = hashlib.sha256()
        self._streams = 0
        self._ended = 0
        self._broken = False

    def watch(self, stream: BinaryIO) -> BinaryIO:
        """`stream`, its bytes hashed as they are read (a second reading, after a seek back,
        hashes nothing again)."""
        self._streams += 1
        return io.BufferedReader(_Hashed(stream, self), buffer_size=HEAD_BYTES)

    def hexdigest(self) -> str | None:
        if self._broken or not self._streams or self._ended < self._streams:
            return None
        return self._hash.hexdigest()


class _Hashed(io.RawIOBase):
    """A stream whose bytes go into a Digest as they are first read, in order."""

    def __init__(self, raw, digest: Digest):
        self._raw = raw
        self._digest = digest
        self._position = 0
        self._hashed = 0  # bytes hashed: the stream's first ones
        self._ended = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        try:
            return self._raw.seekable()
        except (OSError, ValueError):
            return False

    def seek(self, offset: int, whence: int = 0) -> int:
        self._position = self._raw.seek(offset, whence)
        return self._position

    def tell(self) -> int:
        return self._position

    def readinto(self, buffer) -> int:
        readinto = getattr(self._raw, "readinto", None)
        if readinto is not None:
            n = readinto(buffer) or 0
            data = memoryview(buffer)[:n]
        else:
            chunk = self._raw.read(len(buffer)) or b""
            n = len(chunk)
            buffer[:n] = chunk
            data = memoryview(buffer)[:n]
        start, end = self._position, self._position + n
        if end > self._hashed:
            if start > self._hashed:  # bytes skipped: no digest
                self._digest._broken = True
            else:
                self._digest._hash.update(data[self._hashed - start:])
            self._hashed = end
        elif n == 0 and start >= self._hashed and not self._ended:
            self._ended = True
            self._digest._ended += 1
        self._position = end
        return n

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


# ------------------------------------------------------------------ one stream


def open_source(path: str, progress: Progress | None = None, digest: Digest | None = None) -> tuple[bytes, BinaryIO]:
    """The first bytes of a file (or `-`, stdin) and a stream that reads it all from the
    start; a regular file's stream can seek (WhatsApp reads it twice). With `digest`, the
    stream's bytes are hashed as they are read."""
    if path == "-":
        raw = sys.stdin.buffer
    else:
        if os.path.isdir(path):
            raise UsageError(f"{path} is a folder, not a file")
        try:
            raw = open(path, "rb", buffering=0)
        except OSError as error:
            raise UsageError(f"cannot read {path}: {error.strerror or error}")
    try:
        head = raw.read(HEAD_BYTES) or b""
        while len(head) < HEAD_BYTES and path != "-" and not _regular(raw):
            more = raw.read(HEAD_BYTES - len(head))  # a pipe gives what it has
            if not more:
                break
            head += more
    except OSError as error:
        raise UsageError(f"cannot read {source_name(path)}: {error.strerror or error}")
    if path != "-" and _regular(raw):
        raw.seek(0)
        whole = _Counted(raw, progress)
    else:
        whole = _Replay(head, raw, progress)
    if digest is not None:
        return head, digest.watch(whole)
    return head, io.BufferedReader(whole, buffer_size=HEAD_BYTES)


def _regular(raw) -> bool:
    try:
        return stat.S_ISREG(os.fstat(raw.fileno()).st_mode)
    except (OSError, ValueError, io.UnsupportedOperation):
        return False


class _Counted(io.RawIOBase):
    """A regular file, reporting progress as it is read; it can seek."""

    def __init__(self, raw, progress: Progress | None):
        self._raw = raw
        self._progress = progress

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def readinto(self, buffer) -> int:
        n = self._raw.readinto(buffer)
        if self._progress is not None and n:
            self._progress(self._raw.tell())
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


class _Replay(io.RawIOBase):
    """Gives back the bytes already read for detection, then the rest of the stream."""

    def __init__(self, head: bytes, rest: BinaryIO, progress: Progress | None):
        self._head = memoryview(head)
        self._rest = rest
        self._progress = progress
        self._done = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if len(self._head):
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
        else:
            read1 = getattr(self._rest, "read1", self._rest.read)
            data = read1(len(buffer))
            n = len(data)
            buffer[:n] = data
        self._done += n
        if self._progress is not None and n:
            self._progress(self._done)
        return n

    def close(self) -> None:
        if self._rest is not sys.stdin.buffer:
            self._rest.close()
        super().close()


# ------------------------------------------------------------------ detection


def _utf16(head: bytes) -> bool:
    """UTF-16 text: its byte-order mark, or every other byte NUL (ASCII in UTF-16)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    sample = head[:200]
    if len(sample) < 8:
        return False
    even, odd = sample[0::2], sample[1::2]
    return even.count(0) >= len(even) * 0.9 > 0 and odd.count(0) == 0 or odd.count(0) >= len(odd) * 0.9 and even.count(0) == 0


def _looks_like_jsonl(first_line: str, complete: bool) -> bool:
    if complete:
        try:
            record = json.loads(first_line)
        except RecursionError:  # deeper than json reads (JSON Lines allows 1,024): its keys tell
            complete = False
        except ValueError:
            return False
        else:
            return isinstance(record, dict) and ("chat" in record or "at" in record)
    # a first line longer than the head: its keys tell
    keys = set(re.findall(r'(?<!\\)"([a-z_]+)"\s*:', first_line[:HEAD_BYTES]))
    return bool(keys & {"chat", "at"}) and not keys & {"messages", "participants", "chats"}


def detect(head: bytes, path: str) -> str:
    """The format of a file from its first bytes (and, failing that, its name)."""
    from chatcrm.importers import FORMATS, whatsapp

    name = source_name(path)
    if _utf16(head):
        raise InvalidInput(f"{name}:1: UTF-16 text; save it as UTF-8")
    text = head[len(BOM):] if head.startswith(BOM) else head
    stripped = text.lstrip()
    if not stripped:
        raise InvalidInput(f"{name}: the file is empty; there is nothing to import")
    from chatcrm.importers.live import detect as detect_live

    live = detect_live(stripped)
    if live:
        return live
    nul = text.find(b"\0", 0, len(text) - len(stripped) + 4096)
    if nul >= 0:
        line = text.count(b"\n", 0, nul) + 1
        raise InvalidInput(f"{name}:{line}: binary data (a NUL byte), not a chat export")
    decoded = stripped.decode("utf-8", errors="replace")
    _refuse_telegram_html(decoded, path, name)
    first_line, newline, _ = decoded.partition("\n")
    complete = bool(newline) or len(head) < HEAD_BYTES
    first_line = first_line.strip()
    if decoded.startswith("{"):
        if _looks_like_jsonl(first_line, complete):
            return "jsonl"
        return _json_document_kind(decoded, name)
    unsupported = _unsupported_text(decoded, path)
    if unsupported:
        raise InvalidInput(f"{name}:1: {unsupported}")
    if whatsapp.header_line(first_line) is not None:
        return "whatsapp"
    if re.match(r"\[\s*(?:[\[{\"\]]|-?\d+(?:\.\d+)?\s*[,\]]|true|false|null)", decoded):  # not a `[stamp]`
        if re.search(r'"ts"\s*:\s*"\d+\.\d+"', decoded) and '"type"' in decoded:
            raise InvalidInput(f"{name}:1: this is a Slack export, which chatcrm does not read")
        raise InvalidInput(f"{name}:1: a JSON array is not an export chatcrm reads (use JSON Lines: one event per line)")
    columns = [c.strip().strip('"').lower() for c in first_line.split(",")]
    if "chat" in columns and "at" in columns:
        return "csv"
    extension = os.path.splitext(path)[1].lower()
    by_extension = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".txt": "whatsapp"}
    if extension in by_extension:
        return by_extension[extension]
    raise InvalidInput(
        f"{name}:1: cannot tell the format of this file; name it with --format ({', '.join(FORMATS)})"
    )


_TELEGRAM_HTML = ("a Telegram HTML export; export the chat as JSON instead (Telegram Desktop: Export chat history, "
                  "Format: Machine-readable JSON)")


def _refuse_telegram_html(decoded: str, path: str, name: str) -> None:
    if re.match(r"\s*<(?:!DOCTYPE html|html)", decoded, re.I) and (
            re.search(r"(?:^|/)messages\d*\.html$", path) or "Exported Data" in decoded or "telegram" in decoded.lower()):
        raise InvalidInput(f"{name}:1: {_TELEGRAM_HTML}")


def _unsupported_text(decoded: str, path: str) -> str | None:
    """What a text file is when it is a chat export chatcrm does not read."""
    lines = decoded.splitlines()[:20]
    # signal-export's Markdown: `[2024-03-05 20:11] Name: text` — ISO dates, brackets,
    # no seconds, a layout WhatsApp never writes.
    signal = sum(1 for line in lines if re.match(r"\[\d{4}-\d\d-\d\d \d\d:\d\d\] [^:]+:", line))
    if signal and (signal * 2 >= len([line for line in lines if line.startswith("[")]) or path.endswith(".md")):
        return "this is a Signal export, which chatcrm does not read"
    return None


def _json_document_kind(decoded: str, name: str) -> str:
    keys = set(re.findall(r'(?<!\\)"([A-Za-z_]+)"\s*:', decoded))
    if {"guild", "channel", "messages"} <= keys or "exportedAt" in keys or "messageCount" in keys:
        raise InvalidInput(f"{name}:1: this is a Discord export (DiscordChatExporter), which chatcrm does not read")
    if "participants" in keys or "timestamp_ms" in keys or "sender_name" in keys:
        return "messenger"
    if keys & {"personal_information", "chats", "date_unixtime", "from_id"} or {"messages", "type"} <= keys:
        return "telegram"
    raise InvalidInput(
        f"{name}:1: a JSON document chatcrm does not recognise (expected JSON Lines events, "
        "a Telegram or a Messenger/Instagram export); name the format with --format"
    )


# ------------------------------------------------------------------ sources


def read_source(path: str, fmt: str | None, options, progress: Progress | None = None) -> Source:
    """(source name, format, events) for one input file."""
    head, stream = open_source(path, progress)
    return _file_source(source_name(path), head, stream, fmt, options, _label(path))


def _file_source(name: str, head: bytes, stream: BinaryIO, fmt: str | None, options, label: str,
                 place: str = "") -> Source:
    from chatcrm.importers import messenger, reader, whatsapp

    try:
        if fmt == "telegram":
            _refuse_telegram_html(head.decode("utf-8", errors="replace"), name, name)
        chosen = fmt or detect(head, name)
    except BaseException:
        stream.close()
        raise
    if chosen == "whatsapp":
        events = whatsapp.read(stream, name, options, label=label)
    elif chosen == "messenger":
        events = messenger.read_thread([(name, lambda: stream)], name, options, place=place or name)
    else:
        events = reader(chosen)(stream, name, options)
    return name, chosen, _bounded(events, stream, name)


def _bounded(events: Iterator, stream: BinaryIO | None, name: str) -> Iterator[Event | Invalid]:
    """The events of one source; a file with too many invalid records is refused."""
    invalid = 0
    try:
        for event in events:
            if isinstance(event, Invalid):
                if len(event.reason) > 200:  # a reason quotes the input: keep it short
                    event.reason = excerpt(event.reason, 200)
                invalid += 1
                if invalid > MAX_INVALID:
                    raise InvalidInput(
                        f"{name}:{event.line}: more than {MAX_INVALID} invalid records; is this the right file?"
                    )
            yield event
    except RecursionError:
        raise InvalidInput(f"{name}: nested too deep to be an export")
    finally:
        if stream is not None:
            stream.close()


def read_sources(path: str, fmt: str | None, options, progress: Progress | None = None,
                 digests: list[Digest] | None = None) -> Iterator[Source]:
    """Every (source name, format, events) a path holds: a file, stdin, a folder or a ZIP.
    With `digests`, the Digest of each source's bytes is appended to it as the source is
    yielded (known once its events have all been read)."""
    if path != "-" and os.path.isdir(path):
        yield from _container(_Folder(path), fmt, options, digests)
        return
    digest = Digest() if digests is not None else None
    head, stream = open_source(path, progress, digest)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        stream.close()
        if path == "-":
            raise InvalidInput("<stdin>:1: a ZIP archive cannot be read from stdin; give its path")
        _entry_count(path)
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
            raise InvalidInput(f"{path}: a broken ZIP archive ({excerpt(str(error), 60)})")
        with archive:
            yield from _container(_Zip(path, archive), fmt, options, digests)
        return
    source = _file_source(source_name(path), head, stream, fmt, options, _label(path))
    if digests is not None:
        digests.append(digest)
    yield source


def _label(path: str) -> str:
    """The name a file's own chat name may be read from (stdin has none)."""
    return "" if path == "-" else source_name(os.path.basename(path))


class _Folder:
    def __init__(self, root: str):
        self.name = root.rstrip("/") or root
        self.label = source_name(os.path.basename(os.path.abspath(root)))
        paths = []
        for base, folders, files in os.walk(root):
            folders.sort()
            for file in sorted(files):
                if not os.path.isfile(os.path.join(base, file)):
                    continue  # a named pipe, a socket, a device or a dangling link: no export's file
                paths.append(os.path.relpath(os.path.join(base, file), root).replace(os.sep, "/"))
                if len(paths) > MAX_MEMBERS:
                    raise InvalidInput(f"{root}: more than {MAX_MEMBERS} files; not an export folder")
        self.paths = paths

    def open(self, member: str) -> BinaryIO:
        try:
            return open(os.path.join(self.name, member), "rb")
        except OSError as error:
            raise UsageError(f"cannot read {self.where(member)}: {error.strerror or error}")

    def where(self, member: str) -> str:
        return source_name(os.path.join(self.name, member))


def _entry_count(path: str) -> None:
    """Refuses a ZIP with more than MAX_MEMBERS entries from the count its central
    directory's end record gives, before the entries are listed (each costs memory)."""
    try:
        with open(path, "rb") as file:
            end = zipfile._EndRecData(file)  # the end record (ZIP64's too), as zipfile reads it
    except (OSError, ValueError, EOFError, struct_error, zipfile.BadZipFile):
        return  # ZipFile itself says what is wrong
    if end and end[zipfile._ECD_ENTRIES_TOTAL] > MAX_MEMBERS:
        raise InvalidInput(f"{source_name(path)}: more than {MAX_MEMBERS} entries; not an export archive")


class _Zip:
    def __init__(self, path: str, archive: zipfile.ZipFile):
        self.name = source_name(path)
        self.label = source_name(os.path.splitext(os.path.basename(path))[0])
        self.archive = archive
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise InvalidInput(f"{path}: more than {MAX_MEMBERS} entries; not an export archive")
        self.paths = [i.filename for i in infos if not i.is_dir()]
        self.compressed = 0  # of the members read so far
        self.expanded = 0  # bytes they gave (each byte once)

    def open(self, member: str) -> BinaryIO:
        try:
            info = self.archive.getinfo(member)
            return _Member(self.archive.open(info), self, info, self.where(member))
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, ValueError, KeyError, EOFError,
                zlib.error, lzma.LZMAError) as error:
            raise InvalidInput(f"{self.where(member)}: cannot read it from the archive ({excerpt(str(error), 60)})")

    def where(self, member: str) -> str:
        return f"{self.name}/{member}"


class _Member(io.RawIOBase):
    """A ZIP member as it is read: damage found while decompressing it is refused at the
    line reached (`ARCHIVE/MEMBER:LINE: the archive is damaged (…)`), and so is an archive
    whose members expand more than MAX_RATIO times their size, so that a few KB cannot
    fill the disk."""

    def __init__(self, raw, archive: _Zip, info: zipfile.ZipInfo, where: str):
        self._raw = raw
        self._archive = archive
        self._where = where
        self._position = 0
        self._lines = 0  # line breaks before the position
        self._seen = 0  # the member's bytes counted in the archive's total
        archive.compressed += max(info.compress_size, 1)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        try:
            self._position = self._raw.seek(offset, whence)
        except _DAMAGED as error:
            raise self._damaged(error)
        if self._position == 0:
            self._lines = 0
        return self._position

    def tell(self) -> int:
        return self._position

    def readinto(self, buffer) -> int:
        try:
            data = self._raw.read(len(buffer))
        except _DAMAGED as error:
            raise self._damaged(error)
        n = len(data)
        buffer[:n] = data
        self._lines += data.count(b"\n")
        self._position += n
        if self._position > self._seen:
            archive = self._archive
            archive.expanded += self._position - self._seen
            self._seen = self._position
            if archive.expanded > RATIO_FLOOR and archive.expanded > MAX_RATIO * archive.compressed:
                raise InvalidInput(
                    f"{self._where}:{self._lines + 1}: the archive expands more than {MAX_RATIO} times its "
                    f"compressed size (over {RATIO_FLOOR >> 20} MiB); not a chat export"
                )
        return n

    def _damaged(self, error: BaseException) -> InvalidInput:
        reason = excerpt(str(error) or type(error).__name__, 60)
        return InvalidInput(f"{self._where}:{self._lines + 1}: the archive is damaged ({reason})")

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


_META_THREAD = re.compile(
    r"(?:^|/)messages/(?P<thread>(?:inbox|archived_threads|filtered_threads|message_requests|e2ee_cutover)/[^/]+)"
    r"/message_(?P<n>\d{1,6})\.json$"
)
_TELEGRAM = re.compile(r"(?:^|/)result\.json$")


def _container(tree, fmt: str | None, options, digests: list[Digest] | None = None) -> Iterator[Source]:
    from chatcrm.importers import messenger, telegram, whatsapp

    def identified(source: Source, digest: Digest) -> Source:
        if digests is not None:
            digests.append(digest)
        return source

    def opener(member: str, digest: Digest):
        return lambda: digest.watch(tree.open(member)) if digests is not None else tree.open(member)

    paths = tree.paths
    lowered = {p.lower() for p in paths}
    if {"channels.json", "users.json"} <= {p.rsplit("/", 1)[-1].lower() for p in lowered}:
        raise InvalidInput(f"{tree.name}: this is a Slack export, which chatcrm does not read")
    threads: dict[str, list[tuple[int, str]]] = {}
    for path in paths:
        match = _META_THREAD.search(path)
        if match:
            threads.setdefault(match["thread"], []).append((int(match["n"]), path))
    if threads:
        hint = tree.label.lower() + " " + " ".join(p.lower() for p in paths[:1])
        for thread, files in sorted(threads.items()):
            files.sort()
            first = files[0][1]
            channel = "instagram" if "instagram" in (first.lower() + " " + hint) else None
            if "your_facebook_activity" in first or "facebook" in hint:
                channel = "messenger"
            digest = Digest()  # a thread's files, one after the other
            opens = [(tree.where(p), opener(p, digest)) for _, p in files]
            name = tree.where(first.rsplit("/", 1)[0])
            yield identified((name, "messenger", _bounded(
                messenger.read_thread(opens, name, options, place=first, channel=channel), None, name)), digest)
        return
    results = [p for p in paths if _TELEGRAM.search(p) and p.count("/") <= 2]
    if not results and any(re.search(r"(?:^|/)messages\d*\.html$", p) for p in paths):
        raise InvalidInput(f"{tree.name}: {_TELEGRAM_HTML}")
    if results:
        for path in results:
            name = tree.where(path)
            digest = Digest()
            stream = opener(path, digest)()
            yield identified((name, "telegram", _bounded(telegram.read(stream, name, options), stream, name)), digest)
        return
    chats = [p for p in paths if p.lower().endswith(".txt") and whatsapp.chat_file_name(p.rsplit("/", 1)[-1])]
    if not chats:
        texts = [p for p in paths if p.lower().endswith(".txt")]
        chats = texts if len(texts) == 1 else []
    if chats:
        for path in chats:
            name = tree.where(path)
            digest = Digest()
            stream = opener(path, digest)()
            member = source_name(os.path.splitext(path.rsplit("/", 1)[-1])[0])
            label = member if whatsapp.names_a_chat(member) else tree.label
            yield identified((name, "whatsapp", _bounded(whatsapp.read(stream, name, options, label=label), stream,
                                                         name)), digest)
        return
    if any(p.lower().endswith(".md") for p in paths) and any("signal" in p.lower() for p in lowered | {tree.label.lower()}):
        raise InvalidInput(f"{tree.name}: this is a Signal export, which chatcrm does not read")
    raise InvalidInput(
        f"{tree.name}: holds no export chatcrm reads (a WhatsApp chat .txt, a Telegram result.json, "
        "or Meta's messages/inbox/THREAD/message_N.json)"
    )
