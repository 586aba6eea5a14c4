"""Pure derivation of states from facts (docs/rules.md, R1–R9): no database, no clock.

The store feeds these functions the facts of one chat key (or one deal) and saves what
they return; `chatcrm check` runs them again from scratch and compares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, NamedTuple

from chatcrm import times
from chatcrm.rules import follow_ups, statuses
from chatcrm.rules.order import FACT_RANK


class MessageFact(NamedTuple):
    at: str
    seq: int
    direction: str
    id: int
    author: str = ""


class ChatEventFact(NamedTuple):
    at: str
    kind: str  # "close" | "complete" | "assign" | "remind"
    session: str  # a complete's, an assignment's or a reminder's target session (opened-at), or ""
    agent: str = ""  # an assignment's employee
    due_at: str | None = None  # a reminder's follow-up time (None: a clear)
    note: str = ""  # a reminder's note


class Wait(NamedTuple):
    """A client waiting for an answer: from the first unanswered client message until the
    reply (`by` its author), or until the session closed (`by` None), or still (`end` None)."""

    start: str
    end: str | None
    by: str | None


@dataclass(slots=True)
class Session:
    """One chat session of a chat key and the activity it created (R1)."""

    opened_at: str
    opened_by: str
    closed_at: str | None = None
    completed_at: str | None = None
    waiting_since: str | None = None  # first client message after the last agent message
    last_agent_at: str | None = None
    last_message_at: str | None = None
    last_message_id: int | None = None
    messages: int = 0
    first_response_at: str | None = None
    first_reply_by: str | None = None  # the author of the session's first agent message
    assigned_to: str | None = None  # the latest assignment to this session
    responsible: str | None = None  # see derive_sessions
    follow_up_at: str | None = None  # R11: the activity's follow-up while it is active
    follow_up_note: str = ""
    waits: list[Wait] | None = None  # only when derive_sessions(track_waits=True)

    @property
    def unread(self) -> bool:
        return statuses.is_unread(self.closed_at, self.waiting_since)


_CLOSE, _COMPLETE, _ASSIGN, _REMIND = (FACT_RANK[k] for k in ("close", "complete", "assign", "remind"))


def derive_sessions(
    messages: Iterable[MessageFact], events: Iterable[ChatEventFact], *, track_waits: bool = False
) -> list[Session]:
    """R1–R7 for one chat key: its sessions, in time order, from its facts.

    At one instant, messages come before a close or completion (a message at the same
    instant as the close still belongs to the session), and a close before a completion
    (rules/order.py).

    Each session's responsible employee is the one it was last assigned to, else the
    author of its first reply, else the previous session's responsible (a client who
    writes again goes back to the employee who looked after them).

    With `track_waits`, each session also lists its waits (for `chatcrm stats`).
    """
    # (time, kind, line, arrival, fact): the arrival number is unique, so the sort never
    # compares two facts and keeps arrival order among equals, with no key function.
    # Within one instant, facts apply in the order of rules/order.py.
    message_rank = FACT_RANK["message"]
    facts: list[tuple] = [(m.at, message_rank, m.seq, n, m) for n, m in enumerate(messages)]
    arrival = len(facts)
    # Reminders of one instant apply in the order of rules/follow_ups.py (the last wins),
    # whatever their arrival.
    facts.extend(
        (e.at, FACT_RANK[e.kind], follow_ups.instant_order(e.due_at, e.note) if e.kind == "remind" else 0,
         arrival + n, e)
        for n, e in enumerate(events)
    )
    facts.sort()
    sessions: list[Session] = []
    current: Session | None = None
    for at, rank, _, _, fact in facts:
        if rank == message_rank:
            if current is None:
                current = Session(opened_at=at, opened_by=fact.direction, waits=[] if track_waits else None)
                sessions.append(current)
            _add_message(current, fact)
        elif rank == _CLOSE:
            if current is not None:
                _close(current, at)
                current = None
        elif rank == _ASSIGN:
            target = _complete_target(sessions, fact.session)
            if target is not None:
                target.assigned_to = fact.agent
        elif rank == _REMIND:
            # R11: the latest reminder sets (or clears) the follow-up of an active activity.
            target = _complete_target(sessions, fact.session)
            if target is not None and target.completed_at is None:
                target.follow_up_at, target.follow_up_note = fact.due_at, fact.note if fact.due_at else ""
        else:
            target = _complete_target(sessions, fact.session)
            if target is None:
                continue
            if target.completed_at is None:
                target.completed_at = at
                target.follow_up_at, target.follow_up_note = None, ""  # R11: completion ends it
            if target is current:
                _close(current, at)
                current = None
    if current is not None and current.waits is not None and current.waiting_since is not None:
        current.waits.append(Wait(current.waiting_since, None, None))
    previous = None
    for session in sessions:
        session.responsible = session.assigned_to or session.first_reply_by or previous
        previous = session.responsible
    return sessions


def _close(session: Session, at: str) -> None:
    if session.waits is not None and session.waiting_since is not None:
        session.waits.append(Wait(session.waiting_since, at, None))
    session.closed_at = at
    session.waiting_since = None


def _add_message(session: Session, message: MessageFact) -> None:
    at = message.at
    session.messages += 1
    session.last_message_at = at
    session.last_message_id = message.id
    if message.direction == "agent":
        if session.first_reply_by is None:
            session.first_reply_by = message.author
        if session.waiting_since is not None:
            if session.first_response_at is None:
                session.first_response_at = at
            if session.waits is not None:
                session.waits.append(Wait(session.waiting_since, at, message.author))
        session.waiting_since = None
        session.last_agent_at = at
    elif session.waiting_since is None and (session.last_agent_at is None or at > session.last_agent_at):
        session.waiting_since = at


def _complete_target(sessions: list[Session], opened_at: str) -> Session | None:
    """A completion's (or an assignment's) session: the one it names, else the latest
    opened so far (R7)."""
    if opened_at:
        for session in reversed(sessions):
            if session.opened_at == opened_at:
                return session
    return sessions[-1] if sessions else None


@dataclass
class ChatState:
    """What the deal needs of one stored chat session and its activity."""

    opened_at: str
    closed_at: str | None
    waiting_since: str | None
    activity_created_at: str
    completed_at: str | None
    last_message_at: str | None
    last_message_id: int | None
    responsible: str | None = None
    follow_up_at: str | None = None


@dataclass
class DealState:
    status: str = statuses.GREY  # R8's status (unread, green, grey): the one that needs no clock
    status_rank: int = statuses.RANK[statuses.GREY]  # rules/statuses.py, stored_rank
    waiting_since: str | None = None
    oldest_active_at: str | None = None
    open_chats: int = 0
    active_activities: int = 0
    last_message_at: str | None = None
    last_message_id: int | None = None
    last_event_at: str | None = None
    queue_key: int = 0
    responsible: str | None = None
    follow_up_at: str | None = None  # R11: the earliest follow-up of its active activities
    due_key: int | None = None  # when it turns due (rules/statuses.py)


def derive_deal(chats: Iterable[ChatState], created_at: str | None) -> DealState:
    """R2, R8, R9 for one deal: status, waiting-since, counters and its place in the queue.

    Its responsible employee is that of its most recently opened session that has one.
    """
    state = DealState()
    last_events: list[str] = [created_at] if created_at else []
    latest_responsible: tuple[str, str] | None = None  # (opened at, name): the latest wins
    unfollowed = 0  # active activities without a follow-up
    for chat in chats:
        if chat.responsible is not None and (
            latest_responsible is None or (chat.opened_at, chat.responsible) > latest_responsible
        ):
            latest_responsible = (chat.opened_at, chat.responsible)
        if chat.closed_at is None:
            state.open_chats += 1
            if chat.waiting_since is not None:
                state.waiting_since = _earliest(state.waiting_since, chat.waiting_since)
        if chat.completed_at is None:
            state.active_activities += 1
            state.oldest_active_at = _earliest(state.oldest_active_at, chat.activity_created_at)
            if chat.follow_up_at is None:
                unfollowed += 1
            else:
                state.follow_up_at = _earliest(state.follow_up_at, chat.follow_up_at)
        if chat.last_message_at is not None and (
            state.last_message_at is None
            or (chat.last_message_at, chat.last_message_id or 0) > (state.last_message_at, state.last_message_id or 0)
        ):
            state.last_message_at = chat.last_message_at
            state.last_message_id = chat.last_message_id
        last_events.extend(t for t in (chat.last_message_at, chat.closed_at, chat.completed_at) if t)
    state.last_event_at = max(last_events) if last_events else None
    state.responsible = latest_responsible[1] if latest_responsible else None
    state.status = statuses.base_status(state.waiting_since, state.active_activities)
    state.status_rank = statuses.stored_rank(state.status, unfollowed == 0)
    follow_up_epoch = times.epoch(state.follow_up_at) if state.follow_up_at else None
    state.queue_key = statuses.queue_key(
        state.status_rank, *(times.epoch(t) if t else None for t in (state.waiting_since, state.oldest_active_at,
                                                                      state.last_event_at)),
        follow_up_epoch,
    )
    state.due_key = statuses.due_key(state.status, follow_up_epoch)
    return state


def _earliest(current: str | None, candidate: str) -> str:
    return candidate if current is None or candidate < current else current
