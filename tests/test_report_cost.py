"""The reports cost what they show: `stats` for a period reads the sessions opened and the
waits started in it, `export --deal` that deal's facts, both through indexes; and the
stored waits `stats` reads are exactly what the facts give (R-stats figures unchanged)."""

import re
import shutil
from pathlib import Path

import pytest

from chatcrm import actions, bench, service, stats, times
from chatcrm.store import open_store, verify
from chatcrm.store.facts import sessions_by_chat_key
from tests.helpers import checked_after, close_, ingest, msg, run
from tests.test_query_plans import full_scans, statements_of

OLD_M002 = Path(__file__).parent / "fixtures" / "schema-m002.db"
NOW = "2025-11-30T00:00:00Z"


def reference_stats(store, *, now, since=None, until=None) -> dict:
    """The figures as `stats` computed them before waits were stored: every chat key's
    sessions derived afresh from all its facts, filtered in Python."""
    result = stats.Stats(since, until, now)
    now_epoch = times.epoch(now)

    def within(at):
        return (since is None or at >= since) and (until is None or at < until)

    def record(metric, channel, employee, seconds, unanswered=False):
        for scope in (result.overall, result.by_channel.setdefault(channel, stats.Scope()),
                      result.by_employee.setdefault(employee or stats.NOBODY, stats.Scope())):
            if seconds is not None:
                scope.series[metric].add(seconds)
            if unanswered:
                scope.series[metric].unanswered += 1

    with store.read():
        for _, channel, sessions in sessions_by_chat_key(store, track_waits=True):
            for session in sessions:
                opened = times.epoch(session.opened_at)
                if within(session.opened_at):
                    result.sessions += 1
                    if session.opened_by == "client" and session.first_response_at is not None:
                        replier = next(w.by for w in session.waits if w.by)
                        record("first_response", channel, replier, times.epoch(session.first_response_at) - opened)
                    if session.closed_at is not None:
                        record("time_to_close", channel, session.responsible, times.epoch(session.closed_at) - opened)
                for wait in session.waits:
                    if within(wait.start):
                        end = times.epoch(wait.end) if wait.end is not None else now_epoch
                        record("wait", channel, wait.by or session.responsible, end - times.epoch(wait.start),
                               unanswered=wait.by is None)
    return result.as_dict()


PERIODS = [
    (None, None),
    ("2025-11-29T00:00:00Z", None),  # a day
    ("2025-11-23T00:00:00Z", None),  # a week
    ("2025-06-01T00:00:00Z", "2025-07-01T00:00:00Z"),  # a month in the middle
    (None, "2025-03-01T00:00:00Z"),
]


@pytest.fixture(scope="module")
def year(tmp_path_factory):
    """A year of sessions (the benchmark's data), then replies, closes and completions
    (read only by the tests that use it)."""
    tmp_path = tmp_path_factory.mktemp("year")
    path = tmp_path / "year.jsonl"
    bench.generate(path, 3000, 150)
    store = open_store(tmp_path / "year.db")
    assert run("ingest", "--db", store.path, path).code == 0
    deals = [row[0] for row in store.conn.execute("SELECT deal_id FROM queue WHERE status = 'unread' LIMIT 6")]
    actions.reply(store, str(deals[0]), "Lo miro", now=NOW, author="Marta")
    actions.close(store, str(deals[1]), now=NOW, force=True)
    actions.complete(store, str(deals[2]), now=NOW, force=True)
    actions.assign(store, str(deals[3]), "Marta", now=NOW)
    yield store
    store.close()


@pytest.mark.parametrize("since, until", PERIODS)
def test_stats_read_from_the_stored_waits_equal_stats_derived_afresh_from_the_facts(year, since, until):
    assert year.conn.execute("SELECT count(*) FROM waits").fetchone()[0] > 500
    assert stats.compute(year, now=NOW, since=since, until=until).as_dict() == reference_stats(
        year, now=NOW, since=since, until=until
    )


