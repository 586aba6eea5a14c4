"""The one renderer: tables (tabulate), JSON, JSON Lines, CSV, colours and progress."""

from __future__ import annotations

import re
import sys
from contextlib import contextmanager
from datetime import tzinfo
from itertools import islice
from typing import Callable, Iterable, Iterator, TextIO

from chatcrm import times
from chatcrm.errors import UsageError
from chatcrm.rules.statuses import DUE, GREEN, GREY, PENDING, STATUSES, UNREAD

MACHINE_FORMATS = ("json", "jsonl", "csv")
IDS = "ids"
DEFAULT_TABLE = "simple"

# Stable, documented field names (README "JSON fields").
LIST_FIELDS = (
    "deal_id",
    "deal_key",
    "title",
    "contact",
    "channel",
    "status",
    "waiting_since",
    "waiting_seconds",
    "overdue",
    "due_at",
    "responsible",
    "open_chats",
    "active_activities",
    "last_message_at",
    "last_message",
    "oldest_active_at",
    "last_event_at",
    "created_at",
)
CHANGE_FIELDS = (
    "change_id",
    "at",
    "command",
    "arguments",
    "files",
    "messages_added",
    "events_added",
    "present",
    "directions_changed",
    "removed",
    "facts",
    "undoes",
    "undone_by",
)
TIMELINE_FIELDS = (
    "at",
    "kind",
    "chat_id",
    "activity_id",
    "deal_id",
    "deal_key",
    "chat_key",
    "channel",
    "opened_by",
    "unread",
    "waiting_since",
    "state",
    "direction",
    "author",
    "text",
    "agent",
    "delivery",
    "due_at",
    "note",
)


def check_format(fmt: str | None, *, ids: bool = False) -> str:
    """`--format`: json, jsonl, csv or a tabulate style (default: a plain table); with
    `ids`, also `ids` (deal ids one per line, for another command's `-`)."""
    if fmt is None:
        return DEFAULT_TABLE
    if fmt in MACHINE_FORMATS or (ids and fmt == IDS):
        return fmt
    from tabulate import tabulate_formats  # only when a table is printed

    if fmt in tabulate_formats:
        return fmt
    raise UsageError(
        f"unknown --format {fmt!r} (use json, jsonl, csv{', ids' if ids else ''}, or a table style such as "
        "simple, github, grid, plain)"
    )


def deal_ids_output(deal_ids: Iterable[int]) -> str:
    """`--format ids`: each deal id once, one per line, in the order given."""
    seen: dict[int, None] = dict.fromkeys(deal_ids)
    return "".join(f"{deal_id}\n" for deal_id in seen)


