"""Commands on many deals at once (`reply`, `close`, `complete`, `assign` with several
deals or `-`), and idle chats closed on a schedule (`close --idle`)."""

import sqlite3
import threading

import pytest

from chatcrm import actions, service
from chatcrm.errors import NotFound, UsageError
from chatcrm.rules import idle as idle_rule
from chatcrm.store import open_store, verify
from tests.helpers import FIXTURES, chats, deal, ingest, msg, run, write_jsonl

NOW = "2026-11-24T17:00:00Z"


@pytest.fixture
def day(monkeypatch):
    monkeypatch.setenv("CHATCRM_NOW", NOW)
    assert run("ingest", FIXTURES / "support-day.jsonl").code == 0


def statuses(*ids):
    out = run("list", "-f", "json").json()
    return {row["deal_id"]: row["status"] for row in out if row["deal_id"] in ids}


def dump(db=None):
    args = ["export"] + (["--db", db] if db else [])
    return run(*args).out


# ------------------------------------------------------------- many deals


def test_the_readme_pipe_completes_every_grey_listed_deal(day):
    run("close", "4", "7")  # quiet chats, no waiting client
    run("complete", "4")
    piped = run("list", "--status", "green", "--format", "ids").out
    assert piped == "5\n7\n"
    result = run("complete", "-", input=piped)
    assert result.code == 0
    assert result.out.splitlines() == ["deal 5: completed activity 5 at 2026-11-24T17:00:00Z",
                                       "deal 7: completed activity 8 at 2026-11-24T17:00:00Z"]
    assert statuses(5, 7) == {5: "grey", 7: "grey"}


def test_one_refused_deal_changes_nothing_and_every_refusal_is_listed(day):
    before = dump()
    result = run("complete", "4", "3", "7", "8")  # 3 and 8: a client waits
    assert result.code == 4 and result.out == ""
    lines = result.err.splitlines()
    assert lines[0].startswith("refused deal 3: the client of chat 3 (wa:34600111222) has been waiting since")
    assert lines[1].startswith("refused deal 8: the client of chat 9 (web:77aa) has been waiting since")
    assert lines[2] == "Error: 2 of 4 deals refused by a rule; nothing changed (--skip-refused applies the rest)"
    assert dump() == before


def test_skip_refused_applies_the_rest_and_lists_what_it_skipped(day):
    result = run("complete", "4", "3", "7", "--skip-refused")
    assert result.code == 0
    assert result.out.splitlines() == ["deal 4: completed activity 4 and closed its chat at 2026-11-24T17:00:00Z",
                                       "deal 7: completed activity 8 and closed its chat at 2026-11-24T17:00:00Z"]
    assert result.err.startswith("skipped deal 3: the client of chat 3")
    assert statuses(3, 4, 7) == {3: "unread", 4: "grey", 7: "grey"}


def test_an_unknown_deal_among_many_is_named_and_nothing_changes(day):
    before = dump()
    result = run("close", "4", "99", "7", "nope", "--force")
    assert result.code == 3 and result.out == ""
    assert result.err.startswith("Error: no deal '99', 'nope' (") and result.err.count("\n") == 1
    assert dump() == before


def test_an_empty_list_on_stdin_does_nothing_and_says_so(day):
    before = dump()
    for command in (["complete", "-"], ["close", "-"], ["reply", "-", "hola"], ["assign", "-", "Elena"]):
        result = run(*command, input="\n\n")
        assert result.code == 0 and result.out == "" and result.err == "no deals given on stdin; nothing to do\n"
    assert dump() == before


def test_reply_sends_the_same_text_to_each_deal_and_reads_it_from_stdin(day):
    result = run("reply", "3", "8", "-", input="Hoy cerramos a las 18:00.\n")
    assert result.code == 0 and len(result.out.splitlines()) == 2
    assert statuses(3, 8) == {3: "green", 8: "green"}
    texts = [e["text"] for ref in ("3", "8") for e in run("timeline", ref, "-f", "json").json() if e["kind"] == "message"]
    assert texts.count("Hoy cerramos a las 18:00.") == 2


def test_reply_reads_the_deals_from_stdin_when_the_text_is_an_argument(day):
    result = run("reply", "-", "Enseguida te atendemos.", input="3\n\n web:77aa \n")
    assert result.code == 0 and len(result.out.splitlines()) == 2
    assert statuses(3, 8) == {3: "green", 8: "green"}


