"""What an employee does on a deal: reply, close, complete, assign, remind — on one deal
or on many in one transaction (docs/rules.md).

No printing, no clock and no environment here: the caller passes `now`, and the renderer
words the `Outcome` that comes back. Every operation runs in one write transaction and
reads the state it checks inside that transaction, so concurrent commands cannot act on a
stale view. Kept apart from `chatcrm.service` so that these everyday commands load only
what they use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chatcrm import times
from chatcrm.errors import InvalidInput, NotFound, Refused, UsageError, clipped
from chatcrm.rules import statuses
from chatcrm.store import Store, queries
from chatcrm.store import outbox as outbox_store
from chatcrm.times import Moment

if TYPE_CHECKING:
    from chatcrm.events import Event


@dataclass
class Outcome:
    """What a command did, or (`changed` False) why it had nothing to do.

    `action`: replied, closed, completed, assigned or reminded. `reason`, when nothing
    changed: no_open_chat, already_closed, no_active_activity, already_completed,
    already_assigned, already_set, no_follow_up.
    """

    action: str
    deal_id: int
    at: str
    changed: bool = True
    reason: str | None = None
    chat_id: int | None = None
    chat_key: str | None = None
    activity_id: int | None = None
    completed: bool = False  # close --complete: the activity was completed too
    closed: bool = False  # complete: the open chat closed with it
    agent: str | None = None
    completed_at: str | None = None  # already_completed: when
    queued: int | None = None  # reply: its id in the outbox, when its chat is a live channel's
    channel: str | None = None
    due_at: str | None = None  # reminded: the follow-up's time (None: cleared)
    previous_due_at: str | None = None  # reminded: the follow-up it replaced or cleared
    note: str = ""


# ------------------------------------------------------------------ one deal


def find_deal(store: Store, ref: str, now: str | None = None) -> dict:
    """The deal named by its id or key; its status is the one at `now` (R11), or without a
    time R8's alone."""
    deal = queries.find_deal(store, str(ref).strip(), times.epoch(now) if now is not None else None)
    if deal is None:
        raise NotFound(f"no deal {clipped(str(ref))!r} (give a deal id or key; `chatcrm list` shows them)")
    return deal


def _chat_label(chat: dict) -> tuple:
    return (f"{chat['chat_id']} ({chat['chat_key']}, opened ", Moment(chat["opened_at"]), ")")


def _listing(items: list[tuple]) -> list:
    parts: list = []
    for n, item in enumerate(items):
        if n:
            parts.append("; ")
        parts.extend(item)
    return parts


def _deal_and_chat(store: Store, deal_ref: str, chat_ref: str | None) -> tuple[dict, list[dict], dict | None]:
    """The deal, its chats, and the chat a command acts on (see `_pick_chat`)."""
    deal = find_deal(store, deal_ref)
    chats = queries.deal_chats(store, deal["deal_id"])
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
        raise Refused(f"deal {deal['deal_id']} has {len(open_chats)} open chats: ",
                      *_listing([_chat_label(c) for c in open_chats]), "; choose one with --chat")
    return open_chats[0] if open_chats else None


def _not_before(now: str, chat: dict, what: str) -> None:
    if now < chat["opened_at"]:
        raise Refused(f"cannot {what} at ", Moment(now), f": chat {chat['chat_id']} opened later, at ",
                      Moment(chat["opened_at"]))


def client_waits(chat: dict) -> bool:
    return statuses.is_unread(chat["closed_at"], chat["waiting_since"])


def _waiting_refusal(chat: dict, what: str) -> Refused:
    return Refused(
        f"the client of chat {chat['chat_id']} ({chat['chat_key']}) has been waiting since ",
        Moment(chat["waiting_since"]), f"; reply first, or {what} anyway with --force",
    )