def use_color(stream: TextIO, *, no_color: bool) -> bool:
    """Colours only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    if no_color:
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


_STYLES = {UNREAD: "1;31", DUE: "31", GREEN: "32", PENDING: "36", GREY: "90", "dim": "2", "yellow": "33", "match": "1;33"}


def paint(text: str, style: str, color: bool) -> str:
    return f"\x1b[{_STYLES[style]}m{text}\x1b[0m" if color and text else text


# What a client or a file wrote must not drive a terminal: C0 controls (ESC starts every
# escape sequence), DEL, C1 controls (U+009B is a CSI on many terminals), and the marks,
# overrides and isolates that reorder text (U+202E reverses what follows).
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
_UNSAFE = re.compile(f"[\x00-\x09\x0b-\x1f\x7f-\x9f{_BIDI}]")
# JSON escapes C0 itself; these are left raw by json.dumps and are escaped as \\uXXXX
# (the same string once parsed). They can only occur inside JSON strings.
_JSON_UNSAFE = re.compile(f"[\x7f-\x9f{_BIDI}]")


def json_safe(encoded: str) -> str:
    """Encoded JSON with DEL, C1 controls and direction marks written as `\\uXXXX`
    escapes: the same data, which no terminal can act on."""
    if encoded.isascii() and "\x7f" not in encoded:  # the usual case, checked at C speed
        return encoded
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", encoded)


def safe(text: str | None, *, single_line: bool = False, width: int | None = None) -> str:
    """Text for a table cell: control and direction marks made visible so they cannot
    break the table; newlines kept (multi-line cell) unless `single_line`."""
    if text is None:
        return ""
    if single_line:
        text = text.replace("\r\n", "\n").replace("\n", " ⏎ ")
    text = _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}" if ord(m.group()) > 0xFF else f"\\x{ord(m.group()):02x}", text)
    if width is not None and len(text) > width:
        text = text[: width - 1] + "…"
    return text


# ------------------------------------------------------------------ records


def records(rows: list[dict], fields: Iterable[str], fmt: str, terminal: bool = False) -> str:
    """Rows as JSON (an array), JSON Lines or CSV, with the given field names.

    JSON escapes every control and direction mark (`json_safe`); CSV cells never open as
    a formula (rules/cells.py) and, on a `terminal`, show control characters escaped."""
    import io
    import json

    fields = tuple(fields)
    if fmt == "json":
        return json_safe(json.dumps([_pick(row, fields) for row in rows], ensure_ascii=False, indent=2)) + "\n"
    if fmt == "jsonl":
        return "".join(json_safe(json.dumps(_pick(row, fields), ensure_ascii=False)) + "\n" for row in rows)
    out = io.StringIO()
    writerow = csv_writer(out, terminal)
    writerow(fields)
    for row in rows:
        writerow(["" if row.get(f) is None else _csv_value(row.get(f)) for f in fields])
    return out.getvalue()


def csv_writer(stream: TextIO, terminal: bool = False):
    """`writerow` for every CSV chatcrm writes: each text cell neutral (no formula), and
    quoted when it holds a carriage return (which the csv module, ending lines with \\n,
    would otherwise leave bare and unreadable); on a terminal, controls made visible."""
    import csv

    from chatcrm.rules.cells import neutral

    plain = csv.writer(stream, lineterminator="\n")
    quoted = csv.writer(stream, lineterminator="\n", quoting=csv.QUOTE_ALL)

    def writerow(cells) -> None:
        cells = [neutral(safe(c) if terminal else c) if isinstance(c, str) else c for c in cells]
        if any(isinstance(c, str) and "\r" in c for c in cells):
            quoted.writerow(cells)
        else:
            plain.writerow(cells)

    return writerow


def write_events(records: Iterable[dict], fmt: str, stream: TextIO, terminal: bool = False) -> int:
    """Native event records (docs/rules.md, "The event format") as JSON Lines or CSV, one at
    a time; returns the count."""
    count = 0
    if fmt == "csv":
        from chatcrm.importers.native import FIELDS

        writerow = csv_writer(stream, terminal)
        writerow(FIELDS)
        for count, record in enumerate(records, start=1):
            writerow([_csv_value(record.get(name, "")) for name in FIELDS])
        return count
    encode = line_encoder()
    records = iter(records)
    # Lines are encoded, made safe and written a block at a time: the same bytes, with
    # one call of each kind per block instead of per line.
    while block := list(islice(records, EVENTS_PER_WRITE)):
        stream.write(json_safe("\n".join(map(encode, block))) + "\n")
        count += len(block)
    return count


EVENTS_PER_WRITE = 1000  # lines of an export encoded and written at once

_PROBE = {"type": "message", "text": "caf\u00e9 \"\u2028\u0001\x7f\ud800", "n": 1, "f": 0.5, "clear": True, "none": None}


def line_encoder() -> Callable[[dict], str]:
    """`json.JSONEncoder(ensure_ascii=False).encode`, the encoder made once.

    `encode` builds json's C encoder afresh at each call, which is most of the cost of a
    short record. This builds it once, with the same settings (so the same bytes), as
    `JSONEncoder.iterencode` does; without circular-reference checks, which a record
    read from the database cannot need. Where the interpreter has no C encoder, or
    builds it otherwise, `encode` itself."""
    import json.encoder

    settings = json.JSONEncoder(ensure_ascii=False)
    try:
        make = json.encoder.c_make_encoder
        built = make(None, settings.default, json.encoder.encode_basestring, settings.indent, settings.key_separator,
                     settings.item_separator, settings.sort_keys, settings.skipkeys, settings.allow_nan)

        def encode(record: dict) -> str:
            return "".join(built(record, 0))

        if encode(_PROBE) == settings.encode(_PROBE):
            return encode
    except (AttributeError, TypeError):
        pass
    return settings.encode


def _csv_value(value):
    """A CSV cell's value (booleans as JSON writes them; the formula rule is csv_writer's)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return value