def test_reply_refuses_both_from_stdin_and_dash_among_deals(day):
    for args in (["reply", "-", "-"], ["complete", "3", "-"], ["reply", "3"], ["assign", "3"],
                 ["close", "3", "4", "--chat", "11"], ["complete", "3", "4", "--activity", "3"]):
        result = run(*args, input="4\n")
        assert result.code == 2 and result.err.startswith("Error: ") and result.err.count("\n") == 1, args


def test_assign_many_and_a_deal_named_twice_is_acted_on_once(day):
    result = run("assign", "3", "web:77aa", "8", "Marta")
    assert result.code == 0
    assert result.out.splitlines() == ["deal 3: chat 3 (wa:34600111222) assigned to Marta at 2026-11-24T17:00:00Z",
                                       "deal 8: chat 9 (web:77aa) assigned to Marta at 2026-11-24T17:00:00Z"]
    assert {row["deal_id"] for row in run("list", "--agent", "Marta", "-f", "json").json()} == {3, 8}


def test_on_many_runs_in_one_transaction(store):
    ingest(store, [msg("tg:1", "2026-11-24T09:00:00Z", id="1"), msg("tg:2", "2026-11-24T09:00:00Z", id="2")])
    seen = []
    store.conn.set_trace_callback(seen.append)
    actions.on_many(store, ["tg:1", "tg:2"], lambda ref: actions.reply(store, ref, "hola", now=NOW, author="Luis"))
    store.conn.set_trace_callback(None)
    assert sum(1 for s in seen if s.startswith("BEGIN")) == 1 and sum(1 for s in seen if s == "COMMIT") == 1


# ------------------------------------------------------------- close --idle


def t(minute: int, hour: int = 9) -> str:
    return f"2026-11-24T{hour:02d}:{minute:02d}:00Z"


def test_idle_is_quiet_after_an_answer_for_at_least_the_duration():
    now = 10_000
    assert idle_rule.is_idle(None, None, "agent", now - 3600, now, 3600)
    assert not idle_rule.is_idle(None, None, "agent", now - 3599, now, 3600)  # not yet that long
    assert not idle_rule.is_idle(None, "2026-11-24T09:00:00Z", "client", now - 99999, now, 3600)  # a client waits
    assert not idle_rule.is_idle(None, None, "client", now - 99999, now, 3600)  # the client's is the last word
    assert not idle_rule.is_idle("2026-11-24T09:00:00Z", None, "agent", now - 99999, now, 3600)  # closed


def test_close_idle_closes_only_chats_quiet_after_an_employee_for_that_long(store):
    ingest(store, [
        msg("tg:1", t(0), id="a"), msg("tg:1", t(5), "agent", author="Luis", id="b"),       # quiet since 9:05
        msg("tg:2", t(0), id="c"), msg("tg:2", t(5), "agent", author="Luis", id="d"), msg("tg:2", t(6), id="e"),  # waits
        msg("tg:3", t(0), id="f"), msg("tg:3", t(30), "agent", author="Luis", id="g"),      # quiet since 9:30
        msg("tg:4", t(0), "agent", author="Elena", id="h"),                                   # employee wrote first
        # the client wrote at the instant of the answer, after it: answered (R2), but theirs is the last word
        msg("tg:5", t(0), id="i"), msg("tg:5", t(5), "agent", author="Luis", id="j"), msg("tg:5", t(5), id="k"),
    ])
    assert deal(store, "tg:5")["status"] == "green"
    report = service.close_idle(store, idle_seconds=3600, now=t(5, 10))  # 10:05: 1h after 9:05
    assert [(c.chat_key, c.author, c.quiet_seconds) for c in report.closed] == [
        ("tg:4", "Elena", 3900), ("tg:1", "Luis", 3600)]
    assert chats(store, "tg:1")[0]["closed_at"] == t(5, 10) and chats(store, "tg:1")[0]["completed_at"] is None
    assert chats(store, "tg:2")[0]["closed_at"] is None and deal(store, "tg:2")["status"] == "unread"
    assert chats(store, "tg:3")[0]["closed_at"] is None
    assert chats(store, "tg:5")[0]["closed_at"] is None
    assert verify.check(store) == []
    again = service.close_idle(store, idle_seconds=3600, now=t(5, 10))
    assert again.closed == []


