"""The rules of SPEC.md as operations: ingest, reply, close, complete, queue, timeline.

No printing and no clock here: the caller passes `now` and renders what comes back.
Every mutating operation runs in one write transaction and reads the state it checks
inside that transaction, so concurrent commands cannot act on a stale view.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from chatcrm import times
from chatcrm.errors import InvalidInput, NotFound, Refused, UsageError
from chatcrm.events import Event, Invalid
from chatcrm.store import Store

STATUSES = ("unread", "green", "grey")


@dataclass
class Outcome:
    """What a command did (or, with changed=False, why it had nothing to do)."""

    message: str
    changed: bool = True


# ------------------------------------------------------------------ ingest


@dataclass
class IngestReport:
    messages_added: int = 0
    events_added: int = 0
    present: int = 0
    invalid: list[Invalid] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False

    @property
    def read(self) -> int:
        return self.messages_added + self.events_added + self.present


class _DryRun(Exception):
    pass


def ingest(
    store: Store,
    batches: Iterable[tuple[str, str, Iterable[Event | Invalid]]],
    *,
    skip_invalid: bool = False,
    dry_run: bool = False,
) -> IngestReport:
    """Import events from several sources in one transaction (all or nothing).

    `batches` yields (source name, format, events). An invalid record refuses the whole
    import unless `skip_invalid`, in which case it is reported and left out.
    """
    report = IngestReport(dry_run=dry_run)
    try:
        with store.write():
            batch = store.batch()
            for source, fmt, events in batches:
                report.formats[source] = fmt
                batch.start_file()
                for event in events:
                    if isinstance(event, Invalid):
                        _invalid(report, event, skip_invalid)
                        continue
                    try:
                        batch.add(event)
                    except InvalidInput as error:
                        _invalid(report, error.record, skip_invalid)
            batch.finish()
            report.messages_added = batch.messages_added
            report.events_added = batch.events_added
            report.present = batch.present
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return report


def _invalid(report: IngestReport, invalid: Invalid, skip: bool) -> None:
    if not skip:
        raise InvalidInput.at(invalid)
    report.invalid.append(invalid)


# ------------------------------------------------------------------ commands


def find_deal(store: Store, ref: str) -> dict:
    deal = store.find_deal(str(ref).strip())
    if deal is None:
        raise NotFound(f"no deal {ref!r} (give a deal id or key; `chatcrm list` shows them)")
    return deal


def _chat_label(chat: dict) -> str:
    return f"{chat['chat_id']} ({chat['chat_key']}, opened {chat['opened_at']})"


def _deal_and_chat(store: Store, deal_ref: str, chat_ref: str | None) -> tuple[dict, list[dict], dict | None]:
    """The deal, its chats, and the chat a command acts on (see `_pick_chat`)."""
    deal = find_deal(store, deal_ref)
    chats = store.deal_chats(deal["deal_id"])
    return deal, chats, _pick_chat(deal, chats, chat_ref)


def _pick_chat(deal: dict, chats: list[dict], chat_ref: str | None) -> dict | None:
    """The chat the command names with --chat (its id or chat key), else its only open chat."""
    if chat_ref is not None:
        ref = str(chat_ref).strip()
        named = [c for c in chats if str(c["chat_id"]) == ref]
        if not named:
            named = [c for c in chats if c["chat_key"] == ref]
            open_named = [c for c in named if c["closed_at"] is None]
            named = open_named or named[-1:]
        if not named:
            raise NotFound(f"deal {deal['deal_id']} has no chat {ref!r}")
        return named[0]
    open_chats = [c for c in chats if c["closed_at"] is None]
    if len(open_chats) > 1:
        listing = "; ".join(_chat_label(c) for c in open_chats)
        raise Refused(f"deal {deal['deal_id']} has {len(open_chats)} open chats: {listing}; choose one with --chat")
    return open_chats[0] if open_chats else None


def _not_before(now: str, chat: dict, what: str) -> None:
    if now < chat["opened_at"]:
        raise Refused(f"cannot {what} at {now}: chat {chat['chat_id']} opened later, at {chat['opened_at']}")


def _waiting_refusal(chat: dict, what: str) -> Refused:
    return Refused(
        f"the client of chat {chat['chat_id']} ({chat['chat_key']}) has been waiting since "
        f"{chat['waiting_since']}; reply first, or {what} anyway with --force"
    )


def _record(store: Store, events: list[Event], count_stored_duplicates: bool = False) -> None:
    batch = store.batch(count_stored_duplicates)
    for event in events:
        batch.add(event)
    batch.finish()


def reply(store: Store, deal_ref: str, text: str, *, now: str, author: str, chat: str | None = None) -> Outcome:
    """R3: an agent message on the deal's open chat; the session becomes read."""
    if not text.strip():
        raise UsageError("the reply text is empty")
    if not author.strip():
        raise UsageError("the author is empty")
    with store.write():
        deal, _, target = _deal_and_chat(store, deal_ref, chat)
        if target is None:
            raise Refused(f"deal {deal['deal_id']} has no open chat to reply to")
        if target["closed_at"] is not None:
            raise Refused(f"chat {target['chat_id']} of deal {deal['deal_id']} is closed; a reply needs an open chat")
        _not_before(now, target, "reply")
        event = Event("message", target["chat_key"], now, direction="agent", author=author, text=text, source="reply")
        _record(store, [event], count_stored_duplicates=True)
    return Outcome(f"replied on deal {deal['deal_id']}, chat {target['chat_id']} ({target['chat_key']}) at {now}")


