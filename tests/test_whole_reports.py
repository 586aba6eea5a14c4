"""The whole export and the whole stats near their floors (issue 18, point 3), with the
same bytes as before: JSON lines encoded by json's own C encoder made once, made safe and
written a block at a time; the facts' chat key profiles looked up a block at a time."""

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatcrm import bench, render, service
from chatcrm.store import facts, open_store
from tests.helpers import checked_after, run
from tests.test_query_plans import statements_of

values = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text())
records = st.dictionaries(st.text(), st.one_of(values, st.lists(values, max_size=3), st.dictionaries(st.text(), values, max_size=3)))


@settings(max_examples=300, deadline=None)
@given(records)
def test_the_line_encoder_writes_exactly_what_json_dumps_writes(record):
    assert render.line_encoder()(record) == json.dumps(record, ensure_ascii=False)


def test_without_a_c_encoder_the_line_encoder_is_jsons_own_encode(monkeypatch):
    import json.encoder

    monkeypatch.setattr(json.encoder, "c_make_encoder", None)
    encode = render.line_encoder()
    record = {"type": "message", "text": "café \x7f", "deal_id": 3, "clear": True}
    assert encode(record) == json.dumps(record, ensure_ascii=False)
    assert getattr(encode, "__self__", None).__class__ is json.JSONEncoder


def test_json_safe_escapes_del_in_text_that_is_otherwise_ascii():
    assert render.json_safe('{"text": "a\x7fb"}') == '{"text": "a\\u007fb"}'
    assert render.json_safe('{"text": "ab"}') == '{"text": "ab"}'
    assert render.json_safe('{"text": "é\x85\u202e"}') == '{"text": "é\\u0085\\u202e"}'


def test_lines_written_a_block_at_a_time_are_the_lines_one_at_a_time(monkeypatch):
    """Blocks that end mid-way, a block of plain ASCII next to blocks with marks a
    terminal acts on: the same lines, the same count."""
    monkeypatch.setattr(render, "EVENTS_PER_WRITE", 3)
    texts = ["hola", "a\x7fb", "plain", "ok", "\u202eevil", "café", "x"]
    events = [{"type": "message", "text": t, "n": i} for i, t in enumerate(texts)]
    stream = io.StringIO()
    assert render.write_events(iter(events), "jsonl", stream) == len(events)
    assert stream.getvalue() == "".join(render.json_safe(json.dumps(e, ensure_ascii=False)) + "\n" for e in events)
    assert "\x7f" not in stream.getvalue() and "\u202e" not in stream.getvalue()
    empty = io.StringIO()
    assert render.write_events(iter([]), "jsonl", empty) == 0 and empty.getvalue() == ""


