"""Responsible employees (`assign`, `list --agent`) and the SLA mark (`list --sla`)."""

import pytest

from chatcrm import actions, times
from chatcrm.errors import NotFound, Refused, UsageError
from tests.helpers import chats, close_, deal, ingest, msg, run, write_jsonl
from tests.helpers import said


def t(minute: int, hour: int = 9) -> str:
    return f"2026-11-24T{hour:02d}:{minute:02d}:00Z"


NOW = "2026-11-24T12:00:00Z"


def responsible(store, ref):
    return deal(store, ref)["responsible"]


# ------------------------------------------------------------- responsible


def test_the_first_reply_makes_its_author_responsible(store):
    ingest(store, [msg("tg:1", t(0)), msg("tg:1", t(5), "agent", author="Elena"), msg("tg:1", t(9), "agent", author="Luis")])
    assert [c["responsible"] for c in chats(store, "tg:1")] == ["Elena"]
    assert responsible(store, "tg:1") == "Elena"


def test_nobody_is_responsible_before_anyone_replies_or_is_assigned(store):
    ingest(store, [msg("tg:1", t(0))])
    assert responsible(store, "tg:1") is None


def test_an_assignment_wins_over_the_first_reply_whenever_it_was_imported(store):
    records = [
        msg("tg:1", t(0)),
        msg("tg:1", t(5), "agent", author="Elena"),
        {"type": "assign", "chat": "tg:1", "at": t(7), "agent": "Marta"},
        msg("tg:1", t(9), "agent", author="Luis"),
    ]
    ingest(store, records[2:])
    ingest(store, records[:2])
    assert responsible(store, "tg:1") == "Marta"


def test_the_latest_assignment_wins(store):
    ingest(store, [msg("tg:1", t(0))])
    actions.assign(store, "tg:1", "Marta", now=t(10))
    actions.assign(store, "tg:1", "Elena", now=t(20))
    assert responsible(store, "tg:1") == "Elena"
    outcome = actions.assign(store, "tg:1", "Elena", now=t(30))
    assert not outcome.changed and "already Elena's" in said(outcome)


def test_a_client_writing_again_goes_back_to_the_same_employee(store):
    ingest(store, [msg("tg:1", t(0)), msg("tg:1", t(5), "agent", author="Elena"), close_("tg:1", t(6)), msg("tg:1", t(0, 11))])
    first, second = chats(store, "tg:1")
    assert second["responsible"] == "Elena" and deal(store, "tg:1")["status"] == "unread"


def test_a_reply_in_a_new_session_makes_its_author_responsible_for_it(store):
    ingest(store, [msg("tg:1", t(0)), msg("tg:1", t(5), "agent", author="Elena"), close_("tg:1", t(6)),
                   msg("tg:1", t(0, 11)), msg("tg:1", t(1, 11), "agent", author="Luis")])
    assert [c["responsible"] for c in chats(store, "tg:1")] == ["Elena", "Luis"]
    assert responsible(store, "tg:1") == "Luis"


def test_assign_targets_the_open_chat_and_refuses_when_ambiguous(store):
    ingest(store, [msg("tg:1", t(0), deal="D"), msg("wa:2", t(1), deal="D")])
    with pytest.raises(Refused, match="2 open chats"):
        actions.assign(store, "D", "Marta", now=t(5))
    actions.assign(store, "D", "Marta", now=t(5), chat="wa:2")
    assert [c["responsible"] for c in chats(store, "D")] == [None, "Marta"]
    assert responsible(store, "D") == "Marta"


def test_assign_refuses_a_time_before_the_chat_opened_and_an_empty_name(store):
    ingest(store, [msg("tg:1", t(30))])
    with pytest.raises(Refused, match="opened later"):
        actions.assign(store, "tg:1", "Marta", now=t(0))
    with pytest.raises(UsageError):
        actions.assign(store, "tg:1", "  ", now=t(40))
    with pytest.raises(NotFound):
        actions.assign(store, "nope", "Marta", now=t(40))


def test_assign_on_a_closed_deal_sets_its_latest_chat(store):
    ingest(store, [msg("tg:1", t(0)), close_("tg:1", t(1))])
    actions.assign(store, "tg:1", "Marta", now=t(30))
    assert responsible(store, "tg:1") == "Marta"


def test_an_assign_event_without_an_agent_is_invalid_input(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [msg("tg:1", t(0)), {"type": "assign", "chat": "tg:1", "at": t(1)}])
    result = run("ingest", path)
    assert result.code == 5
    assert f"{path}:2: missing 'agent'" in result.err


# ------------------------------------------------------------- list --agent


