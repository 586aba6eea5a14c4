"""Each rule of docs/rules.md has one home (chatcrm/rules/), and every copy that must agree
with it — SQL built from it, another layer's constant — is checked here, at the cases where
a wrong copy would show: the exact instant, the tie, the reversed arrival."""

import re

import pytest

from chatcrm import cli, listing, render, service
from chatcrm.rules import employees, naming, order, sla, statuses
from chatcrm.store import connection, queries, schema
from chatcrm.times import epoch
from tests.helpers import close_, complete_, deal, events, ingest, msg, run, write_jsonl

NOW = "2026-11-24T12:00:00Z"


def t(minute: int, hour: int = 9) -> str:
    return f"2026-11-24T{hour:02d}:{minute:02d}:00Z"


# ------------------------------------------------------------------ statuses


def test_every_layer_names_the_statuses_of_rules_statuses_in_their_order(store):
    assert cli.STATUSES == statuses.STATUSES
    assert list(render.STATUS_LABEL) == list(statuses.STATUSES)
    # the first schema's CHECK constraint (a shipped migration) allows exactly R8's statuses,
    # the ones `deals.status` stores (due and pending depend on the reader's time)
    deals = store.conn.execute("SELECT sql FROM sqlite_master WHERE name = 'deals'").fetchone()[0]
    check = re.search(r"CHECK \(status IN \(([^)]*)\)\)", deals)
    assert check and [s.strip(" '") for s in check.group(1).split(",")] == list(statuses.BASE_STATUSES)
    assert set(statuses.BASE_STATUSES) <= set(statuses.STATUSES)


def test_the_queue_view_orders_by_the_rule_of_rules_statuses():
    view = schema._queue_view_m007()
    assert f"ORDER BY {statuses.queue_order_sql(schema._SQLITE_NOW, 'd')}" in view
    assert f"{statuses.status_sql(schema._SQLITE_NOW, 'd')} AS status" in view


def test_the_summary_counts_each_status_by_its_rank(store):
    ingest(store, [msg("u", t(1)), msg("g", t(2)), msg("g", t(3), "agent"), msg("x", t(4)), msg("x", t(5), "agent"),
                   complete_("x", t(6))])
    assert queries.queue_counts(store, epoch(NOW)) == {"unread": 1, "due": 0, "green": 1, "pending": 0, "grey": 1}


@pytest.mark.parametrize("make_tie", ["unread", "green", "grey"])
def test_R9_ties_go_to_the_lower_deal_id_not_the_lower_key(store, make_tie):
    """Deal `b` is created first (id 1) but sorts after `a` by key: a tie must put b first."""
    if make_tie == "unread":  # both wait since 09:05
        records = [msg("b", t(0), "agent"), msg("b", t(5)), msg("a", t(5))]
    elif make_tie == "green":  # both have an activity created at 09:05... b's deal is older
        records = [msg("b", t(0), "agent"), close_("b", t(1)), complete_("b", t(1)), msg("b", t(5), "agent"),
                   msg("a", t(5), "agent")]
    else:  # both grey, their last event at 09:30
        records = [msg("b", t(0)), complete_("b", t(30)), msg("a", t(5)), complete_("a", t(30))]
    ingest(store, records)
    assert deal(store, "b")["deal_id"] < deal(store, "a")["deal_id"]
    rows = listing.queue(store, now=NOW).rows
    assert {r["status"] for r in rows} == {make_tie}
    assert [r["deal_key"] for r in rows] == ["b", "a"]


# ------------------------------------------------------------------ the same instant


def test_the_same_instant_order_in_sql_is_the_rule_of_rules_order(store):
    for kind, rank in order.FACT_RANK.items():
        assert store.conn.execute(f"SELECT {order.rank_sql('?')}".replace("?", f"'{kind}'")).fetchone()[0] == rank


def test_an_export_lists_one_instants_facts_in_the_rule_order(store):
    at = t(30)
    ingest(store, [msg("tg:1", t(0)), {"type": "assign", "chat": "tg:1", "at": at, "agent": "Elena"},
                   complete_("tg:1", at), close_("tg:1", at), msg("tg:1", at, "agent", text="último")])
    kinds = [r["type"] for r in service.export(store) if r["at"] == at]
    assert kinds == ["message", "close", "complete", "assign"]  # as docs/rules.md says