def test_stats_follow_a_late_import_that_reopens_and_answers_old_sessions(store):
    """Facts arriving later (older messages, a close) re-derive the stored waits."""
    ingest(store, [msg("wa:1", "2026-11-24T09:00:00Z"), msg("wa:1", "2026-11-24T09:10:00Z", "agent", author="Luis")])
    ingest(store, [msg("wa:1", "2026-11-24T09:20:00Z"), close_("wa:1", "2026-11-24T09:30:00Z"),
                   msg("wa:1", "2026-11-24T08:55:00Z"), msg("wa:1", "2026-11-24T10:00:00Z")])
    now = "2026-11-24T12:00:00Z"
    for since, until in ((None, None), ("2026-11-24T09:15:00Z", None), ("2026-11-24T09:00:00Z", "2026-11-24T09:01:00Z")):
        assert stats.compute(store, now=now, since=since, until=until).as_dict() == reference_stats(
            store, now=now, since=since, until=until
        )
    waits = store.conn.execute("SELECT started_at, ended_at, answered_by FROM waits ORDER BY started_at").fetchall()
    assert waits == [
        ("2026-11-24T08:55:00Z", "2026-11-24T09:10:00Z", "Luis"),  # the earlier message starts the wait
        ("2026-11-24T09:20:00Z", "2026-11-24T09:30:00Z", None),  # the close ends it unanswered
        ("2026-11-24T10:00:00Z", None, None),  # a new session: still waiting
    ]
    assert verify.check(store) == []


def plans(store, statements) -> list[str]:
    return [row[3] for sql in statements for row in store.conn.execute("EXPLAIN QUERY PLAN " + sql)]


def test_stats_for_a_period_read_through_indexes_only(year):
    """No whole table (nor whole index) of facts, sessions or waits: only searches."""
    for since, until in (("2025-11-29T00:00:00Z", None), ("2025-11-23T00:00:00Z", "2025-11-24T00:00:00Z")):
        statements = statements_of(year, lambda: stats.compute(year, now=NOW, since=since, until=until))
        assert any("FROM waits" in s for s in statements) and any("FROM chats" in s for s in statements)
        scans = [p for p in plans(year, statements) if p.startswith("SCAN")]
        assert scans == [], scans
        assert any("waits_started" in p for p in plans(year, statements))
        assert any("chats_opened" in p for p in plans(year, statements))


def test_export_of_one_deal_reads_its_facts_through_indexes_only(year):
    deal = year.conn.execute("SELECT deal_id FROM queue LIMIT 1").fetchone()[0]
    statements = statements_of(year, lambda: list(service.export(year, str(deal))))
    assert full_scans(year, statements) == []
    scans = [p for p in plans(year, statements) if re.match(r"SCAN (messages|chat_events|assignments|chat_keys|chats)\b", p)]
    assert scans == [], scans


def test_export_of_one_deal_gives_that_deals_facts_in_the_whole_exports_order(year):
    everything = list(service.export(year))
    for deal_id, deal_key in year.conn.execute("SELECT id, key FROM deals ORDER BY id LIMIT 20"):
        mine = [r for r in everything if r.get("deal", r["chat"]) == deal_key]
        one = list(service.export(year, str(deal_id)))
        assert one and [{k: v for k, v in r.items() if k not in ("deal_id", "chat_id", "activity_id")} for r in one] == [
            {k: v for k, v in r.items() if k not in ("deal_id", "chat_id", "activity_id")} for r in mine
        ]
        assert one[0]["deal_id"] == deal_id


def test_check_names_a_stored_wait_the_facts_do_not_give(tmp_path):
    db = tmp_path / "w.db"
    store = open_store(db)
    ingest(store, [msg("wa:1", "2026-11-24T09:00:00Z"), msg("wa:1", "2026-11-24T09:10:00Z", "agent", author="Luis")])
    store.close()
    bad = checked_after(db, "UPDATE waits SET ended_at = '2026-11-24T09:50:00Z'")
    assert bad.code == 6  # problems found
    assert ("wait ('wa:1', '2026-11-24T09:00:00Z', '2026-11-24T09:00:00Z'): ended_at is '2026-11-24T09:50:00Z', "
            "the facts give '2026-11-24T09:10:00Z'") in bad.out


