"""`--output FILE`: writing to what is there.

- A device (`/dev/null`), a named pipe, a socket, or a descriptor of this process
  (`/dev/stdout`, `/dev/fd/N`, as `>(gzip > x.gz)` gives) is written in place: it is
  opened and written, never replaced.
- A symlink is followed: its target is written (and created, if the link dangles).
- A regular file is replaced atomically: a temporary file in the target's folder, then a
  rename, so that a reader never sees half of it; an existing file keeps its mode (and,
  where allowed, its owner). A new file is readable by its owner only (0600), as the
  database is: an export holds the same personal data.
- A folder, a missing folder, or a place that cannot be written is a usage error (exit 2)
  and nothing is written; so is the database being read (or its -wal, -shm or -journal
  file), under any name that leads to it; a write that fails part-way (a full disk) leaves the target as
  it was (exit 1).
"""

from __future__ import annotations

import os
import stat
import tempfile
from typing import Callable, TextIO, TypeVar

from chatcrm.errors import ChatcrmError, UsageError

T = TypeVar("T")
_OWN_DESCRIPTORS = ("/dev/stdout", "/dev/stderr", "/dev/fd/", "/proc/self/fd/", "/dev/tty")


def write_to(path: str, write: Callable[[TextIO], T], database: str | os.PathLike | None = None) -> T:
    """Write text to `path` with `write(stream)` as described above; returns its result.
    `database`: the database the text is read from, which `path` must not lead to."""
    if not path:
        raise UsageError("--output: the file name is empty")
    try:
        info = os.stat(path)
    except FileNotFoundError:
        info = None
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}")
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise UsageError(f"cannot write {path}: it is a folder; name a file in it")
    if database is not None and _is_database(path, info, os.fspath(database)):
        raise UsageError(f"cannot write {path}: it is the database being read; name another file")
    if path.startswith(_OWN_DESCRIPTORS) or (info is not None and not stat.S_ISREG(info.st_mode)):
        return _in_place(path, write)
    return _replace(os.path.realpath(path), path, info, write)


def _is_database(path: str, info: os.stat_result | None, database: str) -> bool:
    """Whether `path` is the database or one of the files SQLite keeps beside it."""
    target = os.path.realpath(path)
    for suffix in ("", "-wal", "-shm", "-journal"):
        other = database + suffix
        if os.path.realpath(other) == target:
            return True
        try:
            theirs = os.stat(other)
        except OSError:
            continue
        if info is not None and (theirs.st_dev, theirs.st_ino) == (info.st_dev, info.st_ino):
            return True  # a hard link, or a path the names do not show
    return False


def _descriptor(path: str) -> int | None:
    """The descriptor of this process that `path` names (/dev/stdout, /dev/fd/3), if any."""
    named = {"/dev/stdout": "1", "/dev/stderr": "2"}.get(path)
    for prefix in ("/dev/fd/", "/proc/self/fd/"):
        if path.startswith(prefix):
            named = path[len(prefix):]
    return int(named) if named is not None and named.isdigit() else None


def _in_place(path: str, write: Callable[[TextIO], T]) -> T:
    """Written through what is open already (the shell's `>>` appends), or opened
    without truncating (a device or a pipe has nothing to truncate)."""
    try:
        fd = _descriptor(path)
        fd = os.dup(fd) if fd is not None else os.open(path, os.O_WRONLY)
        stream = open(fd, "w", encoding="utf-8", newline="")
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}")
    try:
        with stream:
            return write(stream)
    except BrokenPipeError:
        raise ChatcrmError(f"cannot write {path}: its reader went away")
    except OSError as error:
        raise ChatcrmError(f"cannot write {path}: {error.strerror or error}")


def _replace(target: str, path: str, info: os.stat_result | None, write: Callable[[TextIO], T]) -> T:
    folder = os.path.dirname(target)
    if info is not None and not os.access(target, os.W_OK):
        raise UsageError(f"cannot write {path}: permission denied")
    try:
        fd, temporary = tempfile.mkstemp(prefix=".chatcrm-", suffix=".tmp", dir=folder)
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as stream:
            result = write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        if info is not None:
            os.chmod(temporary, stat.S_IMODE(info.st_mode))
            if hasattr(os, "chown") and (info.st_uid, info.st_gid) != (os.getuid(), os.getgid()):
                try:
                    os.chown(temporary, info.st_uid, info.st_gid)
                except OSError:
                    pass  # only root may give a file away; it then belongs to whoever wrote it
        os.replace(temporary, target)
    except BaseException as error:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        if isinstance(error, OSError) and not isinstance(error, BrokenPipeError):
            raise ChatcrmError(f"cannot write {path}: {error.strerror or error}; it is unchanged") from None
        raise
    return result