# ------------------------------------------------------------------ SLA


def test_sla_the_summary_count_and_the_rows_agree_at_the_exact_instant(store):
    """Waiting exactly the SLA is within it (no `!`, not counted); one second more is over."""
    ingest(store, [msg("tg:1", "2026-11-24T11:45:00Z"), msg("tg:2", "2026-11-24T11:44:59Z")])
    queue = listing.queue(store, now=NOW, sla_seconds=15 * 60)
    overdue = {r["deal_key"]: r["overdue"] for r in queue.rows}
    assert overdue == {"tg:2": True, "tg:1": False}
    assert queue.overdue == 1 == sum(overdue.values())
    assert "1 over the 15m SLA" in render.summary_line(queue, color=False)


def test_sla_rule_and_its_sql_are_one_comparison():
    since, now = epoch(t(45, 11)), epoch(NOW)
    assert not sla.overdue(since, now, 15 * 60) and sla.overdue(since - 1, now, 15 * 60)
    assert "<" in sla.OVERDUE_SQL and "<=" not in sla.OVERDUE_SQL


# ------------------------------------------------------------------ names


@pytest.mark.parametrize("order_of_files", ["earliest first", "earliest last"])
def test_the_earliest_contact_wins_across_imports(store, order_of_files):
    later = [msg("tg:1", t(30), contact="Zoe Later")]
    earlier = [msg("tg:1", t(10), contact="Ana Earlier")]
    files = [earlier, later] if order_of_files == "earliest first" else [later, earlier]
    for records in files:
        ingest(store, records)
    assert deal(store, "tg:1")["contact"] == "Ana Earlier"


def test_the_earliest_contact_wins_within_one_import_whatever_the_line_order(store):
    ingest(store, [msg("tg:1", t(30), contact="Zoe Later"), msg("tg:1", t(10), contact="Ana Earlier"),
                   msg("tg:1", t(20), contact="Bea Middle")])
    assert deal(store, "tg:1")["contact"] == "Ana Earlier"


def test_the_earliest_contact_wins_across_the_chat_keys_of_one_deal(store):
    ingest(store, [msg("web:1", t(30), contact="Zoe Later", deal="D-1")])
    ingest(store, [msg("tg:2", t(10), contact="Ana Earlier", deal="D-1")])
    assert deal(store, "D-1")["contact"] == "Ana Earlier"
    ingest(store, [msg("wa:3", t(20), contact="Bea Middle", deal="D-1")])
    assert deal(store, "D-1")["contact"] == "Ana Earlier"


def test_at_one_instant_the_smallest_name_wins_in_any_arrival_order(store):
    ingest(store, [msg("tg:1", t(10), contact="Zoe"), msg("tg:1", t(10), contact="Ana", text="otra")])
    ingest(store, [msg("tg:2", t(10), contact="Ana"), msg("tg:2", t(10), contact="Zoe", text="otra")])
    assert deal(store, "tg:1")["contact"] == deal(store, "tg:2")["contact"] == "Ana"
    store2_records = [msg("tg:3", t(10), contact="Zoe")]
    ingest(store, store2_records)
    ingest(store, [msg("tg:3", t(10), contact="Ana", text="otra")])  # a later import, same instant
    assert deal(store, "tg:3")["contact"] == "Ana"


def test_naming_rule_and_its_sql_agree():
    assert naming.wins(t(1), "Zoe", t(2), "Ana") and not naming.wins(t(2), "Ana", t(1), "Zoe")
    assert naming.wins(t(1), "Ana", t(1), "Zoe") and not naming.wins(t(1), "Zoe", t(1), "Ana")
    assert naming.earliest([(t(3), "C"), (t(1), "B"), (t(1), "A")]) == "A"


