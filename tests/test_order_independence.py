"""docs/rules.md, "Facts and states": states follow from the facts' timestamps, never from arrival order.

Shuffled, split and repeated imports must leave exactly the `list` and `timeline` that one
import in time order gives. Deal, chat and activity ids are handed out as things are
first seen, so the comparison names them by what they are (deal key; chat key and opening
time); times are drawn distinct so that no tie falls back on an id.
"""

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatcrm import listing, render, service, times
from chatcrm.store import open_store
from tests.helpers import events
from chatcrm.store import queries

CHATS = {"tg:1": None, "wa:2": None, "web:3": "D-9", "tg:4": "D-9"}
NOW = "2026-11-25T00:00:00Z"
AGENTS = ("Luis", "Elena")


@st.composite
def histories(draw):
    count = draw(st.integers(min_value=1, max_value=14))
    minutes = draw(st.lists(st.integers(0, 600), min_size=count, max_size=count, unique=True))
    records = []
    for number, minute in enumerate(sorted(minutes)):
        chat = draw(st.sampled_from(sorted(CHATS)))
        kind = draw(st.sampled_from(["client", "client", "agent", "close", "complete", "assign", "remind"]))
        at = f"2026-11-24T{minute // 60:02d}:{minute % 60:02d}:00Z"
        record = {"chat": chat, "at": at}
        if CHATS[chat]:
            record["deal"] = CHATS[chat]
        if kind in ("client", "agent"):
            record.update(type="message", id=f"m{number}", **{"from": kind}, text=f"text {number}")
            if kind == "agent":
                record["author"] = draw(st.sampled_from(AGENTS))
        elif kind == "assign":
            record.update(type="assign", agent=draw(st.sampled_from(AGENTS)))
        elif kind == "remind":  # a follow-up due before NOW or after it, or a clear
            later = draw(st.one_of(st.none(), st.integers(1, 1800)))
            record["type"] = "remind"
            if later is None:
                record["clear"] = True
            else:
                record["due"] = times.from_epoch(times.epoch(at) + later * 60)
        else:
            record["type"] = kind
        records.append(record)
    return records


def snapshot(records_in_batches) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(Path(folder) / "db.sqlite")
        try:
            for number, batch in enumerate(records_in_batches):
                service.ingest(store, [(f"part{number}", "jsonl", events(batch, f"part{number}"))])
            queue = listing.queue(store, now=NOW)
            rows = [{k: v for k, v in row.items() if k != "deal_id"} for row in queue.rows]
            timelines = {}
            for row in queue.rows:
                card, entries = service.timeline(store, str(row["deal_id"]), NOW)
                chats = {c["chat_id"]: (c["chat_key"], c["opened_at"]) for c in queries.deal_chats(store, card["deal_id"])}
                activities = {c["activity_id"]: (c["chat_key"], c["opened_at"]) for c in queries.deal_chats(store, card["deal_id"])}
                normalised = []
                for entry in entries:
                    entry = dict(entry, chat_id=chats.get(entry["chat_id"]), activity_id=activities.get(entry["activity_id"]))
                    entry.pop("deal_id", None)
                    normalised.append(entry)
                timelines[row["deal_key"]] = normalised
            return {"list": rows, "counts": queue.counts, "timelines": timelines,
                    "list_json": render.records(rows, render.LIST_FIELDS, "json")}
        finally:
            store.close()


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories(), data=st.data())
def test_shuffled_split_and_repeated_imports_give_the_same_state(history, data):
    expected = snapshot([history])
    shuffled = data.draw(st.permutations(history))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(shuffled)), max_size=3)))
    pieces = [shuffled[a:b] for a, b in zip([0, *cuts], [*cuts, len(shuffled)])]
    pieces = [p for p in pieces if p]
    repeated = data.draw(st.lists(st.sampled_from(pieces), max_size=2)) if pieces else []
    order = data.draw(st.permutations(pieces + repeated))
    assert snapshot(order) == expected


def test_the_same_export_twice_adds_nothing(store):
    from tests.helpers import FIXTURES

    fixture = FIXTURES / "support-day.jsonl"
    from chatcrm import importers

    def read():
        return [importers.read_source(str(fixture), None, importers.ImportOptions())]

    first = service.ingest(store, read())
    state = listing.queue(store, now=NOW).rows
    second = service.ingest(store, read())
    assert first.messages_added == 23 and first.events_added == 5
    assert (second.messages_added, second.events_added, second.present) == (0, 0, 28)
    assert listing.queue(store, now=NOW).rows == state


@pytest.mark.parametrize("stored_before", [False, True], ids=["into an empty database", "beside stored chats"])
def test_the_same_file_twice_in_one_command_adds_nothing_the_second_time(store, stored_before):
    """Message identity (docs/rules.md): an id-less message's occurrence number counts within its file, so a file
    read twice in one import is the same file imported twice."""
    from chatcrm import importers
    from tests.helpers import FIXTURES

    fixture = str(FIXTURES / "support-day.jsonl")

    def read(times):
        return [importers.read_source(fixture, None, importers.ImportOptions()) for _ in range(times)]

    if stored_before:
        service.ingest(store, [("other.jsonl", "jsonl", events([{"chat": "tg:other", "from": "client",
                                                                   "text": "hola", "at": "2026-11-20T08:00:00Z"}]))])
    once = open_store(store.path.with_name("once.db"))
    try:
        service.ingest(once, read(1))
        expected = listing.queue(once, now=NOW).rows
    finally:
        once.close()
    report = service.ingest(store, read(2))
    assert (report.messages_added, report.events_added, report.present) == (23, 5, 28)
    rows = [row for row in listing.queue(store, now=NOW).rows if row["deal_key"] != "tg:other"]
    assert [{k: v for k, v in r.items() if k != "deal_id"} for r in rows] == [
        {k: v for k, v in r.items() if k != "deal_id"} for r in expected
    ]


def test_an_older_export_imported_after_newer_replies_gives_the_time_ordered_state():
    older = [
        {"type": "message", "id": "1", "chat": "tg:1", "from": "client", "text": "hola", "at": "2026-11-24T09:00:00Z"},
        {"type": "close", "chat": "tg:1", "at": "2026-11-24T09:30:00Z"},
    ]
    newer = [
        {"type": "message", "id": "2", "chat": "tg:1", "from": "agent", "text": "¿sí?", "at": "2026-11-24T09:10:00Z"},
        {"type": "message", "id": "3", "chat": "tg:1", "from": "client", "text": "otra", "at": "2026-11-24T10:00:00Z"},
    ]
    assert snapshot([newer, older]) == snapshot([older + newer])
    state = snapshot([newer, older])
    assert state["list"][0]["status"] == "unread"
    assert state["list"][0]["waiting_since"] == "2026-11-24T10:00:00Z"