@pytest.fixture(scope="module")
def year(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("year")
    path = tmp_path / "year.jsonl"
    bench.generate(path, 3000, 150)
    store = open_store(tmp_path / "year.db")
    assert run("ingest", "--db", store.path, path).code == 0
    yield store
    store.close()


def test_chat_key_profiles_looked_up_in_small_blocks_give_the_same_export(year, monkeypatch):
    """Blocks of a few facts, lookups of a few keys, and a cache that must forget: every
    fact still carries its own chat key's channel, naming and deal."""
    whole = list(service.export(year))
    monkeypatch.setattr(facts, "FACTS_PER_READ", 200)
    monkeypatch.setattr(facts, "KEYS_PER_LOOKUP", 2)
    monkeypatch.setattr(facts, "PROFILES_KEPT", 1)
    assert list(service.export(year)) == whole
    for record in whole[:200]:
        key = record["chat"]
        channel, contact = year.conn.execute("SELECT channel, contact FROM chat_keys WHERE key = ?", [key]).fetchone()
        assert record["channel"] == channel and record.get("contact") in (None, contact)


def test_a_whole_export_looks_up_chat_keys_a_block_at_a_time_not_a_fact_at_a_time(year):
    count = year.conn.execute("SELECT (SELECT count(*) FROM messages) + (SELECT count(*) FROM chat_events)").fetchone()[0]
    statements = statements_of(year, lambda: sum(1 for _ in service.export(year)))
    lookups = [s for s in statements if "FROM chat_keys k JOIN deals d" in s]
    assert count == 3000 and 0 < len(lookups) <= count // facts.FACTS_PER_READ + 1


# ------------------------------------------------------------------ stats, grouped in SQL

from chatcrm import stats  # noqa: E402
from chatcrm.store import queries  # noqa: E402
from tests.helpers import close_, ingest, msg  # noqa: E402


def test_a_session_closed_unanswered_gives_no_first_response_to_anybody(store):
    """One group of sessions carries both figures: a close of a session nobody answered
    counts for its responsible only, never as a first response of "(nobody)"."""
    ingest(store, [msg("wa:1", "2026-11-24T09:00:00Z"), {"type": "assign", "chat": "wa:1", "agent": "Marta",
                                                          "at": "2026-11-24T09:01:00Z"},
                   close_("wa:1", "2026-11-24T09:30:00Z")])
    report = stats.compute(store, now="2026-11-24T12:00:00Z").as_dict()
    assert set(report["by_employee"]) == {"Marta"}
    marta = report["by_employee"]["Marta"]
    assert marta["first_response"]["count"] == 0
    assert marta["time_to_close"]["count"] == 1 and marta["time_to_close"]["worst_seconds"] == 1800
    assert marta["wait"] == {"count": 1, "median_seconds": 1800, "p90_seconds": 1800, "worst_seconds": 1800,
                             "unanswered": 1}


def test_a_wait_that_starts_after_now_counts_zero_seconds(store):
    ingest(store, [msg("wa:1", "2026-11-24T09:00:00Z"), msg("wa:2", "2026-11-24T09:00:00Z"),
                   msg("wa:2", "2026-11-24T09:05:00Z", "agent", author="Luis")])
    wait = stats.compute(store, now="2026-11-24T08:00:00Z").as_dict()["overall"]["wait"]
    assert wait == {"count": 2, "median_seconds": 150, "p90_seconds": 300, "worst_seconds": 300, "unanswered": 1}


def test_stats_without_unixepoch_are_the_same(year, monkeypatch):
    """SQLite before 3.38 has no `unixepoch`: strftime('%s') and a cast give the same figures."""
    import sqlite3

    with_it = stats.compute(year, now=NOW).as_dict()
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 37, 2))
    older = queries._seconds_sql()
    assert "strftime" in older
    monkeypatch.setattr(queries, "_SECONDS", older)
    assert stats.compute(year, now=NOW).as_dict() == with_it
    assert with_it["overall"]["wait"]["count"] > 500


NOW = "2025-11-30T00:00:00Z"


def test_sessions_opening_at_one_instant_across_blocks_each_get_their_chat_and_activity(store, monkeypatch):
    """The openings are merged beside the facts a block at a time: a block that ends
    inside an instant leaves that instant's openings to the next block."""
    at = "2026-11-24T09:00:00Z"
    ingest(store, [msg("wa:1", at, text="a"), msg("wa:2", at, text="b"), msg("wa:3", at, text="c"),
                   msg("wa:1", "2026-11-24T09:05:00Z", "agent", author="Luis")])
    whole = list(service.export(store))
    monkeypatch.setattr(facts, "FACTS_PER_READ", 1)
    assert list(service.export(store)) == whole
    opened = {r["chat"]: (r["chat_id"], r["activity_id"]) for r in whole if "chat_id" in r}
    stored = dict(store.conn.execute(
        "SELECT c.chat_key, c.id FROM chats c").fetchall())
    assert {key: ids[0] for key, ids in opened.items()} == stored and len(stored) == 3
    assert all(ids[1] is not None for ids in opened.values())


# ------------------------------------------------------------------ chats.channel (m010)

import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

from chatcrm.store import verify  # noqa: E402