def record(store: Store, events: list[Event], command: str, arguments: dict, now: str,
            count_stored_duplicates: bool = False) -> int:
    """Record a command's facts as one change; returns its id."""
    from chatcrm.store import changes
    from chatcrm.store.batch import ImportBatch

    change_id = changes.begin(store, now, command, arguments)
    batch = ImportBatch(store, count_stored_duplicates, change_id=change_id)
    for event in events:
        batch.add(event)
    batch.finish()
    changes.set_counts(store, change_id, messages_added=batch.messages_added, events_added=batch.events_added,
                       present=batch.present)
    return change_id


def reply(store: Store, deal_ref: str, text: str | None, *, now: str, author: str, chat: str | None = None,
          template: str | None = None) -> Outcome:
    """R3: an agent message on the deal's open chat; the session becomes read.

    With `template` (a canned reply, chatcrm.settings), the text is that template with the
    deal's contact, key and the author filled in."""
    from chatcrm.events import Event

    if template is None and not (text or "").strip():
        raise UsageError("the reply text is empty")
    if not author.strip():
        raise UsageError("the author is empty")
    with store.write():
        deal, _, target = _deal_and_chat(store, deal_ref, chat)
        if template is not None:
            from chatcrm.settings import fill

            text = fill(template, contact=deal["contact"], deal=deal["deal_key"], agent=author)
        if "\x00" in text:
            raise InvalidInput("the reply text holds a NUL character, which no channel carries")
        if target is None:
            raise Refused(f"deal {deal['deal_id']} has no open chat to reply to")
        if target["closed_at"] is not None:
            raise Refused(f"chat {target['chat_id']} of deal {deal['deal_id']} is closed; a reply needs an open chat")
        _not_before(now, target, "reply")
        event = Event("message", target["chat_key"], now, direction="agent", author=author, text=text, source="reply")
        record(store, [event], "reply", {"deal": deal["deal_id"], "chat": target["chat_id"], "text": text,
                                          "author": author}, now, count_stored_duplicates=True)
        queued = None
        live = outbox_store.live_chat(store, target["chat_key"])
        if live is not None:
            queued = outbox_store.enqueue(store, queries.latest_message_id(store, event), live, now)
    return Outcome("replied", deal["deal_id"], now, chat_id=target["chat_id"], chat_key=target["chat_key"],
                   queued=queued, channel=live["channel"] if live else None)


def close(
    store: Store, deal_ref: str, *, now: str, chat: str | None = None, force: bool = False, complete: bool = False
) -> Outcome:
    """R5 (and with `complete`, R7): close the deal's open chat session."""
    from chatcrm.events import Event

    with store.write():
        deal, _, target = _deal_and_chat(store, deal_ref, chat)
        if target is None:
            return Outcome("closed", deal["deal_id"], now, changed=False, reason="no_open_chat")
        ids = {"chat_id": target["chat_id"], "chat_key": target["chat_key"], "activity_id": target["activity_id"]}
        events = []
        if target["closed_at"] is None:
            _not_before(now, target, "close")
            if client_waits(target) and not force:
                raise _waiting_refusal(target, "close")
            events.append(Event("close", target["chat_key"], now, source="close"))
        if complete and target["completed_at"] is None:
            _not_before(now, target, "complete")
            events.append(Event("complete", target["chat_key"], now, session=target["opened_at"], source="close"))
        if not events:
            return Outcome("closed", deal["deal_id"], now, changed=False, reason="already_closed",
                           completed=complete, **ids)
        record(store, events, "close", {"deal": deal["deal_id"], "chat": target["chat_id"], "force": force,
                                         "complete": complete}, now)
    return Outcome("closed", deal["deal_id"], now, completed=complete, **ids)