def test_close_idle_complete_and_dry_run(store):
    ingest(store, [msg("tg:1", t(0), id="a"), msg("tg:1", t(5), "agent", author="Luis", id="b")])
    dry = service.close_idle(store, idle_seconds=60, now=t(0, 12), dry_run=True)
    assert len(dry.closed) == 1 and chats(store, "tg:1")[0]["closed_at"] is None
    service.close_idle(store, idle_seconds=60, now=t(0, 12), complete=True)
    chat, = chats(store, "tg:1")
    assert chat["closed_at"] == chat["completed_at"] == t(0, 12) and deal(store, "tg:1")["status"] == "grey"


def test_close_idle_on_the_command_line(day):
    dry = run("close", "--idle", "2h", "--dry-run")
    assert dry.code == 0 and len(dry.out.splitlines()) == 3
    assert dry.err == "would close 3 chat(s) quiet for 2h 00m or more after an employee's message\n"
    result = run("close", "--idle", "2h")
    assert result.out == dry.out.replace("would close", "closed")
    assert run("list", "-f", "json").json()[0]["status"] == "unread"  # the waiting clients stay
    again = run("close", "--idle", "2h")
    assert again.code == 0 and again.out == "" and "nothing to close" in again.err


def test_close_idle_bad_input_is_a_usage_error(day):
    for args in (["close", "--idle", "soon"], ["close", "--idle", "0m"], ["close", "3", "--idle", "1h"],
                 ["close", "--idle", "1h", "--force"], ["close"], ["close", "3", "--dry-run"]):
        result = run(*args)
        assert result.code == 2 and result.err.startswith("Error: ") and result.err.count("\n") == 1, args


def test_close_idle_runs_beside_concurrent_writers(tmp_path):
    """Every minute from cron while people reply: each run is one write transaction
    (BEGIN IMMEDIATE), so the runs and the replies queue and the database stays true."""
    db = tmp_path / "busy.db"
    records = []
    for c in range(30):
        records += [msg(f"wa:{c}", t(0), id=f"{c}a"), msg(f"wa:{c}", t(1), "agent", author="Luis", id=f"{c}b")]
    assert run("ingest", "--db", db, write_jsonl(tmp_path / "e.jsonl", records)).code == 0
    errors = []

    def closer():
        store = open_store(db)
        try:
            for minute in range(10):
                service.close_idle(store, idle_seconds=600, now=t(20 + minute, 10))
        except Exception as error:  # noqa: BLE001
            errors.append(error)
        finally:
            store.close()

    def replier():
        store = open_store(db)
        try:
            for c in range(30):
                try:
                    actions.reply(store, f"wa:{c}", "¿algo más?", now=t(10, 10), author="Elena")
                except service.Refused:
                    pass  # closed by the other run first
        except Exception as error:  # noqa: BLE001
            errors.append(error)
        finally:
            store.close()

    threads = [threading.Thread(target=closer), threading.Thread(target=replier), threading.Thread(target=closer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    store = open_store(db)
    try:
        assert verify.check(store) == []
        assert store.conn.execute("SELECT count(*) FROM chats WHERE closed_at IS NULL").fetchone()[0] == 0
    finally:
        store.close()


def test_a_deal_refused_half_way_leaves_nothing_of_its_own_behind(store):
    """Each deal runs in a savepoint: what a refused deal wrote before its refusal is
    undone, even when --skip-refused applies the others."""
    ingest(store, [msg("tg:1", "2026-11-24T09:00:00Z", id="1"), msg("tg:2", "2026-11-24T09:00:00Z", id="2")])

    def act(ref):
        outcome = actions.reply(store, ref, "hola", now=NOW, author="Luis")
        if deal(store, ref)["deal_key"] == "tg:2":
            raise service.Refused("refused after writing")
        return outcome

    many = actions.on_many(store, ["tg:1", "tg:2"], act, skip_refused=True)
    assert [o.deal_id for o in many.outcomes] == [deal(store, "tg:1")["deal_id"]]
    assert [r.deal_id for r in many.skipped] == [deal(store, "tg:2")["deal_id"]]
    assert deal(store, "tg:1")["status"] == "green" and deal(store, "tg:2")["status"] == "unread"
    assert verify.check(store) == []