def test_the_channel_comes_from_the_chat_keys_prefix_when_no_event_names_one(store):
    ingest(store, [msg("tg:1", t(1)), msg("wa:2", t(1)), msg("web:3", t(1)), msg("plain", t(1))])
    channels = {r["deal_key"]: r["channel"] for r in listing.queue(store, now=NOW).rows}
    assert channels == {"tg:1": "telegram", "wa:2": "whatsapp", "web:3": "webchat", "plain": "chat"}


# ------------------------------------------------------------------ employees


def test_an_employee_is_anyone_who_replied_or_was_assigned_in_every_consumer(tmp_path, monkeypatch):
    """Elena replies first (she is responsible), Luis second: Luis is an employee too."""
    monkeypatch.setenv("CHATCRM_NOW", NOW)
    records = [msg("tg:1", t(0)), msg("tg:1", t(5), "agent", author="Elena"), msg("tg:1", t(9), "agent", author="Luis")]
    db = tmp_path / "team.db"
    assert run("ingest", "--db", db, write_jsonl(tmp_path / "t.jsonl", records)).code == 0
    assert run("assign", "--db", db, "tg:1", "Marta").code == 0
    assert run("assign", "--db", db, "tg:1", "Elena").code == 0
    assert run("list", "--db", db, "--agent", "Luis", "-f", "json").json() == []  # known, responsible for nothing
    wrong_case = run("list", "--db", db, "--agent", "luis")
    assert wrong_case.code == 3 and "did you mean 'Luis'?" in wrong_case.err
    assert connection.employee_names_read_only(db) == ["Elena", "Luis", "Marta"]  # shell completion
    ctx = type("Ctx", (), {"params": {"db": str(db)}})()
    assert cli._complete_employee(ctx, "l") == ["Luis"]


def test_employee_queries_are_built_from_one_list_of_sources():
    for table, column, _ in employees.SOURCES:
        assert f"FROM {table}" in employees.names_sql() and f"SELECT {column}" in employees.names_sql()
        assert any(f"FROM {table} WHERE {column} = ?" in sql for sql in employees.exists_sql())


# ------------------------------------------------------------------ message identity


def test_identity_reimporting_with_the_roles_corrected_changes_directions_not_adds(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATCRM_NOW", NOW)
    lines = [
        "24/11/2026, 09:00 - Marta: Hola, ¿tenéis la talla M?",
        "24/11/2026, 09:05 - Tienda Sol: Sí, nos queda una.",
        "24/11/2026, 09:06 - Marta: ¡Genial!",
    ]
    export = tmp_path / "chat.txt"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    wrong = run("ingest", "--chat", "wa:marta", "--agent", "Marta", export)  # the roles the wrong way round
    assert wrong.code == 0 and wrong.err.startswith("added 3 message(s)")
    assert deal_status("wa:marta") == "green"
    right = run("ingest", "--chat", "wa:marta", "--agent", "Tienda Sol", export)
    assert right.code == 0, right.err
    # (the first line notes the earlier import with other employees: the change log)
    assert right.err.splitlines()[1].startswith("added 0 message(s) and 0 other event(s); 3 already present; "
                                                "3 message(s) changed direction (client/agent)")
    entries = run("timeline", "wa:marta", "-f", "json").json()
    assert [(e["direction"], e["author"]) for e in entries if e["kind"] == "message"] == [
        ("client", "Marta"), ("agent", "Tienda Sol"), ("client", "Marta")]
    assert deal_status("wa:marta") == "unread"
    again = run("ingest", "--chat", "wa:marta", "--agent", "Tienda Sol", export)
    assert "3 already present; 0 invalid" in again.err
    assert run("check").code == 0


def deal_status(key: str) -> str:
    return next(r["status"] for r in run("list", "-f", "json").json() if r["deal_key"] == key)


def test_identity_does_not_depend_on_the_direction(store):
    one, other = events([msg("wa:1", t(0), "client", author="Ana", text="ok")])[0], \
        events([msg("wa:1", t(0), "agent", author="Ana", text="ok")])[0]
    from chatcrm.rules import identity

    assert identity.content_prefix(one.at, one.author, one.text) == identity.content_prefix(
        other.at, other.author, other.text)