def _pick(row: dict, fields: tuple[str, ...]) -> dict:
    return {f: row.get(f) for f in fields if f in row}


def table(rows: list[list], headers: list[str], fmt: str) -> str:
    from tabulate import tabulate

    if not rows:
        return ""
    return tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True) + "\n"


# ------------------------------------------------------------------ outcomes


def outcome_line(outcome, tz: tzinfo | None) -> str:
    """What a command did (an actions.Outcome), in one sentence; times in the user's zone."""
    o = outcome
    at = times.sentence(o.at, tz)
    chat = f"chat {o.chat_id} ({safe(o.chat_key, single_line=True)})" if o.chat_key is not None else ""
    if o.action == "replied":
        queued = f"; queued for {o.channel} as outbox reply {o.queued}" if o.queued is not None else ""
        return f"replied on deal {o.deal_id}, {chat} at {at}{queued}"
    if o.action == "closed":
        if o.reason == "no_open_chat":
            return f"deal {o.deal_id} has no open chat; nothing to close"
        if o.reason == "already_closed":
            done = "closed and its activity completed" if o.completed else "closed"
            return f"chat {o.chat_id} of deal {o.deal_id} is already {done}; nothing changed"
        what = f"closed and completed activity {o.activity_id}" if o.completed else "closed"
        return f"deal {o.deal_id}: {chat} {what} at {at}"
    if o.action == "completed":
        if o.reason == "no_active_activity":
            return f"deal {o.deal_id} has no active activity; nothing to complete"
        if o.reason == "already_completed":
            return (f"activity {o.activity_id} of deal {o.deal_id} was already completed at "
                    f"{times.sentence(o.completed_at, tz)}; nothing changed")
        closed = " and closed its chat" if o.closed else ""
        return f"deal {o.deal_id}: completed activity {o.activity_id}{closed} at {at}"
    if o.action == "assigned":
        agent = safe(o.agent, single_line=True)
        if o.reason == "already_assigned":
            return f"chat {o.chat_id} of deal {o.deal_id} is already {agent}'s; nothing changed"
        return f"deal {o.deal_id}: {chat} assigned to {agent} at {at}"
    if o.action == "reminded":
        if o.reason == "no_follow_up":
            return f"activity {o.activity_id} of deal {o.deal_id} has no follow-up; nothing to clear"
        if o.reason == "already_set":
            return (f"activity {o.activity_id} of deal {o.deal_id} already follows up at "
                    f"{times.sentence(o.due_at, tz)}; nothing changed")
        if o.due_at is None:
            return (f"deal {o.deal_id}: cleared the follow-up of activity {o.activity_id} "
                    f"(was {times.sentence(o.previous_due_at, tz)}) at {at}")
        was = f" (was {times.sentence(o.previous_due_at, tz)})" if o.previous_due_at else ""
        return f"deal {o.deal_id}: activity {o.activity_id} follows up at {times.sentence(o.due_at, tz)}{was}"
    raise ValueError(f"unknown outcome {o.action!r}")


def refusal_line(deal_id: int, reason: str) -> str:
    """One deal a rule refused, in a command on several (nothing changed)."""
    return f"refused deal {deal_id}: {safe(reason, single_line=True)}"


def skipped_deal_line(deal_id: int, reason: str) -> str:
    """One deal a rule refused and --skip-refused left as it was."""
    return f"skipped deal {deal_id}: {safe(reason, single_line=True)}"


def idle_line(closing, report, tz: tzinfo | None) -> str:
    """One chat `close --idle` closed (or, with --dry-run, would close)."""
    verb = ("would close" if report.dry_run else "closed") + (" and complete" if report.dry_run and report.complete else "")
    if not report.dry_run and report.complete:
        verb = "closed and completed"
    return (f"deal {closing.deal_id}: chat {closing.chat_id} ({safe(closing.chat_key, single_line=True)}) {verb}; "
            f"quiet since {times.sentence(closing.last_message_at, tz)} "
            f"({times.duration(closing.quiet_seconds)}) after {safe(closing.author, single_line=True)}'s message")


def idle_summary(report) -> str:
    idle = times.duration(report.idle_seconds)
    what = "would close" if report.dry_run else "closed"
    if not report.closed:
        return f"no open chat has been quiet for {idle} after an employee's message; nothing to close"
    return f"{what} {len(report.closed)} chat(s) quiet for {idle} or more after an employee's message"