def close(
    store: Store, deal_ref: str, *, now: str, chat: str | None = None, force: bool = False, complete: bool = False
) -> Outcome:
    """R5 (and with `complete`, R7): close the deal's open chat session."""
    with store.write():
        deal, _, target = _deal_and_chat(store, deal_ref, chat)
        if target is None:
            return Outcome(f"deal {deal['deal_id']} has no open chat; nothing to close", changed=False)
        events = []
        if target["closed_at"] is None:
            _not_before(now, target, "close")
            if target["waiting_since"] and not force:
                raise _waiting_refusal(target, "close")
            events.append(Event("close", target["chat_key"], now, source="close"))
        if complete and target["completed_at"] is None:
            _not_before(now, target, "complete")
            events.append(Event("complete", target["chat_key"], now, session=target["opened_at"], source="close"))
        if not events:
            done = "closed and its activity completed" if complete else "closed"
            return Outcome(f"chat {target['chat_id']} of deal {deal['deal_id']} is already {done}; nothing changed", False)
        _record(store, events)
    what = "closed and completed activity " + str(target["activity_id"]) if complete else "closed"
    return Outcome(f"deal {deal['deal_id']}: chat {target['chat_id']} ({target['chat_key']}) {what} at {now}")


def complete(
    store: Store, deal_ref: str, *, now: str, activity: str | None = None, force: bool = False
) -> Outcome:
    """R7: complete the deal's active activity; an open session closes with it."""
    with store.write():
        deal = find_deal(store, deal_ref)
        chats = store.deal_chats(deal["deal_id"])
        if activity is not None:
            named = [c for c in chats if str(c["activity_id"]) == str(activity).strip()]
            if not named:
                raise NotFound(f"deal {deal['deal_id']} has no activity {activity!r}")
            target = named[0]
            if target["completed_at"] is not None:
                return Outcome(
                    f"activity {target['activity_id']} of deal {deal['deal_id']} was already completed at "
                    f"{target['completed_at']}; nothing changed",
                    changed=False,
                )
        else:
            active = [c for c in chats if c["completed_at"] is None]
            if not active:
                return Outcome(f"deal {deal['deal_id']} has no active activity; nothing to complete", changed=False)
            if len(active) > 1:
                listing = "; ".join(f"{c['activity_id']} (chat {_chat_label(c)})" for c in active)
                raise Refused(
                    f"deal {deal['deal_id']} has {len(active)} active activities: {listing}; choose one with --activity"
                )
            target = active[0]
        _not_before(now, target, "complete")
        if target["closed_at"] is None and target["waiting_since"] and not force:
            raise _waiting_refusal(target, "complete")
        _record(store, [Event("complete", target["chat_key"], now, session=target["opened_at"], source="complete")])
    closed = " and closed its chat" if target["closed_at"] is None else ""
    return Outcome(f"deal {deal['deal_id']}: completed activity {target['activity_id']}{closed} at {now}")