def complete(
    store: Store, deal_ref: str, *, now: str, activity: str | None = None, force: bool = False
) -> Outcome:
    """R7: complete the deal's active activity; an open session closes with it."""
    from chatcrm.events import Event

    with store.write():
        deal = find_deal(store, deal_ref)
        chats = queries.deal_chats(store, deal["deal_id"])
        if activity is not None:
            named = [c for c in chats if str(c["activity_id"]) == str(activity).strip()]
            if not named:
                raise NotFound(f"deal {deal['deal_id']} has no activity {activity!r}")
            target = named[0]
            if target["completed_at"] is not None:
                return Outcome("completed", deal["deal_id"], now, changed=False, reason="already_completed",
                               activity_id=target["activity_id"], completed_at=target["completed_at"])
        else:
            active = [c for c in chats if c["completed_at"] is None]
            if not active:
                return Outcome("completed", deal["deal_id"], now, changed=False, reason="no_active_activity")
            if len(active) > 1:
                listing = _listing([(f"{c['activity_id']} (chat ", *_chat_label(c), ")") for c in active])
                raise Refused(f"deal {deal['deal_id']} has {len(active)} active activities: ", *listing,
                              "; choose one with --activity")
            target = active[0]
        _not_before(now, target, "complete")
        if client_waits(target) and not force:
            raise _waiting_refusal(target, "complete")
        record(store, [Event("complete", target["chat_key"], now, session=target["opened_at"], source="complete")],
                "complete", {"deal": deal["deal_id"], "activity": target["activity_id"], "force": force}, now)
    return Outcome("completed", deal["deal_id"], now, chat_id=target["chat_id"], chat_key=target["chat_key"],
                   activity_id=target["activity_id"], closed=target["closed_at"] is None)


def assign(store: Store, deal_ref: str, agent: str, *, now: str, chat: str | None = None) -> Outcome:
    """Make `agent` responsible for the deal's open chat (else its latest chat)."""
    from chatcrm.events import Event

    agent = agent.strip()
    if not agent:
        raise UsageError("the employee's name is empty")
    with store.write():
        deal, chats, target = _deal_and_chat(store, deal_ref, chat)
        if target is None:
            if not chats:
                raise Refused(f"deal {deal['deal_id']} has no chat to assign")
            target = chats[-1]
        ids = {"chat_id": target["chat_id"], "chat_key": target["chat_key"], "agent": agent}
        if target["responsible"] == agent:
            return Outcome("assigned", deal["deal_id"], now, changed=False, reason="already_assigned", **ids)
        _not_before(now, target, "assign")
        event = Event("assign", target["chat_key"], now, session=target["opened_at"], agent=agent, source="assign")
        record(store, [event], "assign", {"deal": deal["deal_id"], "chat": target["chat_id"], "agent": agent}, now)
    return Outcome("assigned", deal["deal_id"], now, **ids)


def _pick_activity(deal: dict, chats: list[dict], activity: str | None, what: str) -> dict:
    """The activity a command names with --activity, else the deal's only active one."""
    if activity is not None:
        named = [c for c in chats if str(c["activity_id"]) == str(activity).strip()]
        if not named:
            raise NotFound(f"deal {deal['deal_id']} has no activity {activity!r}")
        return named[0]
    active = [c for c in chats if c["completed_at"] is None]
    if not active:
        raise Refused(f"deal {deal['deal_id']} has no active activity to {what}")
    if len(active) > 1:
        listing = _listing([(f"{c['activity_id']} (chat ", *_chat_label(c), ")") for c in active])
        raise Refused(f"deal {deal['deal_id']} has {len(active)} active activities: ", *listing,
                      "; choose one with --activity")
    return active[0]