def ingest_summary(report, dry_run: bool) -> str:
    """An import's one summary line (service.IngestReport)."""
    what = "would add" if dry_run else "added"
    names = ", ".join(f"{safe(name, single_line=True)} ({fmt})" for name, fmt in report.formats.items())
    changed = ""
    if report.directions_changed:
        verb = "would change" if dry_run else "changed"
        changed = f"; {report.directions_changed} message(s) {verb} direction (client/agent)"
    if report.edited:
        changed += f"; {report.edited} message(s) {'would be ' if dry_run else ''}edited"
    if report.statuses_added:
        changed += f"; {report.statuses_added} delivery status(es) {'would be ' if dry_run else ''}recorded"
    if report.skipped:
        changed += f"; {report.skipped} update(s) skipped (not messages)"
    return (
        f"{what} {report.messages_added} message(s) and {report.events_added} other event(s); "
        f"{report.present} already present{changed}; {len(report.invalid)} invalid — {names}"
    )


def reimport_line(reimport) -> str:
    """An import of a file imported before with other employees (service.Reimport)."""
    def names(agents) -> str:
        return " ".join(f"--agent {safe(a, single_line=True)}" for a in agents) or "no --agent"

    return (
        f"note: {safe(reimport.name, single_line=True)} was imported by change {reimport.change_id} with "
        f"{names(reimport.before)}; now with {names(reimport.now)}: the messages whose author's role "
        "changed change direction"
    )


# What else an undo did, each said when it happened.
_UNDO_PARTS = (
    ("edits_removed", "{} edit(s) removed"),
    ("texts_restored", "{} message(s) show their earlier text again"),
    ("statuses_removed", "{} delivery status(es) removed"),
    ("replies_unqueued", "{} reply(ies) taken out of the outbox undelivered"),
    ("kept", "{} fact(s) that another change also brought stay"),
    ("directions_restored", "{} message(s) got their direction back"),
    ("deals_removed", "{} deal(s) with nothing left are gone"),
)


def undo_line(outcome) -> str:
    """What `undo` did (service.UndoOutcome), in one sentence."""
    o = outcome
    if not o.changed:
        return f"change {o.change_id} ({o.command}) was already undone by change {o.undone_by}; nothing to do"
    parts = [f"removed {o.messages_removed} message(s) and {o.events_removed} other event(s)"]
    parts += [wording.format(count) for field, wording in _UNDO_PARTS if (count := getattr(o, field))]
    return f"undid change {o.change_id} ({o.command}): {'; '.join(parts)}; recorded as change {o.undo_id}"


def skipped_line(invalid) -> str:
    return f"skipped {safe(str(invalid), single_line=True)}"


def check_ok(path, counts: dict[str, int]) -> str:
    return (
        f"ok: {safe(str(path), single_line=True)}: integrity and foreign keys hold; {counts['deals']} deals, {counts['chats']} chats, "
        f"{counts['activities']} activities match what {counts['messages']} messages and "
        f"{counts['chat_events'] + counts['assignments'] + counts['reminders']} other events give"
    )


def check_problems(path, problems: list[str]) -> tuple[str, str]:
    """(stdout, the error line) for a database with problems."""
    return "".join(safe(p, single_line=True) + "\n" for p in problems), f"{len(problems)} problem(s) in {safe(str(path), single_line=True)}"


# ------------------------------------------------------------------ list


STATUS_LABEL = {UNREAD: "UNREAD", DUE: "DUE", GREEN: "green", PENDING: "pending", GREY: "grey"}


