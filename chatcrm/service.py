"""The rules of docs/rules.md as operations: ingest, undo, close --idle, the queue, search,
the timeline, export, the outbox. What an employee does on a deal (reply, close, complete,
assign, remind) is in `chatcrm.actions`.

No printing, no clock and no environment here: the caller passes `now`, and the renderer
words what comes back (`IngestReport`, `Queue`, `UndoOutcome`…). Every mutating operation runs
in one write transaction and reads the state it checks inside that transaction, so
concurrent commands cannot act on a stale view.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Iterator

from chatcrm import times
from chatcrm.errors import InvalidInput, NotFound, Refused, UsageError, clipped
from chatcrm.rules import idle as idle_rule
from chatcrm.rules import delivery as delivery_rule
from chatcrm.rules import statuses
from chatcrm.store import Store, queries
from chatcrm.store import outbox as outbox_store
from chatcrm.actions import client_waits, find_deal, record
from chatcrm.listing import checked_limit, employee
from chatcrm.times import Moment

if TYPE_CHECKING:
    from chatcrm.events import Event, Invalid

# What only writing needs (the import batch, the events, the fact streams) is imported
# where it is used, so that reading commands start quickly.


# ------------------------------------------------------------------ ingest


@dataclass
class Reimport:
    """A file imported before (the same bytes) by a change that is not undone, and how
    this import's options differ from that one's."""

    name: str
    change_id: int
    at: str | None
    option: str  # agents, tz or chat
    before: object
    now: object


@dataclass
class IngestReport:
    messages_added: int = 0
    events_added: int = 0
    present: int = 0
    directions_changed: int = 0
    edited: int = 0  # stored messages whose text a later edit changed
    statuses_added: int = 0  # what live channels said of delivered replies
    skipped: int = 0  # live channels' updates chatcrm does not use
    invalid: list[Invalid] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)
    change_id: int | None = None  # the change it was recorded as (none for a dry run)
    reimports: list[Reimport] = field(default_factory=list)  # other employees named than before


@dataclass
class ImportedFile:
    """An input an import reads, as the change log records it: its name and, when known
    before it is read, the SHA-256 of its bytes (else each source's digest is taken as it
    is read: `ingest`'s `digest_of`)."""

    name: str
    sha256: str | None = None


class _DryRun(Exception):
    pass


def ingest(
    store: Store,
    batches: Iterable[tuple[str, str, Iterable[Event | Invalid]]],
    *,
    skip_invalid: bool = False,
    dry_run: bool = False,
    now: str | None = None,
    files: list[ImportedFile] | None = None,
    input_of: list[int] | None = None,
    digest_of: list | None = None,
    tz: str | None = None,
    agents: Iterable[str] = (),
    chat: str | None = None,
) -> IngestReport:
    """Import events from several sources in one transaction (all or nothing), recorded
    as one change at `now` (a dry run records nothing).

    `batches` yields (source name, format, events). `files` are the inputs named (a file,
    a ZIP or a folder: one or several batches each) with their SHA-256; batch i was read
    from `files[input_of[i]]` (a list the caller fills as it yields batches), or from
    `files[i]` without `input_of`; `digest_of[i]` (filled likewise), when given, is the
    importers.sources.Digest of batch i's own bytes, known once its events are read: the
    change log records it, and the earlier imports of those bytes are looked up then.
    `tz`, `agents`, `chat` are the options they were read with (the change log keeps them
    all). An invalid record refuses the whole import unless
    `skip_invalid`, in which case it is reported and left out. A file imported before by
    a change that is not undone, read now with another `tz` or `chat`, is refused when it
    would add anything (a shifted copy): that change must be undone first. With other
    `agents`, the import proceeds and says so (`reimports`): the messages whose role
    changed change direction.
    """
    from chatcrm.events import DeliveryStatus, Invalid, Skipped
    from chatcrm.store import changes
    from chatcrm.store.batch import ImportBatch

    report = IngestReport()
    agents = list(agents)
    files = files or []
    try:
        with store.write():
            change_id = changes.begin(store, now, "ingest", {
                "files": [f.name for f in files], "tz": tz, "agents": agents, "chat": chat,
                "skip_invalid": skip_invalid,
            })
            batch = ImportBatch(store, change_id=change_id)
            # Bytes imported before are only found among live imports that know theirs.
            hashed_before = changes.any_known_bytes(store, change_id)
            for position, (source, fmt, events) in enumerate(batches):
                report.formats[source] = fmt
                index = input_of[position] if input_of is not None else position
                known = files[index] if index < len(files) else ImportedFile(source)
                digest = digest_of[position] if digest_of is not None and position < len(digest_of) else None
                shifted = _earlier_import(store, report, known, change_id, tz, agents, chat) if digest is None else []
                # (a digest taken as the source is read is looked up once it is read)
                later = digest is not None and hashed_before
                added_before = batch.settle() if shifted or later else 0
                batch.start_file()
                for event in events:
                    if isinstance(event, Invalid):
                        _invalid(report, event, skip_invalid)
                        continue
                    if isinstance(event, Skipped):
                        report.skipped += 1
                        continue
                    if isinstance(event, DeliveryStatus):
                        batch.add_status(event)
                        continue
                    try:
                        batch.add(event)
                    except InvalidInput as error:
                        _invalid(report, error.record, skip_invalid)
                if digest is not None:
                    known = ImportedFile(known.name, digest.hexdigest() or known.sha256)
                    if later:
                        shifted = _earlier_import(store, report, known, change_id, tz, agents, chat)
                changes.add_file(store, change_id, position, source, known.name, known.sha256, fmt, tz, agents, chat)
                if shifted and batch.settle() > added_before:
                    raise _shifted_copy(source, shifted)
            batch.finish()
            report.messages_added = batch.messages_added
            report.events_added = batch.events_added
            report.present = batch.present
            report.directions_changed = batch.directions_changed
            report.edited = batch.edited
            report.statuses_added = batch.statuses_added
            changes.set_counts(store, change_id, messages_added=batch.messages_added, events_added=batch.events_added,
                               present=batch.present, directions_changed=batch.directions_changed)
            report.change_id = change_id
            if dry_run:
                report.change_id = None
                raise _DryRun
    except _DryRun:
        pass
    return report


def _earlier_import(store: Store, report: IngestReport, file: ImportedFile, change_id: int, tz: str | None,
                    agents: list[str], chat: str | None) -> list[Reimport]:
    """The same bytes imported before by live changes: other employees are reported
    (the import goes on: once for an input of several sources); those read with another
    zone or chat key are returned, to be refused if the file adds anything."""
    if file.sha256 is None:
        return []
    import json

    from chatcrm.store import changes

    shifted: list[Reimport] = []
    reported = any(r.name == file.name for r in report.reimports)  # an input of several chats: once
    seen: set[int] = set()
    for earlier in changes.earlier_imports(store, file.sha256, change_id):
        if earlier["change_id"] in seen:
            continue
        seen.add(earlier["change_id"])
        for option, before, now in (("tz", earlier["tz"], tz), ("chat", earlier["chat"], chat)):
            if before != now:
                shifted.append(Reimport(file.name, earlier["change_id"], earlier["at"], option, before, now))
                break
        else:
            before_agents = json.loads(earlier["agents"])
            if not reported and sorted(map(str.casefold, before_agents)) != sorted(map(str.casefold, agents)):
                reported = True
                report.reimports.append(
                    Reimport(file.name, earlier["change_id"], earlier["at"], "agents", before_agents, agents)
                )
    return shifted


def _shifted_copy(source: str, earlier: list[Reimport]) -> InvalidInput:
    first = earlier[0]
    option = f"--{first.option}"
    before = first.before if first.before is not None else "(none)"
    now = first.now if first.now is not None else "(none)"
    ids = [e.change_id for e in earlier]
    which = f"change {ids[0]}" if len(ids) == 1 else "changes " + ", ".join(map(str, ids))
    undo = ", ".join(f"chatcrm undo {i}" for i in ids)
    return InvalidInput(
        f"{source}: these bytes were imported by {which} with {option} {before}; with {option} {now} they "
        f"would add a shifted copy. Undo {'it' if len(ids) == 1 else 'them'} first ({undo}), "
        "then import the file again"
    )


def _invalid(report: IngestReport, invalid: Invalid, skip: bool) -> None:
    if not skip:
        raise InvalidInput.at(invalid)
    report.invalid.append(invalid)


# ------------------------------------------------------------------ commands


# ------------------------------------------------------------------ the change log


@dataclass
class UndoOutcome:
    """What `undo` did: the change it took back (and as which change that is recorded),
    or (`changed` False) that it was undone already, by `undone_by`."""

    change_id: int
    command: str
    changed: bool = True
    undo_id: int | None = None
    undone_by: int | None = None
    messages_removed: int = 0
    events_removed: int = 0
    edits_removed: int = 0
    statuses_removed: int = 0
    kept: int = 0
    directions_restored: int = 0
    texts_restored: int = 0
    replies_unqueued: int = 0
    deals_removed: int = 0


def undo(store: Store, change_ref: str, *, now: str) -> UndoOutcome:
    """Take a change back: remove the facts only it brought (a fact another change that
    is not undone also brought stays), give back the directions it changed, and let every
    state follow. Recorded as a change itself. An undo is not undone (refused): import
    the file again or repeat the command instead. A reply that goes leaves the outbox
    undelivered; one a live channel has taken already (or a `deliver` run holds now) is
    the client's: its change is not undone (refused)."""
    try:
        change_id = int(str(change_ref).strip())
    except ValueError:
        raise UsageError(f"a change is named by its number (`chatcrm changes` lists them), not {change_ref!r}")
    if not 0 < change_id < 1 << 63:
        raise NotFound(f"no change {change_ref!r} (`chatcrm changes` lists them)")
    from chatcrm.store import changes

    with store.write():
        change = changes.find(store, change_id)
        if change is None:
            raise NotFound(f"no change {change_id} (`chatcrm changes` lists them)")
        if change["command"] == "undo":
            raise Refused(
                f"change {change_id} is an undo (of change {change['undoes']}); an undo is not undone: "
                "import the file again or repeat the command to bring its facts back"
            )
        if change["undone_by"] is not None:
            return UndoOutcome(change_id, change["command"], changed=False, undone_by=change["undone_by"])
        sent = changes.sent_replies(store, change_id, now)
        if sent:
            first = sent[0]
            if first["sent_at"] is not None:
                how = ("was delivered to the client at ", Moment(first["sent_at"]))
            else:
                how = ("is being delivered by a `chatcrm deliver` run (until ", Moment(first["lease_until"]), ")")
            raise Refused(
                f"change {change_id} ({change['command']}) brought reply {first['reply_id']}, which ", *how,
                "; a delivered reply cannot be taken back" + ("" if first["sent_at"] is not None
                                                             else ": undo it once that run is over, if it failed"),
            )
        undo_id = changes.begin(store, now, "undo", {"change": change_id})
        store.conn.execute("UPDATE changes SET undoes = ? WHERE id = ?", [change_id, undo_id])
        done = changes.undo(store, change_id, undo_id)
        changes.set_counts(store, undo_id, removed=done.removed)
    return UndoOutcome(change_id, change["command"], undo_id=undo_id, messages_removed=done.messages_removed,
                       events_removed=done.events_removed, edits_removed=done.edits_removed,
                       statuses_removed=done.statuses_removed, kept=done.kept,
                       directions_restored=done.directions_restored, texts_restored=done.texts_restored,
                       replies_unqueued=done.replies_unqueued, deals_removed=done.deals_removed)


def change_log(store: Store, limit: int | None = None) -> list[dict]:
    """The changes, newest first (README "chatcrm changes": the fields)."""
    limit = checked_limit(limit)
    from chatcrm.store import changes

    rows = []
    for row in changes.listing(store, limit):
        rows.append({
            "change_id": row["id"],
            "at": row["at"],
            "command": row["command"],
            "arguments": row["arguments"],
            "files": row["files"],
            "messages_added": row["messages_added"],
            "events_added": row["events_added"],
            "present": row["present"],
            "directions_changed": row["directions_changed"],
            "removed": row["removed"],
            "facts": row["facts"],
            "undoes": row["undoes"],
            "undone_by": row["undone_by"],
        })
    return rows


@dataclass
class IdleClosing:
    """One chat `close --idle` closed: quiet since its last message, an employee's."""

    deal_id: int
    chat_id: int
    chat_key: str
    activity_id: int
    last_message_at: str
    author: str
    quiet_seconds: int


@dataclass
class IdleReport:
    closed: list[IdleClosing]
    idle_seconds: int
    complete: bool
    dry_run: bool


def close_idle(store: Store, *, idle_seconds: int, now: str, complete: bool = False, dry_run: bool = False) -> IdleReport:
    """Close every idle chat (rules/idle.py) at `now`, and with `complete` complete its
    activity, in one write transaction: a client who writes while it runs either
    makes their chat not idle before it looks, or opens a new chat after it closed.
    Never a chat whose client is waiting. `dry_run` reports and changes nothing."""
    from chatcrm.events import Event

    if idle_seconds <= 0:
        raise UsageError("--idle: give a duration longer than zero (24h, 30m)")
    now_epoch = times.epoch(now)
    cutoff_epoch = idle_rule.cutoff(now_epoch, idle_seconds)
    with store.write():
        # Quiet since before the earliest time chatcrm keeps: no chat can have been.
        chats = [] if cutoff_epoch < times.epoch(times.EARLIEST) else \
            queries.idle_chats(store, times.from_epoch(cutoff_epoch))
        closed = [
            IdleClosing(c["deal_id"], c["chat_id"], c["chat_key"], c["activity_id"], c["last_message_at"], c["author"],
                        now_epoch - times.epoch(c["last_message_at"]))
            for c in chats
        ]
        if not dry_run and chats:
            events = []
            for c in chats:
                events.append(Event("close", c["chat_key"], now, source="close"))
                if complete and c["completed_at"] is None:
                    events.append(Event("complete", c["chat_key"], now, session=c["opened_at"], source="close"))
            record(store, events, "close", {"idle": idle_seconds, "complete": complete,
                                             "chats": [c["chat_id"] for c in chats]}, now)
    return IdleReport(closed, idle_seconds, complete, dry_run)


# ------------------------------------------------------------------ many deals at once


# ------------------------------------------------------------------ reading


def export(store: Store, deal_ref: str | None = None) -> Iterator[dict]:
    """Every stored fact (of one deal, when given) as a native event record (docs/rules.md,
    "The event format"), in time order.

    Importing the records into a new database gives the same deals, sessions, states,
    timelines and statistics: each line carries its chat's channel, its deal when that is
    not the chat key, and the contact and title from the moment the original events named
    them (the earliest naming wins on import, as it did the first time). A deal's first
    line carries its id, and a session's first message its chat and activity ids, so that
    a new database numbers them as this one does.
    """
    only = find_deal(store, deal_ref)["deal_id"] if deal_ref is not None else None
    return _export_records(store, only)


def _export_records(store: Store, only: int | None) -> Iterator[dict]:
    from chatcrm.store.facts import edit_rows, fact_rows, live_chats

    live = live_chats(store, only)  # where replies go: said once, on a live chat key's first message
    deals_seen: set[int] = set()
    chats_seen: set[int] = set()
    # The facts' fields unpacked by position (store.facts.fact_rows): one record per fact,
    # so that a whole export costs about what reading its rows costs.
    for fact, (channel, contact, contact_at, title, title_at, deal_key, deal_id) in fact_rows(store, only):
        kind, at, chat_key, uid, direction, author, text, session, agent, due_at, note, chat_id, activity_id = fact[:13]
        record: dict = {"type": kind}
        if kind == "message" and uid.startswith("id:"):
            record["id"] = uid[3:]
        record["chat"] = chat_key
        if deal_key != chat_key:
            record["deal"] = deal_key
        if deal_id not in deals_seen:
            deals_seen.add(deal_id)
            record["deal_id"] = deal_id
        if chat_id is not None and chat_id not in chats_seen:
            chats_seen.add(chat_id)
            record["chat_id"] = chat_id
            record["activity_id"] = activity_id
        record["channel"] = channel
        if contact is not None and at >= contact_at:
            record["contact"] = contact
        if title is not None and at >= title_at:
            record["title"] = title
        if kind == "message":
            record["from"] = direction
            record["author"] = author
            record["text"] = text
        if session:
            record["session"] = session
        if agent is not None:
            record["agent"] = agent
        if kind == "remind":
            if due_at:
                record["due"] = due_at
            else:
                record["clear"] = True
            if note:
                record["note"] = note
        record["at"] = at
        if live and kind == "message" and chat_key in live:
            record["recipient"], via = live.pop(chat_key)
            if via is not None:
                record["via"] = via
        yield record
    # Each edit after every fact, as the message it edits with its own time (edited_at):
    # the latest edit gives the text, whatever order they are imported in.
    for chat_key, uid, direction, author, at, edited_at, text, channel in edit_rows(store, only):
        if uid.startswith("id:"):  # only a message with an id can be edited (live channels give ids)
            yield {"type": "message", "id": uid[3:], "chat": chat_key, "channel": channel, "from": direction,
                   "author": author, "text": text, "at": at, "edited_at": edited_at}


@dataclass
class SearchResult:
    query: str
    hits: list[dict]
    sort: str
    more: bool  # more hits than the limit


SEARCH_SORTS = ("time", "rank")


def search(
    store: Store,
    query: str,
    *,
    now: str,
    limit: int = 20,
    sort: str = "time",
    deal: str | None = None,
    channel: str | None = None,
    agent: str | None = None,
    author: str | None = None,
    status: str | None = None,
    since: str | None = None,
    until: str | None = None,
    tz=None,
) -> SearchResult:
    """Full-text search (FTS5 syntax) over messages, their authors, and deal titles and
    contacts, newest first or best match first, filtered (store/search.py)."""
    from chatcrm.stats import period
    from chatcrm.store import search as search_store

    if not query.strip():
        raise UsageError("the search query is empty")
    if sort not in SEARCH_SORTS:
        raise UsageError(f"unknown --sort {sort!r} (use time or rank)")
    limit = checked_limit(limit)
    if status is not None:
        try:
            statuses.parse(status)
        except ValueError as error:
            raise UsageError(str(error))
    start, end = period(since, until, tz, now)
    with store.read():
        deal_id = find_deal(store, deal)["deal_id"] if deal is not None else None
        if agent is not None:
            agent = employee(store, agent)
        try:
            hits = search_store.search(
                store, query, limit=limit + 1, sort=sort, deal_id=deal_id, channel=channel, agent=agent,
                author=author, status=status, since=start, until=end, now_epoch=times.epoch(now),
            )
        except search_store.MalformedQuery as error:
            raise UsageError(
                f"malformed search query {clipped(query)!r}: {error} (words, \"exact phrase\", OR, NOT, prefix*, "
                "text: or author: before a word; put other punctuation inside double quotes)"
            )
    return SearchResult(query, hits[:limit], sort, len(hits) > limit)


_TIMELINE_ORDER = {
    "deal_created": 0,
    "chat_opened": 1,
    "activity_created": 2,
    "message": 3,
    "chat_closed": 4,
    "activity_completed": 5,
    "assigned": 6,
    "follow_up_set": 7,
    "follow_up_changed": 7,
    "follow_up_cleared": 7,
    "follow_up_due": 8,
}


def activity_state(chat: dict) -> str:
    """An activity's state now: completed, else Unread while its client waits, else active."""
    if chat["completed_at"] is not None:
        return "completed"
    if client_waits(chat):
        return "unread"
    return "active"


def timeline(store: Store, deal_ref: str, now: str | None = None) -> tuple[dict, list[dict]]:
    """R10: the deal card's history in time order. Each activity entry carries its state
    at that moment: created active (Unread when a client opened the session), completed
    when it was completed; the deal (the header) carries its status at `now`. Follow-ups
    (R11) show when they were set, changed and cleared, and when one's time came (by `now`). A reply to a live
    channel carries its delivery state (`now` also tells whether a run holds it)."""
    deal = find_deal(store, deal_ref, now)
    chats = queries.deal_chats(store, deal["deal_id"])
    entries: list[tuple] = []

    def add(at: str, kind: str, order: int, **values) -> None:
        entry = {"at": at, "kind": kind, "chat_id": None, "activity_id": None}
        entry.update(values)
        entries.append(((at, _TIMELINE_ORDER[kind], order), entry))

    add(deal["created_at"], "deal_created", 0, deal_id=deal["deal_id"], deal_key=deal["deal_key"])
    sessions_by_key: dict[str, list[tuple[str, int, dict]]] = {}
    for order, chat in enumerate(chats, start=1):
        ids = {"chat_id": chat["chat_id"], "activity_id": chat["activity_id"]}
        unread = activity_state(chat) == "unread"
        add(chat["opened_at"], "chat_opened", order, **ids, chat_key=chat["chat_key"], channel=chat["channel"],
            opened_by=chat["opened_by"], unread=unread, waiting_since=chat["waiting_since"])
        created = "unread" if chat["opened_by"] == "client" else "active"  # R1
        add(chat["activity_created_at"], "activity_created", order, **ids, state=created)
        if chat["closed_at"] is not None:
            add(chat["closed_at"], "chat_closed", order, **ids)
        if chat["completed_at"] is not None:
            add(chat["completed_at"], "activity_completed", order, **ids, state="completed")
        sessions_by_key.setdefault(chat["chat_key"], []).append((chat["opened_at"], order, chat))
    messages = queries.deal_messages(store, deal["deal_id"])
    replies = outbox_store.by_message(store, [m["id"] for m in messages if m["direction"] == "agent"])
    for message in messages:
        order, chat = _session_of(sessions_by_key.get(message["chat_key"], []), message["sent_at"])
        queued = replies.get(message["id"])
        add(message["sent_at"], "message", order, chat_id=chat and chat["chat_id"],
            activity_id=chat and chat["activity_id"], direction=message["direction"],
            author=message["author"], text=message["text"],
            **({"delivery": _sender_entry(queued, now)["state"]} if queued else {}))
    for assignment in queries.deal_assignments(store, deal["deal_id"]):
        sessions = sessions_by_key.get(assignment["chat_key"], [])
        named = [s for s in sessions if s[0] == assignment["session"]]
        order, chat = (named[0][1], named[0][2]) if named else _session_of(sessions, assignment["at"])
        add(assignment["at"], "assigned", order, chat_id=chat and chat["chat_id"],
            activity_id=chat and chat["activity_id"], agent=assignment["agent"])
    _follow_up_entries(store, deal["deal_id"], sessions_by_key, add, now)
    entries.sort(key=lambda e: e[0])
    return deal, [entry for _, entry in entries]


def _follow_up_entries(store: Store, deal_id: int, sessions_by_key: dict, add, now: str | None) -> None:
    """The timeline's follow-ups: each reminder as set, changed or cleared, and each
    follow-up that came due (by `now`) before it was replaced, cleared or completed."""
    held: dict[int, tuple] = {}  # activity id -> (due at, set at, note, order, chat) in effect

    def came_due(follow_up: tuple, until: str | None) -> None:
        due, set_at, note, order, chat = follow_up
        if now is not None and due <= now and (until is None or due <= until):
            add(max(due, set_at), "follow_up_due", order, chat_id=chat["chat_id"], activity_id=chat["activity_id"],
                due_at=due, note=note)

    # In the order the rules apply them: by time, at one instant the greatest last.
    for reminder in queries.deal_reminders(store, deal_id):
        sessions = sessions_by_key.get(reminder["chat_key"], [])
        named = [s for s in sessions if s[0] == reminder["session"]]
        order, chat = (named[0][1], named[0][2]) if named else _session_of(sessions, reminder["at"])
        if chat is None or (chat["completed_at"] is not None and reminder["at"] >= chat["completed_at"]):
            continue  # no activity yet, or completed by then: the reminder changed nothing
        previous = held.pop(chat["activity_id"], None)
        if previous is not None:
            came_due(previous, reminder["at"])
        due = reminder["due_at"]
        kind = "follow_up_cleared" if due is None else ("follow_up_set" if previous is None else "follow_up_changed")
        add(reminder["at"], kind, order, chat_id=chat["chat_id"], activity_id=chat["activity_id"], due_at=due,
            note=reminder["note"] if due else None)
        if due is not None:
            held[chat["activity_id"]] = (due, reminder["at"], reminder["note"], order, chat)
    for follow_up in held.values():
        came_due(follow_up, follow_up[4]["completed_at"])


def _session_of(sessions: list[tuple[str, int, dict]], at: str) -> tuple[int, dict | None]:
    found: tuple[int, dict | None] = (0, None)
    for opened_at, order, chat in sessions:
        if opened_at <= at:
            found = (order, chat)
    return found


# ------------------------------------------------------------------ live channels: the outbox


def _sender_entry(row: dict, now: str | None = None) -> dict:
    """An outbox row as what a sender needs (README "Live channels": the outbox JSON)."""
    telegram = row["channel"] == "telegram"
    leased = bool(now and row["lease_until"] and row["lease_until"] > now)
    entry = {
        "reply_id": row["reply_id"],
        "deal_id": row["deal_id"],
        "channel": row["channel"],
        "chat_key": row["chat_key"],
        "client_id": row["recipient"],
        "text": row["text"],
        "author": row["author"],
        "reply_at": row["reply_at"],
        "business_connection_id": row["via"] if telegram else None,
        "phone_number_id": None if telegram else row["via"],
        "state": delivery_rule.state(row["channel"], sent=row["sent_at"] is not None,
                                     given_up=row["given_up_at"] is not None, leased=leased,
                                     status_rank=row["status_rank"]),
        "tries": row["tries"],
        "next_try_at": None if row["sent_at"] or row["given_up_at"] else row["next_try_at"],
        "sent_at": row["sent_at"],
        "remote_id": row["remote_id"],
        "error": row["status_error"] or row["last_error"],
    }
    return entry


def outbox(store: Store, *, now: str, everything: bool = False, limit: int | None = None) -> list[dict]:
    """The replies waiting for a live channel (and the ones given up), in delivery order;
    with `everything`, the delivered ones too."""
    limit = checked_limit(limit)
    with store.read():
        return [_sender_entry(row, now) for row in outbox_store.entries(store, everything=everything, limit=limit)]


@dataclass
class DeliveryReport:
    """What one `deliver` run did: each reply tried, as its outbox entry after the try."""

    tried: list[dict] = field(default_factory=list)
    waiting: int = 0  # still to deliver after the run (due later, or held by another run)
    later: int = 0  # ... of which due after a back-off
    failed: int = 0  # given up, in all


def deliver(store: Store, send, *, clock, owner: str, timeout: int = delivery_rule.DEFAULT_TIMEOUT_SECONDS,
            limit: int | None = None, tried=None) -> DeliveryReport:
    """Hand each reply due to `send(entry) -> sender.SendResult`, one at a time, in order
    per chat, and record the result (rules/delivery.py). `clock()` gives the time of each
    step; `owner` names this run in the leases it takes; `tried(entry)`, when given, hears
    of each reply as soon as its result is recorded (a run that is stopped later has said
    what it did).

    Each reply is taken in its own write transaction, sent outside any transaction, and
    its result recorded in another: other commands and other runs go on meanwhile."""
    limit = checked_limit(limit)
    if timeout <= 0:
        raise UsageError("--timeout must be more than 0 s")
    if timeout > delivery_rule.MAX_TIMEOUT_SECONDS:
        raise UsageError(f"--timeout: at most {delivery_rule.MAX_TIMEOUT_SECONDS // 3600}h for one reply")
    report = DeliveryReport()
    lease = delivery_rule.lease_seconds(timeout)
    while limit is None or len(report.tried) < limit:
        with store.write():
            row = outbox_store.claim(store, clock(), owner, lease)
        if row is None:
            break
        result = send(_sender_entry(row))
        with store.write():
            now = clock()
            if result.ok:
                outbox_store.record_sent(store, row["reply_id"], now, result.remote_id)
            else:
                outbox_store.record_failure(store, row["reply_id"], owner, now, result.error or "failed")
            after = outbox_store.entry(store, row["reply_id"])
        report.tried.append(_sender_entry(after, now))
        if tried is not None:
            tried(report.tried[-1])
    with store.read():
        counts = outbox_store.counts(store, clock())
    report.waiting, report.later, report.failed = counts["waiting"], counts["later"], counts["failed"]
    return report