def test_an_upgrade_derives_the_waits_of_an_older_database(tmp_path):
    path = tmp_path / "m002.db"
    shutil.copyfile(OLD_M002, path)
    store = open_store(path)
    try:
        assert store.conn.execute("SELECT count(*) FROM waits").fetchone()[0] > 0
        assert verify.check(store) == []
        now = "2026-11-24T18:30:00Z"
        assert stats.compute(store, now=now).as_dict() == reference_stats(store, now=now)
    finally:
        store.close()


def test_a_period_holds_what_started_at_its_start_and_not_what_started_at_its_end(store):
    """[since, until): a session opened at `since` and its wait count; those at `until` do not."""
    ingest(store, [
        msg("wa:1", "2026-11-24T09:00:00Z"), msg("wa:1", "2026-11-24T09:04:00Z", "agent", author="Luis"),
        close_("wa:1", "2026-11-24T09:10:00Z"),
        msg("wa:2", "2026-11-24T10:00:00Z"), msg("wa:2", "2026-11-24T10:09:00Z", "agent", author="Luis"),
    ])
    now = "2026-11-24T12:00:00Z"
    report = stats.compute(store, now=now, since="2026-11-24T09:00:00Z", until="2026-11-24T10:00:00Z").as_dict()
    assert report["sessions"] == 1
    assert report["overall"]["first_response"]["worst_seconds"] == 240
    assert report["overall"]["wait"]["count"] == 1 and report["overall"]["time_to_close"]["count"] == 1
    later = stats.compute(store, now=now, since="2026-11-24T10:00:00Z").as_dict()
    assert later["sessions"] == 1 and later["overall"]["wait"]["worst_seconds"] == 540


def test_a_sessions_first_replier_is_stored_derived_and_checked(tmp_path):
    """chats.first_reply_by: the author of the session's first reply (not a later
    replier, nor the responsible); `stats` counts a first response for that employee, and
    `check` names a stored one the facts do not give."""
    db = tmp_path / "f.db"
    store = open_store(db)
    ingest(store, [msg("wa:1", "2026-11-24T09:00:00Z"), msg("wa:1", "2026-11-24T09:05:00Z", "agent", author="Elena"),
                   msg("wa:1", "2026-11-24T09:10:00Z"), msg("wa:1", "2026-11-24T09:20:00Z", "agent", author="Marta"),
                   msg("wa:2", "2026-11-24T10:00:00Z", "agent", author="Luis"),  # opened by an employee
                   msg("wa:3", "2026-11-24T11:00:00Z"),  # nobody answered
                   {"type": "assign", "chat": "wa:1", "agent": "Marta", "at": "2026-11-24T09:30:00Z"}])
    assert dict(store.conn.execute("SELECT chat_key, first_reply_by FROM chats")) == {
        "wa:1": "Elena", "wa:2": "Luis", "wa:3": None}
    now = "2026-11-24T12:00:00Z"
    report = stats.compute(store, now=now).as_dict()
    assert report == reference_stats(store, now=now)
    assert report["by_employee"]["Elena"]["first_response"]["worst_seconds"] == 300  # 09:00 → 09:05
    assert report["by_employee"]["Marta"]["first_response"]["count"] == 0  # responsible, not the first to reply
    luis = report["by_employee"].get("Luis", {}).get("first_response", {"count": 0})
    assert luis["count"] == 0  # he opened wa:2 himself: no client waited for a first response
    store.close()
    bad = checked_after(db, "UPDATE chats SET first_reply_by = 'Luis' WHERE chat_key = 'wa:1'")
    assert bad.code == 6
    assert "chat ('wa:1', '2026-11-24T09:00:00Z'): first_reply_by is 'Luis', the facts give 'Elena'" in bad.out