def queue_output(queue, fmt: str, tz: tzinfo | None, color: bool, terminal: bool = False) -> str:
    """R9's queue as a table with its summary line, or as records (or deal ids) for scripts."""
    if fmt == IDS:
        return deal_ids_output(row["deal_id"] for row in queue.rows)
    if fmt in MACHINE_FORMATS:
        return records(queue.rows, LIST_FIELDS, fmt, terminal)
    rows = []
    for row in queue.rows:
        status = row["status"]
        waiting = times.duration(row["waiting_seconds"]) if row["waiting_seconds"] is not None else ""
        if waiting and row.get("overdue"):
            waiting = paint(waiting + " !", "unread", color)
        elif waiting:
            waiting = paint(waiting, "yellow" if queue.sla_seconds is not None else "unread", color)
        preview = ""
        if row["last_message_at"]:
            who = "client" if row["last_message_direction"] == "client" else "agent"
            preview = f"{who}: {safe(row['last_message'], single_line=True, width=48)}"
        rows.append(
            [
                row["deal_id"],
                paint(STATUS_LABEL[status], status, color),
                safe(row["title"], single_line=True, width=32),
                waiting,
                safe(row["responsible"], single_line=True, width=16),
                row["open_chats"],
                row["active_activities"],
                times.display(row["last_message_at"], tz),
                preview,
            ]
        )
    headers = ["ID", "STATUS", "DEAL", "WAITING", "AGENT", "OPEN", "ACTIVE", "LAST AT", "LAST MESSAGE"]
    return table(rows, headers, fmt) + summary_line(queue, color) + "\n"


def summary_line(queue, color: bool) -> str:
    counts = queue.counts
    parts = [
        paint(f"{counts[status]} {status}", status, color and (counts[status] > 0 or status not in (UNREAD, DUE)))
        for status in STATUSES
    ]
    if queue.sla_seconds is not None:
        sla = times.duration(queue.sla_seconds)
        parts.append(paint(f"{queue.overdue} over the {sla} SLA", "unread", color and queue.overdue > 0))
    line = " · ".join(parts)
    if queue.agent is not None:
        line = f"{safe(queue.agent, single_line=True)}: {line}"
    if len(queue.rows) < queue.total:
        line += f" (showing {len(queue.rows)} of {queue.total} deals)"
    return line


# ------------------------------------------------------------------ search


SEARCH_FIELDS = ("kind", "deal_id", "deal_key", "status", "at", "direction", "author", "channel", "chat_key",
                 "text", "snippet")
PLAIN_MARKS = ("[", "]")  # a match in a snippet, when piped and in JSON/CSV


def snippet(text: str | None, color: bool, shown: bool = True) -> str:
    """A search snippet, its matches highlighted on a terminal, else between plain markers.
    `shown` (a table): on one line, the client's text made safe piece by piece; else the
    data as it is (records escape it themselves on a terminal)."""
    from chatcrm.store.search import MATCH_END, MATCH_START

    out = []
    for n, piece in enumerate((text or "").replace(MATCH_END, MATCH_START).split(MATCH_START)):
        if shown:
            piece = safe(piece, single_line=True)
        if n % 2 and piece:
            piece = paint(piece, "match", True) if color else f"{PLAIN_MARKS[0]}{piece}{PLAIN_MARKS[1]}"
        out.append(piece)
    return "".join(out)


def search_output(result, fmt: str, tz: tzinfo | None, color: bool, terminal: bool = False) -> str:
    """Search hits as a table and its summary line, or as records, or deal ids."""
    hits = result.hits
    if fmt == IDS:
        return deal_ids_output(h["deal_id"] for h in hits)
    if fmt in MACHINE_FORMATS:
        return records([{**h, "snippet": snippet(h["snippet"], False, shown=False)} for h in hits], SEARCH_FIELDS, fmt,
                       terminal)
    rows = []
    for h in hits:
        if h["kind"] == "deal":
            who = f"deal · {safe(h['author'], single_line=True, width=20)}" if h["author"] else "deal"
        else:
            arrow = "←" if h["direction"] == "client" else "→"
            who = f"{arrow} {safe(h['author'], single_line=True, width=20)}"
        rows.append([
            h["deal_id"],
            paint(STATUS_LABEL[h["status"]], h["status"], color),
            times.display(h["at"], tz),
            who,
            snippet(h["snippet"], color),
        ])
    return table(rows, ["DEAL", "STATUS", "TIME", "FROM", "MATCH"], fmt) + search_summary(result) + "\n"


def search_summary(result) -> str:
    shown = len(result.hits)
    more = f" (the first {shown}; --limit shows more)" if result.more else ""
    order = "best match first" if result.sort == "rank" else "newest first"
    return f"{shown} match(es) for {safe(result.query, single_line=True, width=60)}, {order}{more}"


# ------------------------------------------------------------------ timeline


