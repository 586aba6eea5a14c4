"""Time in chatcrm: stored as UTC text `YYYY-MM-DDTHH:MM:SSZ` (whole seconds).

The fixed width makes text order equal time order, so SQLite can sort and index the
columns directly, and the `sqlite3` shell shows readable values.

The times chatcrm keeps run from `EARLIEST` to `LATEST`: from the Unix epoch to a day
before the calendar's end, so that every zone (offsets up to ±23:59) can show them.
A time outside that range is refused wherever it enters — in a file (invalid input), in
an option or $CHATCRM_NOW (a usage error) — and one stored before this rule still
displays (in UTC where the zone cannot show it).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone, tzinfo
from typing import NamedTuple

from chatcrm.errors import UsageError, clipped

UTC = timezone.utc
EARLIEST = "1970-01-01T00:00:00Z"
LATEST = "9999-12-30T23:59:59Z"
RANGE = f"{EARLIEST} to {LATEST}"
MAX_OFFSET = timedelta(hours=23, minutes=59)
_HAS_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d")


def zone(name: str | None) -> tzinfo:
    """The tzinfo for `--tz NAME` (an IANA name, `UTC`, or an offset like `+03:00`)."""
    if name is None or name.upper() in ("UTC", "Z"):
        return UTC
    if re.fullmatch(r"[+-]\d\d:?\d\d", name):
        sign = 1 if name[0] == "+" else -1
        hours, minutes = int(name[1:3]), int(name[-2:])
        if hours > 23 or minutes > 59:
            raise UsageError(f"unknown time zone {name!r} (an offset runs from -23:59 to +23:59, e.g. +03:00)")
        return timezone(sign * timedelta(hours=hours, minutes=minutes))
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name no file can have (too long)
        raise UsageError(f"unknown time zone {clipped(name)!r} (use an IANA name such as Europe/Madrid, or +03:00)")


def stored(moment: datetime) -> str:
    """A datetime (aware) as stored text, truncated to the second; raises ValueError for
    a time outside `EARLIEST`–`LATEST`."""
    try:
        u = moment.astimezone(UTC)
    except (OverflowError, ValueError):
        u = None
    text = None if u is None else f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}Z"
    if text is None or not EARLIEST <= text <= LATEST:
        raise ValueError(f"{moment.isoformat()} is outside the times chatcrm keeps ({RANGE})")
    return text


# Stored text with every field in range: only the day of the month can still be wrong
# (2026-02-30), and the days seen are few, so each is checked once.
_STORED_IN_RANGE = re.compile(
    r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\dZ\Z"
)
_DAYS_SEEN: dict[str, bool] = {}


def stored_text(value: object) -> str | None:
    """`value` itself when it is already stored time text (most imported times), else
    None: `parse` then reads it, or says what is wrong with it."""
    if type(value) is not str or not _STORED_IN_RANGE.match(value) or not EARLIEST <= value <= LATEST:
        return None
    day = value[:10]
    valid = _DAYS_SEEN.get(day)
    if valid is None:
        try:
            datetime.fromisoformat(day)
            valid = True
        except ValueError:
            valid = False
        if len(_DAYS_SEEN) < 100_000:
            _DAYS_SEEN[day] = valid
    return value if valid else None


def parse(value: object, tz: tzinfo = UTC) -> str:
    """ISO 8601 text to stored text; raises ValueError when it is not a readable time.

    A value with an offset (or `Z`) is converted to UTC; one without is read in `tz`.
    """
    if not isinstance(value, str):
        raise ValueError(f"time must be a string, not {type(value).__name__}")
    text = value.strip()
    known = stored_text(text)
    if known is not None:
        return known
    try:
        if not _HAS_TIME.match(text):
            raise ValueError("expected ISO 8601, e.g. 2026-11-24T09:15:00Z")
        if text[-1] in "Zz":
            text = text[:-1] + "+00:00"
        moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError) as error:
        reason = str(error) if "ISO 8601" in str(error) or "range" in str(error) else "expected ISO 8601, e.g. 2026-11-24T09:15:00Z"
        raise ValueError(f"unreadable time {value!r} ({reason})") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return stored(moment)


def from_epoch(seconds: float) -> str:
    """Seconds since the epoch as stored text; ValueError outside `EARLIEST`–`LATEST`."""
    try:
        moment = datetime.fromtimestamp(int(seconds), UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"{seconds} seconds after 1970 is outside the times chatcrm keeps ({RANGE})") from None
    return stored(moment)


def to_datetime(value: str) -> datetime:
    return datetime.fromisoformat(value[:-1]).replace(tzinfo=UTC)


def epoch(value: str) -> int:
    return int(to_datetime(value).timestamp())


def current() -> str:
    """The machine's current time as stored text (the CLI reads the clock; nothing else)."""
    return stored(datetime.now(UTC))