def remind(
    store: Store, deal_ref: str, *, now: str, due_at: str | None, note: str = "", activity: str | None = None
) -> Outcome:
    """R11: set the follow-up of the deal's active activity to `due_at` (None clears it)."""
    from chatcrm.events import Event

    note = note.strip()
    if due_at is not None and due_at <= now:
        raise UsageError("the follow-up time ", Moment(due_at), " is not later than now (", Moment(now),
                         "); give a duration such as 2h, or a later time")
    with store.write():
        deal = find_deal(store, deal_ref)
        target = _pick_activity(deal, queries.deal_chats(store, deal["deal_id"]), activity, "follow up")
        ids = {"chat_id": target["chat_id"], "chat_key": target["chat_key"], "activity_id": target["activity_id"]}
        if target["completed_at"] is not None:
            raise Refused(f"activity {target['activity_id']} of deal {deal['deal_id']} was completed at ",
                          Moment(target["completed_at"]), "; a follow-up needs an active activity")
        previous = target["follow_up_at"]
        if due_at is None and previous is None:
            return Outcome("reminded", deal["deal_id"], now, changed=False, reason="no_follow_up", **ids)
        if due_at is not None and (previous, target["follow_up_note"]) == (due_at, note):
            return Outcome("reminded", deal["deal_id"], now, changed=False, reason="already_set", due_at=due_at,
                           note=note, **ids)
        _not_before(now, target, "set a follow-up")
        record(store, [Event("remind", target["chat_key"], now, session=target["opened_at"], due_at=due_at,
                              note=note if due_at else "", source="remind")],
                "remind", {"deal": deal["deal_id"], "activity": target["activity_id"], "due_at": due_at, "note": note},
                now)
        after = [c for c in queries.deal_chats(store, deal["deal_id"]) if c["activity_id"] == target["activity_id"]]
        if not after or after[0]["follow_up_at"] != due_at:
            # At one instant the greatest follow-up wins (rules/follow_ups.py): this one did not.
            raise Refused(f"activity {target['activity_id']} has another reminder at ", Moment(now),
                          " that wins at that instant; give a later --at")
    return Outcome("reminded", deal["deal_id"], now, due_at=due_at, previous_due_at=previous, note=note, **ids)


# ------------------------------------------------------------------ many deals at once


class ManyRefused(Refused):
    """Some deals of a command on many were refused by a rule: nothing changed."""

    def __init__(self, refusals: list["Refusal"], total: int):
        super().__init__(f"{len(refusals)} of {total} deals refused by a rule; nothing changed "
                         "(--skip-refused applies the rest)")
        self.refusals = refusals


@dataclass
class Refusal:
    deal_id: int
    error: Refused


@dataclass
class ManyOutcome:
    """What a command did on each of several deals: `outcomes` in the order given, and
    with `skip_refused` the deals a rule refused (`skipped`)."""

    outcomes: list[Outcome]
    skipped: list[Refusal] = field(default_factory=list)


def on_many(store: Store, deal_refs: list[str], act, *, skip_refused: bool = False) -> ManyOutcome:
    """Apply `act(deal_ref) -> Outcome` (reply, close, complete, assign) to each deal in
    one transaction. Every deal must exist (else NotFound naming the unknown ones, and
    nothing changes); a deal named twice is acted on once. When a rule refuses some,
    nothing changes and ManyRefused lists each with its reason — unless `skip_refused`:
    then the others are applied and the refused ones reported as skipped."""
    refs = [str(ref).strip() for ref in deal_refs]
    outcomes: list[Outcome] = []
    refusals: list[Refusal] = []
    with store.write():
        found, unknown = {}, []
        for ref in refs:
            deal = queries.find_deal(store, ref)
            if deal is None:
                unknown.append(ref)
            else:
                found.setdefault(deal["deal_id"], ref)
        if unknown:
            names = ", ".join(repr(clipped(ref)) for ref in list(dict.fromkeys(unknown))[:10])
            names += f" and {len(set(unknown)) - 10} more" if len(set(unknown)) > 10 else ""
            raise NotFound(f"no deal {names} (give deal ids or keys, one per line on stdin; "
                           "`chatcrm list --format ids` prints them); nothing changed")
        conn = store.conn
        for deal_id in found:
            conn.execute("SAVEPOINT one_deal")
            try:
                outcomes.append(act(str(deal_id)))
            except Refused as error:
                conn.execute("ROLLBACK TO one_deal")
                refusals.append(Refusal(deal_id, error))
            conn.execute("RELEASE one_deal")
        if refusals and not skip_refused:
            raise ManyRefused(refusals, len(found))
    return ManyOutcome(outcomes, refusals)