_KIND_LABEL = {
    "deal_created": "deal created",
    "chat_opened": "chat opened",
    "activity_created": "activity created",
    "message": "message",
    "chat_closed": "chat closed",
    "activity_completed": "activity completed",
    "assigned": "assigned",
    "follow_up_set": "follow-up set",
    "follow_up_changed": "follow-up changed",
    "follow_up_cleared": "follow-up cleared",
    "follow_up_due": "follow-up due",
}
_STATE_LABEL = {"unread": "Unread", "active": "active (yellow)", "completed": "completed (white)"}
_DELIVERY_STYLE = {"failed": "unread", "waiting": "yellow", "sending": "yellow"}
_STATE_STYLE = {"unread": "unread", "active": "yellow", "completed": "dim"}


def timeline_output(deal: dict, entries: list[dict], fmt: str, tz: tzinfo | None, color: bool,
                    terminal: bool = False) -> str:
    """R10's deal card history: a header and a table, or records for scripts."""
    if fmt in MACHINE_FORMATS:
        return records(entries, TIMELINE_FIELDS, fmt, terminal)
    rows = []
    for entry in entries:
        kind = entry["kind"]
        detail = ""
        who = ""
        if kind == "deal_created":
            detail = f"key {safe(entry['deal_key'], single_line=True)}"
        elif kind == "chat_opened":
            detail = (f"{safe(entry['chat_key'], single_line=True)} ({safe(entry['channel'], single_line=True)}), "
                      f"by {entry['opened_by']}")
            if entry["unread"]:
                detail += " · " + paint(f"Unread since {times.display(entry['waiting_since'], tz)}", "unread", color)
        elif kind in ("activity_created", "activity_completed"):
            state = entry["state"]
            detail = paint(_STATE_LABEL[state], _STATE_STYLE[state], color)
        elif kind == "message":
            arrow = "←" if entry["direction"] == "client" else "→"
            who = f"{arrow} {safe(entry['author'], single_line=True)}"
            detail = safe(entry["text"])
            if entry.get("delivery"):
                detail += " · " + paint(entry["delivery"], _DELIVERY_STYLE.get(entry["delivery"], "dim"), color)
        elif kind == "assigned":
            detail = f"to {safe(entry['agent'], single_line=True)}"
        elif kind in ("follow_up_set", "follow_up_changed", "follow_up_due"):
            detail = ("for " if kind != "follow_up_due" else "") + times.display(entry["due_at"], tz)
            if entry.get("note"):
                detail += f" · {safe(entry['note'], single_line=True)}"
            if kind == "follow_up_due":
                detail = paint(detail, DUE, color)
        rows.append(
            [
                times.display(entry["at"], tz),
                _KIND_LABEL[kind],
                entry.get("chat_id") or "",
                entry.get("activity_id") or "",
                who,
                detail,
            ]
        )
    return deal_header(deal, tz, color) + table(rows, ["TIME", "EVENT", "CHAT", "ACTIVITY", "FROM", "DETAIL"], fmt)


def deal_header(deal: dict, tz: tzinfo | None, color: bool) -> str:
    status = deal["status"]
    line = f"Deal {deal['deal_id']} · {safe(deal['title'], single_line=True)} · key {safe(deal['deal_key'], single_line=True)} · "
    if status == "unread":
        line += paint(f"UNREAD since {times.display(deal['waiting_since'], tz)}", "unread", color)
    elif status in (DUE, PENDING):
        line += paint(f"{status.upper() if status == DUE else status} · follow-up {times.display(deal['due_at'], tz)}",
                      status, color)
    else:
        line += paint(f"{status} counter", status, color)
    counters = f"{deal['open_chats']} open chat(s), {deal['active_activities']} active activit{'y' if deal['active_activities'] == 1 else 'ies'}"
    responsible = f" · responsible {safe(deal['responsible'], single_line=True)}" if deal.get("responsible") else ""
    return f"{line} · {counters}{responsible}\n\n"


# ------------------------------------------------------------------ outbox and deliver


OUTBOX_FIELDS = (
    "reply_id", "deal_id", "channel", "chat_key", "client_id", "text", "author", "reply_at",
    "business_connection_id", "phone_number_id", "state", "tries", "next_try_at", "sent_at", "remote_id", "error",
)  # fmt: skip


