"""`list --sla --exit-status` for monitors, and `list --format ids` for pipes."""

import pytest

from tests.helpers import FIXTURES, run


@pytest.fixture
def day(monkeypatch):
    monkeypatch.setenv("CHATCRM_NOW", "2026-11-24T17:00:00Z")
    assert run("ingest", FIXTURES / "support-day.jsonl").code == 0


def test_exit_status_is_7_when_a_listed_client_waits_past_the_sla(day):
    result = run("list", "--sla", "2h", "--agent", "Elena", "--exit-status")
    assert result.code == 7 and "1 over the 2h 00m SLA" in result.out  # Carmen: 2h 50m


def test_exit_status_is_0_when_every_listed_client_is_within_the_sla(day):
    assert run("list", "--sla", "8h", "--exit-status").code == 0  # the longest wait is 6h 58m
    assert run("list", "--sla", "1h", "--status", "green", "--exit-status").code == 0  # none listed waits


def test_waiting_exactly_the_sla_is_within_it(day, monkeypatch):
    # Ana has waited since 16:05:20: at 17:00 that is 3280 s exactly (rules/sla.py: strictly longer).
    assert run("list", "--sla", "3280s", "--agent", "Luis", "--exit-status").code == 0
    assert run("list", "--sla", "3279s", "--agent", "Luis", "--exit-status").code == 7


def test_exit_status_counts_only_the_deals_listed(day):
    # Deal 3 (Marta) waits 6h 58m but is nobody's: Luis's own deals are within 1h.
    assert run("list", "--sla", "1h", "--agent", "Luis", "--exit-status").code == 0
    assert run("list", "--sla", "1h", "--exit-status").code == 7


def test_exit_status_takes_the_sla_from_the_environment(day, monkeypatch):
    monkeypatch.setenv("CHATCRM_SLA", "15m")
    assert run("list", "--exit-status").code == 7


def test_exit_status_without_an_sla_or_with_watch_is_a_usage_error(day):
    for args in (["list", "--exit-status"], ["list", "--exit-status", "--sla", "15m", "--watch"]):
        result = run(*args)
        assert result.code == 2 and result.err.startswith("Error: ") and result.err.count("\n") == 1
        assert result.out == ""


def test_list_format_ids_prints_deal_ids_one_per_line_in_queue_order(day):
    assert run("list", "--format", "ids").out == "3\n6\n8\n2\n4\n5\n7\n1\n"
    assert run("list", "--status", "grey", "--format", "ids").out == "1\n"
    assert run("list", "--status", "green", "--format", "ids", "--limit", "1").out == "4\n"