OLD_M002 = Path(__file__).parent / "fixtures" / "schema-m002.db"


def stored_channels(store) -> list[tuple]:
    return store.conn.execute(
        "SELECT c.chat_key, c.channel, k.channel FROM chats c JOIN chat_keys k ON k.key = c.chat_key ORDER BY c.id"
    ).fetchall()


def test_an_upgrade_gives_every_session_its_chat_keys_channel(tmp_path):
    path = tmp_path / "m002.db"
    shutil.copyfile(OLD_M002, path)
    store = open_store(path)
    try:
        rows = stored_channels(store)
        assert rows and all(channel == key_channel != "" for _, channel, key_channel in rows)
        assert verify.check(store) == []
    finally:
        store.close()


def test_a_session_follows_its_chat_keys_channel_when_an_earlier_event_names_another(store):
    """The earliest naming of a chat key wins (rules/naming.py); its sessions' stored
    channel, and the stats per channel, follow it."""
    ingest(store, [msg("x:1", "2026-11-24T10:00:00Z", channel="telegram")])
    assert [row[1:] for row in stored_channels(store)] == [("telegram", "telegram")]
    ingest(store, [msg("x:1", "2026-11-24T09:00:00Z", channel="whatsapp")])
    assert [row[1:] for row in stored_channels(store)] == [("whatsapp", "whatsapp")]
    # an earlier close names the chat key too, and changes nothing else of the session
    ingest(store, [close_("x:1", "2026-11-24T08:00:00Z", channel="web")])
    assert [row[1:] for row in stored_channels(store)] == [("web", "web")]
    assert set(stats.compute(store, now="2026-11-24T12:00:00Z").as_dict()["by_channel"]) == {"web"}
    assert verify.check(store) == []


def test_check_names_a_session_whose_stored_channel_is_not_its_chat_keys(tmp_path):
    db = tmp_path / "c.db"
    store = open_store(db)
    ingest(store, [msg("wa:1", "2026-11-24T09:00:00Z", channel="whatsapp")])
    store.close()
    bad = checked_after(db, "UPDATE chats SET channel = 'telegram'")
    assert bad.code == 6
    assert "channel is 'telegram', the facts give 'whatsapp'" in bad.out


def test_undoing_the_import_that_named_a_chat_key_gives_its_sessions_the_channel_named_before(tmp_path):
    db = tmp_path / "u.db"
    first = tmp_path / "a.jsonl"
    first.write_text(json.dumps(msg("x:1", "2026-11-24T10:00:00Z", channel="telegram")) + "\n", encoding="utf-8")
    earlier = tmp_path / "b.jsonl"
    earlier.write_text(json.dumps(close_("x:1", "2026-11-24T08:00:00Z", channel="web")) + "\n", encoding="utf-8")
    assert run("ingest", "--db", db, first).code == 0 and run("ingest", "--db", db, earlier).code == 0
    store = open_store(db)
    try:
        assert [row[1:] for row in stored_channels(store)] == [("web", "web")]
    finally:
        store.close()
    assert run("undo", "--db", db, "2").code == 0
    store = open_store(db)
    try:
        assert [row[1:] for row in stored_channels(store)] == [("telegram", "telegram")]
        assert verify.check(store) == []
    finally:
        store.close()


def test_a_fact_before_any_session_of_its_chat_key_still_carries_its_channel_and_deal(store):
    """Openings bring their chat key's profile; a fact that comes before its key's first
    opening (a close of nothing yet) has it looked up."""
    ingest(store, [close_("wa:9", "2026-11-24T08:00:00Z", channel="whatsapp", contact="Ana"),
                   msg("wa:9", "2026-11-24T09:00:00Z", channel="whatsapp")])
    records = list(service.export(store))
    assert [r["type"] for r in records] == ["close", "message"]
    assert all(r["channel"] == "whatsapp" for r in records) and records[0]["contact"] == "Ana"
    assert "deal_id" in records[0] and "chat_id" in records[1]