def outbox_output(entries: list[dict], fmt: str, tz: tzinfo | None, color: bool, terminal: bool = False) -> str:
    """The outbox as a table with a summary line, or as records for senders and scripts."""
    if fmt in MACHINE_FORMATS:
        return records(entries, OUTBOX_FIELDS, fmt, terminal)
    rows = []
    for e in entries:
        state = e["state"]
        if state == "waiting" and e["tries"]:
            state = f"waiting (retry {times.display(e['next_try_at'], tz)})"
        rows.append([
            e["reply_id"], e["deal_id"], e["channel"], safe(e["chat_key"], single_line=True),
            times.display(e["reply_at"], tz), paint(state, _DELIVERY_STYLE.get(e["state"], "dim"), color), e["tries"],
            safe(e["text"], single_line=True, width=40), safe(e["error"], single_line=True, width=60),
        ])
    body = table(rows, ["REPLY", "DEAL", "CHANNEL", "CHAT", "AT", "STATE", "TRIES", "TEXT", "LAST ERROR"], fmt)
    waiting = sum(1 for e in entries if e["state"] in ("waiting", "sending"))
    failed = sum(1 for e in entries if e["state"] == "failed")
    return body + f"{waiting} waiting · {failed} failed" + (f" · {len(entries)} shown" if len(entries) != waiting + failed else "") + "\n"


def delivery_line(entry: dict) -> str:
    """One reply a `deliver` run tried, and what came of it."""
    where = f"reply {entry['reply_id']} (deal {entry['deal_id']}, {safe(entry['chat_key'], single_line=True)})"
    state = entry["state"]
    if state in ("sent", "delivered", "read"):
        remote = f", remote id {safe(entry['remote_id'], single_line=True)}" if entry["remote_id"] else ""
        return f"{where}: {state}{remote}"
    error = safe(entry["error"], single_line=True)
    if state == "failed":
        return f"{where}: failed after {entry['tries']} tries, given up: {error}"
    return f"{where}: try {entry['tries']} failed, retry at {entry['next_try_at']}: {error}"


def delivery_summary(report) -> str:
    done = sum(1 for e in report.tried if e["state"] in ("sent", "delivered", "read"))
    return (f"deliver: {done} sent, {len(report.tried) - done} failed of {len(report.tried)} tried; "
            f"{report.waiting} waiting ({report.later} after a back-off), {report.failed} given up")
# ------------------------------------------------------------------ settings


SETTINGS_FIELDS = ("setting", "value", "source")


def settings_output(values: list, names: list[str], fmt: str, terminal: bool = False) -> str:
    """`chatcrm config`: each setting, its effective value and where it came from."""
    rows = [{"setting": name, "value": v.value, "source": v.source} for name, v in zip(names, values)]
    if fmt in MACHINE_FORMATS:
        return records(rows, SETTINGS_FIELDS, fmt, terminal)
    cells = [[safe(r["setting"], single_line=True), safe(str(r["value"]), single_line=True, width=60), safe(r["source"], single_line=True)]
             for r in rows]
    return table(cells, ["SETTING", "VALUE", "FROM"], fmt)


# ------------------------------------------------------------------ stats


STATS_FIELDS = ("scope", "name", "metric", "count", "median_seconds", "p90_seconds", "worst_seconds", "unanswered")
_METRIC_LABEL = {"first_response": "first response", "wait": "wait", "time_to_close": "time to close"}


def stats_rows(report: dict) -> list[dict]:
    """The stats as flat rows: one per scope and metric."""
    rows = []
    scopes = [("all", "", report["overall"])]
    scopes += [("channel", name, figures) for name, figures in report["by_channel"].items()]
    scopes += [("employee", name, figures) for name, figures in report["by_employee"].items()]
    for scope, name, figures in scopes:
        for metric, summary in figures.items():
            rows.append({"scope": scope, "name": name, "metric": metric, **summary})
    return rows