def assign(store: Store, deal_ref: str, agent: str, *, now: str, chat: str | None = None) -> Outcome:
    """Make `agent` responsible for the deal's open chat (else its latest chat)."""
    agent = agent.strip()
    if not agent:
        raise UsageError("the employee's name is empty")
    with store.write():
        deal, chats, target = _deal_and_chat(store, deal_ref, chat)
        if target is None:
            if not chats:
                raise Refused(f"deal {deal['deal_id']} has no chat to assign")
            target = chats[-1]
        if target["responsible"] == agent:
            return Outcome(
                f"chat {target['chat_id']} of deal {deal['deal_id']} is already {agent}'s; nothing changed", changed=False
            )
        _not_before(now, target, "assign")
        event = Event("assign", target["chat_key"], now, session=target["opened_at"], agent=agent, source="assign")
        _record(store, [event])
    return Outcome(f"deal {deal['deal_id']}: chat {target['chat_id']} ({target['chat_key']}) assigned to {agent} at {now}")


# ------------------------------------------------------------------ reading


def export(store: Store, deal_ref: str | None = None) -> Iterator[dict]:
    """Every stored fact (of one deal, when given) as a native event record (SPEC §4), in
    time order.

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
    deals_seen: set[int] = set()
    chats_seen: set[int] = set()
    for (kind, at, chat, uid, direction, author, text, session, agent,
         channel, contact, contact_at, title, title_at, deal_key, deal_id, chat_id, activity_id) in store.facts(only):
        record: dict = {"type": kind}
        if kind == "message" and uid.startswith("id:"):
            record["id"] = uid[3:]
        record["chat"] = chat
        if deal_key != chat:
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
            record.update({"from": direction, "author": author, "text": text})
        if session:
            record["session"] = session
        if agent is not None:
            record["agent"] = agent
        record["at"] = at
        yield record



@dataclass
class Queue:
    rows: list[dict]
    counts: dict[str, int]
    now: str
    agent: str | None = None
    sla_seconds: int | None = None
    overdue: int = 0  # unread deals (of `agent`) waiting longer than the SLA, shown or not

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def queue(
    store: Store,
    *,
    now: str,
    status: str | None = None,
    limit: int | None = None,
    agent: str | None = None,
    sla_seconds: int | None = None,
) -> Queue:
    """R9: the deals in queue order, with each group's count.

    `agent` keeps the deals that employee is responsible for; `sla_seconds` marks the
    deals whose client has waited longer than that as overdue.
    """
    if status is not None and status not in STATUSES:
        raise UsageError(f"unknown status {status!r} (use unread, green or grey)")
    if limit is not None and limit < 0:
        raise UsageError("--limit must be 0 or more")
    if agent is not None:
        agent = agent.strip()
        if not store.is_employee(agent):
            raise NotFound(f"no employee {agent!r}{_known_employees(store, agent)}")
    rows = store.queue(status, limit, agent)
    now_epoch = times.epoch(now)
    for row in rows:
        since = row["waiting_since"]
        row["waiting_seconds"] = max(0, now_epoch - times.epoch(since)) if since else None
        row["overdue"] = None if sla_seconds is None else (row["waiting_seconds"] or 0) > sla_seconds
    overdue = store.count_waiting_before(now_epoch - sla_seconds, agent) if sla_seconds is not None else 0
    return Queue(rows, store.queue_counts(agent), now, agent, sla_seconds, overdue)


def _known_employees(store: Store, name: str) -> str:
    import difflib

    names = store.employees()
    if not names:
        return " (nobody has replied or been assigned yet)"
    close = [n for n in names if n.casefold() == name.casefold()] or difflib.get_close_matches(name, names, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    shown = ", ".join(names[:10]) + (", …" if len(names) > 10 else "")
    return f" (employees: {shown})"


_TIMELINE_ORDER = {
    "deal_created": 0,
    "chat_opened": 1,
    "activity_created": 2,
    "message": 3,
    "chat_closed": 4,
    "activity_completed": 5,
    "assigned": 6,
}


def activity_state(chat: dict) -> str:
    if chat["completed_at"] is not None:
        return "completed"
    if chat["closed_at"] is None and chat["waiting_since"]:
        return "unread"
    return "active"


def timeline(store: Store, deal_ref: str) -> tuple[dict, list[dict]]:
    """R10: the deal card's history in time order."""
    deal = find_deal(store, deal_ref)
    chats = store.deal_chats(deal["deal_id"])
    entries: list[tuple] = []

    def add(at: str, kind: str, order: int, **values) -> None:
        entry = {"at": at, "kind": kind, "chat_id": None, "activity_id": None}
        entry.update(values)
        entries.append(((at, _TIMELINE_ORDER[kind], order), entry))

    add(deal["created_at"], "deal_created", 0, deal_id=deal["deal_id"], deal_key=deal["deal_key"])
    sessions_by_key: dict[str, list[tuple[str, int, dict]]] = {}
    for order, chat in enumerate(chats, start=1):
        ids = {"chat_id": chat["chat_id"], "activity_id": chat["activity_id"]}
        state = activity_state(chat)
        unread = state == "unread"
        add(chat["opened_at"], "chat_opened", order, **ids, chat_key=chat["chat_key"], channel=chat["channel"],
            opened_by=chat["opened_by"], unread=unread, waiting_since=chat["waiting_since"])
        add(chat["activity_created_at"], "activity_created", order, **ids, state=state)
        if chat["closed_at"] is not None:
            add(chat["closed_at"], "chat_closed", order, **ids)
        if chat["completed_at"] is not None:
            add(chat["completed_at"], "activity_completed", order, **ids, state="completed")
        sessions_by_key.setdefault(chat["chat_key"], []).append((chat["opened_at"], order, chat))
    for message in store.deal_messages(deal["deal_id"]):
        order, chat = _session_of(sessions_by_key.get(message["chat_key"], []), message["sent_at"])
        add(message["sent_at"], "message", order, chat_id=chat and chat["chat_id"],
            activity_id=chat and chat["activity_id"], direction=message["direction"],
            author=message["author"], text=message["text"])
    for assignment in store.deal_assignments(deal["deal_id"]):
        sessions = sessions_by_key.get(assignment["chat_key"], [])
        named = [s for s in sessions if s[0] == assignment["session"]]
        order, chat = (named[0][1], named[0][2]) if named else _session_of(sessions, assignment["at"])
        add(assignment["at"], "assigned", order, chat_id=chat and chat["chat_id"],
            activity_id=chat and chat["activity_id"], agent=assignment["agent"])
    entries.sort(key=lambda e: e[0])
    return deal, [entry for _, entry in entries]


def _session_of(sessions: list[tuple[str, int, dict]], at: str) -> tuple[int, dict | None]:
    found: tuple[int, dict | None] = (0, None)
    for opened_at, order, chat in sessions:
        if opened_at <= at:
            found = (order, chat)
    return found


def parse_at(value: str | None, tz, now: Callable[[], str] = times.now) -> str:
    """`--at TIME` (ISO 8601, read in `tz` when it has no offset), else the current time."""
    if value is None:
        return now()
    try:
        return times.parse(value, tz)
    except ValueError as error:
        raise UsageError(f"--at: {error}")