@pytest.fixture
def team(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATCRM_NOW", "2026-11-24T12:00:00Z")
    records = [
        msg("tg:1", t(0), author="Ana", contact="Ana"),  # Elena answered, Ana wrote again: unread
        msg("tg:1", t(5), "agent", author="Elena"),
        msg("tg:1", t(0, 10), author="Ana"),
        msg("wa:2", t(0, 11), author="Marta", contact="Marta"),  # nobody answered: unread, no one's
        msg("web:3", t(0), author="Jorge", contact="Jorge"),  # Luis answered: green
        msg("web:3", t(1), "agent", author="Luis"),
        msg("fb:4", t(0, 8), author="Raúl", contact="Raúl"),  # Elena answered long ago: green
        msg("fb:4", t(1, 8), "agent", author="Elena"),
    ]
    assert run("ingest", write_jsonl(tmp_path / "team.jsonl", records)).code == 0


def test_list_agent_shows_only_that_employees_deals_and_counts_theirs(team):
    result = run("list", "--agent", "Elena", "--format", "json")
    assert [(r["deal_key"], r["responsible"]) for r in result.json()] == [("tg:1", "Elena"), ("fb:4", "Elena")]
    table = run("list", "--agent", "Elena").out
    assert table.splitlines()[-1] == "Elena: 1 unread · 0 due · 1 green · 0 pending · 0 grey"


def test_list_agent_follows_an_assignment(team):
    assert run("assign", "wa:2", "Luis").code == 0
    keys = [r["deal_key"] for r in run("list", "--agent", "Luis", "--format", "json").json()]
    assert keys == ["wa:2", "web:3"]


def test_list_agent_with_an_unknown_name_is_exit_3_with_a_suggestion(team):
    result = run("list", "--agent", "elena")
    assert result.code == 3
    assert result.err == "Error: no employee 'elena' (did you mean 'Elena'?)\n"
    assert result.out == ""


def test_an_employee_with_no_deals_now_gets_an_empty_list(team, tmp_path):
    # Pilar replied on tg:1 after Elena: she is known, but responsible for nothing.
    run("ingest", write_jsonl(tmp_path / "b.jsonl", [msg("tg:1", t(6), "agent", author="Pilar")]))
    result = run("list", "--agent", "Pilar", "--format", "json")
    assert result.code == 0 and result.json() == []


# ------------------------------------------------------------- list --sla


def test_list_sla_marks_only_deals_waiting_longer_than_the_target(team):
    rows = run("list", "--sla", "90m", "--format", "json").json()
    overdue = {r["deal_key"]: r["overdue"] for r in rows}
    # tg:1 waits since 10:00 (2 h), wa:2 since 11:00 (1 h); the green deals wait for nobody.
    assert overdue == {"tg:1": True, "wa:2": False, "web:3": False, "fb:4": False}


def test_list_sla_is_strictly_longer_than(team):
    rows = run("list", "--sla", "2h", "--format", "json").json()
    assert not any(r["overdue"] for r in rows)


def test_without_sla_overdue_is_null(team):
    assert {r["overdue"] for r in run("list", "--format", "json").json()} == {None}


def test_the_sla_summary_counts_every_overdue_deal_even_beyond_the_limit(team):
    out = run("list", "--sla", "30m", "--limit", "1").out
    assert "2 unread · 0 due · 2 green · 0 pending · 0 grey · 2 over the 30m SLA (showing 1 of 4 deals)" in out
    assert "2h 00m !" in out


def test_the_sla_can_come_from_the_environment(team, monkeypatch):
    monkeypatch.setenv("CHATCRM_SLA", "90m")
    assert run("list", "--format", "json").json()[0]["overdue"] is True


@pytest.mark.parametrize("value", ["15", "abc", "0m", "-5m", "15 minutes", "1h-3m", ""])
def test_bad_sla_durations_are_usage_errors(team, value):
    result = run("list", "--sla", value)
    assert result.code == 2
    assert result.err.startswith("Error: --sla:") and result.err.count("\n") == 1


@pytest.mark.parametrize(
    "text,seconds",
    [("90s", 90), ("15m", 900), ("1h30m", 5400), ("1h 30m", 5400), ("2d", 172800), ("1w", 604800), ("PT15M", 900),
     ("P1DT2H", 93600), ("2H", 7200)],
)
def test_durations(text, seconds):
    assert times.parse_duration(text) == seconds


def test_the_overdue_count_uses_the_queue_index(store):
    plan = " ".join(
        row[3] for row in store.conn.execute(
            "EXPLAIN QUERY PLAN SELECT count(*) FROM deals WHERE status_rank = 0 AND queue_key < ? AND responsible = ?",
            [0, "x"],
        )
    )
    assert "USING COVERING INDEX deals_responsible_queue" in plan


# ------------------------------------------------------------- --watch


def test_list_watch_refuses_without_a_terminal(team):
    result = run("list", "--watch")
    assert result.code == 2 and "terminal" in result.err


@pytest.mark.slow
def test_list_watch_redraws_on_a_terminal_until_interrupted(team, tmp_path):
    import os
    import pty
    import signal
    import subprocess
    import sys
    import time

    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "chatcrm", "list", "--watch", "--interval", "1s"],
        stdin=follower, stdout=follower, stderr=subprocess.PIPE, env={**os.environ, "NO_COLOR": "1"},
    )
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 20
    while seen.count(b"\x1b[2J") < 2 and time.monotonic() < deadline:
        try:
            seen += os.read(leader, 65536)
        except OSError:
            break
    process.send_signal(signal.SIGINT)
    code = process.wait(timeout=20)
    os.close(leader)
    assert seen.count(b"\x1b[2J") >= 2, seen
    assert b"2 unread" in seen and b"Ctrl-C to stop" in seen
    assert code == 0 and process.stderr.read() == b""
