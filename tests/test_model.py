"""Model-based testing: random interleavings of ingest, reply, close, complete and remind
through the service, compared after every step with a small reference model of R1–R9 and
the follow-ups of R11 (docs/rules.md; statuses due and pending, at two current times).

The model is written here from docs/rules.md alone: it keeps the facts in plain sets, derives
every session and deal from scratch on each look (no stored state, no incremental
refresh, no ids matching), predicts whether each command succeeds, changes nothing or is
refused, and orders the queue by R9. Times are drawn from a small grid, so facts arrive
out of order and share instants with each other (the tie rules of R2 and R5).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from chatcrm import actions, listing, service
from chatcrm.errors import NotFound, Refused
from chatcrm.store import open_store
from tests.helpers import ingest
from chatcrm.store import queries
from tests.helpers import said

CHATS = ("tg:1", "wa:2", "web:3", "tg:4")
NAMED_DEAL = {"web:3": "D-7", "tg:4": "D-7"}  # two chats on one deal
MINUTES = st.integers(0, 12)  # a small grid: many facts share an instant


def at(minute: int) -> str:
    return f"2026-11-24T10:{minute:02d}:00Z"


class Model:
    """R1–R9 (docs/rules.md) from the facts, recomputed on every question."""

    def __init__(self) -> None:
        self.messages: dict[tuple[str, str], tuple[str, str]] = {}  # (chat, id) -> (time, direction)
        self.closes: set[tuple[str, str]] = set()
        self.completes: set[tuple[str, str, str]] = set()  # (chat, time, named session or "")
        self.reminders: set[tuple[str, str, str, str, str]] = set()  # (chat, time, session or "", due or "", note)
        self.deal_ids: dict[str, int] = {}  # deal key -> id, in order of first appearance
        self.first_at: dict[str, str] = {}

    # facts
    def deal_key(self, chat: str) -> str:
        return NAMED_DEAL.get(chat, chat)

    def saw(self, chat: str, time: str) -> None:
        key = self.deal_key(chat)
        self.deal_ids.setdefault(key, len(self.deal_ids) + 1)
        self.first_at[key] = min(self.first_at.get(key, time), time)

    def chats_of(self, deal: str) -> list[str]:
        return [c for c in CHATS if self.deal_key(c) == deal]

    # R1–R7: a chat key's sessions
    def sessions(self, chat: str) -> list[dict]:
        timeline = [(t, 0, d) for (c, _), (t, d) in self.messages.items() if c == chat]
        timeline += [(t, 1, "") for c, t in self.closes if c == chat]
        timeline += [(t, 2, s) for c, t, s in self.completes if c == chat]
        # R11: reminders after everything else at their instant; among them the greatest
        # (due, note) last, so that it wins
        timeline += [(t, 3, (s, due, note)) for c, t, s, due, note in self.reminders if c == chat]
        timeline.sort(key=lambda f: (f[0], f[1], f[2][1:] if f[1] == 3 else ()))
        sessions: list[dict] = []
        current = None
        for time, kind, detail in timeline:
            if kind == 0:  # a message: opens a session when none is open (R1, R6)
                if current is None:
                    current = {"opened": time, "by": detail, "closed": None, "completed": None,
                               "last_agent": None, "waiting": None, "chat": chat, "follow_up": None,
                               "note": ""}
                    sessions.append(current)
                if detail == "agent":  # R3
                    current["last_agent"], current["waiting"] = time, None
                elif current["waiting"] is None and (current["last_agent"] is None or time > current["last_agent"]):
                    current["waiting"] = time  # R2, R4
            elif kind == 1:  # R5: a close with no open session changes nothing
                if current is not None:
                    current["closed"], current["waiting"], current = time, None, None
            elif kind == 3:  # R11: the reminder sets the follow-up of an active activity
                session, due, note = detail
                named = [s for s in sessions if s["opened"] == session]
                target = named[-1] if named else (sessions[-1] if sessions else None)
                if target is not None and target["completed"] is None:
                    target["follow_up"], target["note"] = (due, note) if due else (None, "")
            else:  # R7
                named = [s for s in sessions if s["opened"] == detail]
                target = named[-1] if named else (sessions[-1] if sessions else None)
                if target is None:
                    continue
                if target["completed"] is None:
                    target["completed"] = time
                    target["follow_up"], target["note"] = None, ""  # completion ends it
                if target is current:
                    current["closed"], current["waiting"], current = time, None, None
        return sessions

    # R2, R8, R11: a deal's state at `now`
    def deal(self, key: str, now: str) -> dict:
        sessions = [s for chat in self.chats_of(key) for s in self.sessions(chat)]
        waiting = [s["waiting"] for s in sessions if s["closed"] is None and s["waiting"] is not None]
        active = [s for s in sessions if s["completed"] is None]
        events = [self.first_at[key]]
        for chat in self.chats_of(key):
            events += [t for (c, _), (t, _d) in self.messages.items() if c == chat]
        events += [s[f] for s in sessions for f in ("closed", "completed") if s[f]]
        follow_ups = [s["follow_up"] for s in active if s["follow_up"] is not None]
        if waiting:
            status = "unread"
        elif not active:
            status = "grey"
        elif follow_ups and min(follow_ups) <= now:
            status = "due"  # its time has come, at that very instant
        elif len(follow_ups) == len(active):
            status = "pending"
        else:
            status = "green"
        state = {
            "status": status,
            "due_at": min(follow_ups) if follow_ups else None,
            "waiting_since": min(waiting) if waiting else None,
            "open_chats": sum(1 for s in sessions if s["closed"] is None),
            "active_activities": len(active),
        }
        state["_oldest_active"] = min((s["opened"] for s in active), default=None)
        state["_last_event"] = max(events)
        return state

    # R9, R11
    def queue(self, now: str) -> list[str]:
        def place(key: str):
            d = self.deal(key, now)
            if d["status"] == "unread":
                return (0, d["waiting_since"], "", self.deal_ids[key])
            if d["status"] == "due":
                return (1, d["due_at"], "", self.deal_ids[key])
            if d["status"] == "green":
                return (2, d["_oldest_active"], "", self.deal_ids[key])
            if d["status"] == "pending":
                return (3, d["due_at"], "", self.deal_ids[key])
            # grey: most recent first — invert the time text for an ascending sort
            return (4, "", "".join(chr(0x10FFFF - ord(ch)) for ch in d["_last_event"]), self.deal_ids[key])

        return sorted(self.deal_ids, key=place)

    # the commands' outcomes: ("ok", chat, session) | ("nothing", …) | ("refused", …) | ("not found", …)
    def open_sessions(self, deal: str) -> list[dict]:
        return [s for chat in self.chats_of(deal) for s in self.sessions(chat) if s["closed"] is None]

    def predict_reply(self, deal: str, now: str):
        if deal not in self.deal_ids:
            return ("not found", None)
        open_ = self.open_sessions(deal)
        if len(open_) != 1 or now < open_[0]["opened"]:
            return ("refused", None)
        return ("ok", open_[0])

    def predict_close(self, deal: str, now: str, force: bool):
        if deal not in self.deal_ids:
            return ("not found", None)
        open_ = self.open_sessions(deal)
        if not open_:
            return ("nothing", None)
        if len(open_) > 1 or now < open_[0]["opened"] or (open_[0]["waiting"] and not force):
            return ("refused", None)
        return ("ok", open_[0])

    def predict_complete(self, deal: str, now: str, force: bool):
        if deal not in self.deal_ids:
            return ("not found", None)
        active = [s for chat in self.chats_of(deal) for s in self.sessions(chat) if s["completed"] is None]
        if not active:
            return ("nothing", None)
        target = active[0]
        if len(active) > 1 or now < target["opened"]:
            return ("refused", None)
        if target["closed"] is None and target["waiting"] and not force:
            return ("refused", None)
        return ("ok", target)

    def predict_remind(self, deal: str, now: str, due: str | None, note: str):
        if deal not in self.deal_ids:
            return ("not found", None)
        active = [s for chat in self.chats_of(deal) for s in self.sessions(chat) if s["completed"] is None]
        if len(active) != 1:
            return ("refused", None)
        target = active[0]
        if due is None and target["follow_up"] is None:
            return ("nothing", None)
        if due is not None and (target["follow_up"], target["note"]) == (due, note):
            return ("nothing", None)
        if now < target["opened"]:
            return ("refused", None)
        fact = (target["chat"], now, target["opened"], due or "", note if due else "")
        self.reminders.add(fact)
        after = [s for s in self.sessions(target["chat"]) if s["opened"] == target["opened"]]
        self.reminders.discard(fact)
        if after[0]["follow_up"] != due:  # another reminder of that instant wins
            return ("refused", None)
        return ("ok", target)


class ChatcrmMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.TemporaryDirectory()
        self.store = open_store(Path(self.folder.name) / "model.db")
        self.model = Model()
        self.ingested: list[dict] = []
        self.count = 0

    def teardown(self) -> None:
        self.store.close()
        self.folder.cleanup()

    def _ingest(self, record: dict) -> None:
        if record["chat"] in NAMED_DEAL:
            record["deal"] = NAMED_DEAL[record["chat"]]
        ingest(self.store, [record])
        self.ingested.append(record)

    # ---- imports (facts, arriving in any order)

    @initialize(minutes=st.lists(MINUTES, min_size=len(CHATS), max_size=len(CHATS)))
    def every_chat_has_written(self, minutes):
        for chat, minute in zip(CHATS, minutes):
            self.import_message(chat, minute, "client")

    @rule(chat=st.sampled_from(CHATS), minute=MINUTES, direction=st.sampled_from(["client", "client", "agent"]))
    def import_message(self, chat, minute, direction):
        time = at(minute)
        self.count += 1
        self._ingest({"type": "message", "id": f"m{self.count}", "chat": chat, "from": direction,
                      "author": "Luis" if direction == "agent" else "Ana", "text": f"t{self.count}", "at": time})
        self.model.messages[(chat, f"m{self.count}")] = (time, direction)
        self.model.saw(chat, time)

    @rule(chat=st.sampled_from(CHATS), minute=MINUTES)
    def import_close(self, chat, minute):
        self._ingest({"type": "close", "chat": chat, "at": at(minute)})
        self.model.closes.add((chat, at(minute)))
        self.model.saw(chat, at(minute))

    @rule(chat=st.sampled_from(CHATS), minute=MINUTES)
    def import_complete(self, chat, minute):
        self._ingest({"type": "complete", "chat": chat, "at": at(minute)})
        self.model.completes.add((chat, at(minute), ""))
        self.model.saw(chat, at(minute))

    @rule(chat=st.sampled_from(CHATS), minute=MINUTES, due=st.one_of(st.none(), st.integers(0, 20)),
          note=st.sampled_from(["", "llamar"]))
    def import_remind(self, chat, minute, due, note):
        record = {"type": "remind", "chat": chat, "at": at(minute)}
        if due is None:
            record["clear"] = True
        else:
            record.update(due=at(due), note=note)
        self._ingest(record)
        self.model.reminders.add((chat, at(minute), "", at(due) if due is not None else "", note if due is not None else ""))
        self.model.saw(chat, at(minute))

    @rule(data=st.data())
    def import_again(self, data):
        if self.ingested:
            report = ingest(self.store, [data.draw(st.sampled_from(self.ingested))])
            assert (report.messages_added, report.events_added, report.present) == (0, 0, 1)

    # ---- commands (rules that read the state they act on)

    def _act(self, command: str, predicted, call):
        expected, target = predicted
        event(f"{command}: {expected}")
        try:
            outcome = call()
        except Refused:
            assert expected == "refused"
            return None
        except NotFound:
            assert expected == "not found"
            return None
        assert expected == ("ok" if outcome.changed else "nothing"), (expected, said(outcome))
        return target if outcome.changed else None

    @rule(chat=st.sampled_from(CHATS), minute=MINUTES)
    def reply(self, chat, minute):
        deal, now = self.model.deal_key(chat), at(minute)
        predicted = self.model.predict_reply(deal, now)
        self.count += 1
        target = self._act("reply", predicted, lambda: actions.reply(self.store, deal, f"r{self.count}", now=now, author="Luis"))
        if target is not None:
            self.model.messages[(target["chat"], f"reply{self.count}")] = (now, "agent")

    @rule(chat=st.sampled_from(CHATS), minute=MINUTES, force=st.booleans())
    def close(self, chat, minute, force):
        deal, now = self.model.deal_key(chat), at(minute)
        target = self._act("close", self.model.predict_close(deal, now, force),
                           lambda: actions.close(self.store, deal, now=now, force=force))
        if target is not None:
            self.model.closes.add((target["chat"], now))

    @rule(chat=st.sampled_from(CHATS), minute=MINUTES, force=st.booleans())
    def complete(self, chat, minute, force):
        deal, now = self.model.deal_key(chat), at(minute)
        target = self._act("complete", self.model.predict_complete(deal, now, force),
                           lambda: actions.complete(self.store, deal, now=now, force=force))
        if target is not None:
            self.model.completes.add((target["chat"], now, target["opened"]))

    @rule(chat=st.sampled_from(CHATS), minute=MINUTES, later=st.one_of(st.none(), st.integers(1, 8)),
          note=st.sampled_from(["", "llamar"]))
    def remind(self, chat, minute, later, note):
        deal, now = self.model.deal_key(chat), at(minute)
        due = at(minute + later) if later is not None else None
        predicted = self.model.predict_remind(deal, now, due, note if due else "")
        target = self._act("remind", predicted,
                           lambda: actions.remind(self.store, deal, now=now, due_at=due, note=note if due else ""))
        if target is not None:
            self.model.reminders.add((target["chat"], now, target["opened"], due or "", note if due else ""))

    # ---- after every step: the store says what the model says

    @invariant()
    def same_deals_sessions_and_queue(self):
        # at the end of the grid's hour (every follow-up has come), and in its middle
        for now in (at(59), at(8)):
            self.same_at(now, with_sessions=now == at(59))

    def same_at(self, now, with_sessions):
        queue = listing.queue(self.store, now=now)
        rows = queue.rows
        assert [r["deal_key"] for r in rows] == self.model.queue(now), now
        modelled_counts = {status: 0 for status in queue.counts}
        for key in self.model.deal_ids:
            modelled_counts[self.model.deal(key, now)["status"]] += 1
        assert queue.counts == modelled_counts, now
        for row in rows:
            expected = self.model.deal(row["deal_key"], now)
            assert {k: row[k] for k in expected if not k.startswith("_")} == {
                k: v for k, v in expected.items() if not k.startswith("_")
            }, row["deal_key"]
            assert row["deal_id"] == self.model.deal_ids[row["deal_key"]]
            if not with_sessions:  # the sessions do not depend on the time: compared once
                continue
            stored = sorted(
                (c["chat_key"], c["opened_at"], c["closed_at"], c["completed_at"], c["waiting_since"],
                 c["follow_up_at"])
                for c in queries.deal_chats(self.store, row["deal_id"])
            )
            modelled = sorted(
                (s["chat"], s["opened"], s["closed"], s["completed"], s["waiting"] if s["closed"] is None else None,
                 s["follow_up"])
                for chat in self.model.chats_of(row["deal_key"])
                for s in self.model.sessions(chat)
            )
            assert stored == modelled, row["deal_key"]


ChatcrmMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_the_service_follows_the_reference_model = pytest.mark.slow(ChatcrmMachine.TestCase)