def stats_output(report: dict, fmt: str, tz: tzinfo | None, terminal: bool = False) -> str:
    import json

    if fmt == "json":
        return json_safe(json.dumps(report, ensure_ascii=False, indent=2)) + "\n"
    rows = stats_rows(report)
    if fmt in MACHINE_FORMATS:
        return records(rows, STATS_FIELDS, fmt, terminal)

    def shown(seconds) -> str:
        return "" if seconds is None else times.duration(seconds, precise=True)

    cells = []
    for row in rows:
        if not row["count"] and not row.get("unanswered"):
            continue
        scope = row["scope"] if row["scope"] == "all" else f"{row['scope']} {safe(row['name'], single_line=True)}"
        cells.append(
            [
                scope,
                _METRIC_LABEL[row["metric"]],
                row["count"],
                shown(row["median_seconds"]),
                shown(row["p90_seconds"]),
                shown(row["worst_seconds"]),
                row.get("unanswered", ""),
            ]
        )
    since = times.display(report["since"], tz) if report["since"] else "the beginning"
    until = times.display(report["until"], tz) if report["until"] else "now"
    header = f"From {since} to {until} · {report['sessions']} session(s) opened\n\n"
    body = table(cells, ["SCOPE", "METRIC", "N", "MEDIAN", "P90", "WORST", "UNANSWERED"], fmt)
    return header + (body or "nothing measured in this period\n")


# ------------------------------------------------------------------ progress


@contextmanager
def progress_bar(label: str, total: int | None) -> Iterator:
    """A progress bar on stderr when it is a terminal; otherwise nothing is drawn.

    Yields a function taking the number of bytes read so far.
    """
    if total is None or total < (4 << 20) or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=total)
        yield lambda done: progress.update(task, completed=done)


# ------------------------------------------------------------------ changes


def changes_output(rows: list[dict], fmt: str, tz: tzinfo | None, terminal: bool = False) -> str:
    """The change log as a table, or as records (`arguments` and `files` as JSON text in CSV)."""
    import json

    if fmt in MACHINE_FORMATS:
        if fmt == "csv":
            rows = [{**row, "arguments": json.dumps(row["arguments"], ensure_ascii=False),
                     "files": json.dumps(row["files"], ensure_ascii=False)} for row in rows]
        return records(rows, CHANGE_FIELDS, fmt, terminal)
    table_rows = []
    for row in rows:
        if row["undone_by"] is not None:
            state = f"undone by {row['undone_by']}"
        else:
            state = ""
        table_rows.append([
            row["change_id"],
            times.display(row["at"], tz) if row["at"] else "",
            row["command"],
            safe(change_summary(row), single_line=True, width=60),
            _added(row),
            state,
        ])
    if not table_rows:
        return ""
    return table(table_rows, ["ID", "AT", "COMMAND", "WHAT", "ADDED", "UNDONE"], fmt)


def change_summary(row: dict) -> str:
    """What a change was, in a few words, from its command and arguments."""
    args, command = row["arguments"], row["command"]
    if command == "ingest":
        files = [f"{f['name']} ({f['format']})" for f in row["files"]] or list(args.get("files", []))
        options = []
        if args.get("tz") not in (None, "UTC"):
            options.append(f"--tz {args['tz']}")
        options += [f"--agent {a}" for a in args.get("agents") or ()]
        if args.get("chat"):
            options.append(f"--chat {args['chat']}")
        return " ".join([", ".join(files), *options])
    if command == "reply":
        return f"deal {args.get('deal')}, chat {args.get('chat')}: {args.get('text', '')}"
    if command == "close":
        extra = " --complete" if args.get("complete") else ""
        if "idle" in args:
            chats = ", ".join(map(str, args.get("chats") or ()))
            return f"--idle {times.duration(args['idle'])}{extra}: chats {chats}"
        return f"deal {args.get('deal')}, chat {args.get('chat')}{extra}"
    if command == "complete":
        return f"deal {args.get('deal')}, activity {args.get('activity')}"
    if command == "assign":
        return f"deal {args.get('deal')}, chat {args.get('chat')} to {args.get('agent')}"
    if command == "remind":
        due = args.get("due_at")
        what = f"follow-up at {due}" if due else "follow-up cleared"
        return f"deal {args.get('deal')}, activity {args.get('activity')}: {what}"
    if command == "undo":
        return f"change {args.get('change')}"
    if command == "before_change_log":
        return "the facts stored before the change log"
    import json

    return json.dumps(args, ensure_ascii=False)


def _added(row: dict) -> str:
    if row["command"] == "undo":
        return f"-{row['removed']}"
    added = row["messages_added"] + row["events_added"]
    return f"+{added}" + (f" ({row['present']} present)" if row["present"] else "")