class Moment(NamedTuple):
    """A stored time inside a sentence (an error, a confirmation): shown in the user's
    zone by whoever prints it (`sentence`), as stored text by `str()`."""

    value: str

    def __str__(self) -> str:
        return self.value


def sentence(value: str, tz: tzinfo | None) -> str:
    """A stored time for a sentence, to the second: `2026-11-24T17:00:00Z` in UTC, with
    its offset in another zone (`2026-11-24T18:00:00+01:00`)."""
    if tz is UTC:
        return value
    local = _local(value, tz)
    if local is None or local.utcoffset() == timedelta(0):
        return value
    return local.isoformat(timespec="seconds")


def _local(value: str, tz: tzinfo | None) -> datetime | None:
    """A stored time in `tz` (the machine's zone when None), or None where that zone
    cannot show it (a time stored before the range was kept, at the calendar's edge)."""
    try:
        moment = to_datetime(value)
        return moment.astimezone(tz) if tz is not None else moment.astimezone()
    except (OverflowError, ValueError, OSError):
        return None


def display(value: str | None, tz: tzinfo | None) -> str:
    """A stored time for a table: `YYYY-MM-DD HH:MM` in the user's zone."""
    if not value:
        return ""
    local = _local(value, tz)
    if local is None:
        return f"{value[:10]} {value[11:16]} UTC"
    return f"{local.year:04d}-{local.month:02d}-{local.day:02d} {local.hour:02d}:{local.minute:02d}"


def duration(seconds: float, *, precise: bool = False) -> str:
    """A short human duration: `45s`, `12m` (`12m 30s` when `precise`), `3h 05m`, `2d 04h`."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m {seconds % 60:02d}s" if precise else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


_DURATION_PART = re.compile(r"(\d+)\s*(w|d|h|m|s)", re.IGNORECASE)
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_ISO_DURATION = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?\Z", re.IGNORECASE)


MAX_DURATION = 8_000 * 365 * 86400  # about the span of the times chatcrm keeps


def parse_duration(value: str) -> int:
    """`15m`, `1h30m`, `2d`, `90s`, `1w` (or ISO 8601 `PT15M`) as seconds, at most
    `MAX_DURATION`; raises ValueError."""
    text = value.strip()
    if re.search(r"\d{13}", text):  # more than MAX_DURATION in any unit (and no 10,000-digit number)
        raise ValueError(f"duration {value[:40]!r} is too long (at most 8000 years)")
    iso = _ISO_DURATION.match(text)
    if iso and any(iso.groups()) and not text.upper().endswith("T"):
        days, hours, minutes, seconds = (int(g or 0) for g in iso.groups())
        total = days * 86400 + hours * 3600 + minutes * 60 + seconds
    else:
        compact = text.replace(" ", "")
        parts = _DURATION_PART.findall(compact)
        if not parts or "".join(n + u for n, u in parts) != compact:
            raise ValueError(f"unreadable duration {value!r} (use e.g. 90s, 15m, 1h30m, 2d)")
        total = sum(int(n) * _UNIT_SECONDS[u.lower()] for n, u in parts)
    if total <= 0:
        raise ValueError(f"duration {value!r} must be longer than zero")
    if total > MAX_DURATION:
        raise ValueError(f"duration {value!r} is too long (at most 8000 years)")
    return total


_DATE_ONLY = re.compile(r"\d{4}-\d\d-\d\d\Z")


def parse_moment(value: str, tz: tzinfo, now_text: str) -> str:
    """A period bound: an ISO 8601 time, a date (its midnight in `tz`), or a duration
    meaning that long before `now_text` (`7d`). Raises ValueError."""
    text = value.strip()
    if _DATE_ONLY.match(text):
        try:
            day = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"unreadable date {value!r}") from None
        return stored(day.replace(tzinfo=tz))
    if _HAS_TIME.match(text):
        return parse(text, tz)
    try:
        seconds = parse_duration(text)
    except ValueError as error:
        if "too long" in str(error):
            raise
        raise ValueError(f"unreadable time {value!r} (use a date 2026-11-24, a time 2026-11-24T09:00, or 7d for "
                         "seven days ago)") from None
    start = epoch(now_text) - seconds
    if start < 0:
        raise ValueError(f"{value!r} ago is before {EARLIEST}, the earliest time chatcrm keeps")
    return from_epoch(start)
