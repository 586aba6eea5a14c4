"""Per-command cost must not grow with the database: no query of `list`, `reply`, `close`,
`complete`, `assign`, `remind`, `timeline`, `search` or `close --idle` reads the whole
messages table (or a whole index of it), nor the other fact tables, nor the chats or deals;
and `list` reads the deals of each status (due and pending too, which depend on the time)
from an index range, never the whole deals table."""

import re

from chatcrm import actions, listing, service
from tests.helpers import close_, ingest, msg


def statements_of(store, action) -> list[str]:
    seen: list[str] = []
    store.conn.set_trace_callback(seen.append)
    try:
        action()
    finally:
        store.conn.set_trace_callback(None)
    return [s for s in seen if re.match(r"\s*(SELECT|UPDATE|DELETE|INSERT|WITH)", s, re.I)]


def full_scans(store, statements, also_states: bool = False) -> list[str]:
    found = []
    for sql in statements:
        for row in store.conn.execute("EXPLAIN QUERY PLAN " + sql):
            detail = row[3]
            # deals: none is read whole (the summary reads the stored queue_counts)
            if re.match(r"SCAN (messages|m|chat_events|e|assignments|reminders|r)\b", detail) or (
                also_states and re.match(r"SCAN (chats|c|deals|d|activities|a|chat_keys|k)\b", detail)
            ) or re.match(r"SCAN (deals|d)\b", detail) or (
                sql.lstrip().startswith("SELECT d.id AS deal_id") and "TEMP B-TREE" in detail
            ):
                found.append(f"{detail}  <-  {sql.strip()[:120]}")
    return found


def test_everyday_commands_use_indexes_only(store):
    records = []
    for c in range(200):
        records += [msg(f"wa:{c}", "2026-11-24T09:00:00Z", id=f"{c}a"), msg(f"wa:{c}", "2026-11-24T09:05:00Z", "agent", id=f"{c}b", author="Luis")]
        records += [msg(f"wa:{c}", "2026-11-24T09:10:00Z", id=f"{c}c")]
        if c % 3 == 0:  # follow-ups, some due by now, some pending
            records.append({"type": "remind", "chat": f"wa:{c}", "at": "2026-11-24T09:06:00Z",
                            "due": f"2026-11-24T{10 + c % 5:02d}:00:00Z"})
    records += [close_("wa:199", "2026-11-24T09:30:00Z")]
    ingest(store, records)
    now = "2026-11-24T12:00:00Z"
    commands = {
        "list": lambda: listing.queue(store, now=now, limit=50),
        "list --agent --sla": lambda: listing.queue(store, now=now, limit=50, agent="Luis", sla_seconds=900),
        **{f"list --status {status}": lambda status=status: listing.queue(store, now=now, status=status)
           for status in ("unread", "due", "green", "pending", "grey")},
        "list --status due --agent": lambda: listing.queue(store, now=now, status="due", agent="Luis"),
        "remind": lambda: actions.remind(store, "wa:9", now=now, due_at="2026-11-25T09:00:00Z"),
        "remind --clear": lambda: actions.remind(store, "wa:9", now="2026-11-24T12:01:00Z", due_at=None),
        "assign": lambda: actions.assign(store, "wa:8", "Marta", now=now),
        "reply": lambda: actions.reply(store, "wa:5", "hola", now=now, author="Luis"),
        "close": lambda: actions.close(store, "wa:5", now=now),
        "complete": lambda: actions.complete(store, "wa:6", now=now, force=True),
        "timeline": lambda: service.timeline(store, "wa:7"),
        "timeline with follow-ups": lambda: service.timeline(store, "wa:3", now),
    }
    # These read neither the facts nor the derived states whole (the queue reads its
    # index in order, up to --limit: above).
    focused = {
        "search": lambda: service.search(store, "hello", now=now, limit=20),
        "search with filters": lambda: service.search(store, "hello", now=now, agent="Luis", status="unread",
                                                      channel="whatsapp", since="2026-11-24", deal="wa:9"),
        "close --idle": lambda: service.close_idle(store, idle_seconds=3600, now="2026-11-25T12:00:00Z"),
        "many deals": lambda: actions.on_many(store, ["wa:10", "wa:11"],
                                              lambda ref: actions.close(store, ref, now=now, force=True)),
    }
    for name, action in [*commands.items(), *focused.items()]:
        statements = statements_of(store, action)
        assert statements, name
        assert full_scans(store, statements, also_states=name in focused) == [], name


def test_every_foreign_key_can_find_its_children_through_an_index(store):
    """SQLite looks children up on every write to a parent table while an import's new
    deals are not written yet (deferred foreign keys): without an index that is a scan of
    the child table per row, quadratic over an import."""
    for table, in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\'"):
        for fk in store.conn.execute(f"PRAGMA foreign_key_list({table})"):
            column = fk[3]
            plan = " ".join(r[3] for r in store.conn.execute(f"EXPLAIN QUERY PLAN SELECT 1 FROM {table} WHERE {column} = ?", [1]))
            # (a WITHOUT ROWID table's primary key is its index)
            assert "USING" in plan and ("INDEX" in plan or "PRIMARY KEY" in plan), (table, column, plan)


def test_the_queue_summary_counts_are_kept_by_every_write_to_the_deals(store, tmp_path):
    """`queue_counts` (m013) holds, per responsible and status rank, how many deals there
    are: imports, replies, assignments, closes, completions and undo keep it equal to a
    count of the deals, and `check` names a count that is not."""
    from chatcrm.store import verify

    def recount() -> dict:
        return {(r, rank): n for r, rank, n in store.conn.execute(
            "SELECT coalesce(responsible, ''), status_rank, count(*) FROM deals GROUP BY 1, 2")}

    def stored() -> dict:
        return {(r, rank): n for r, rank, n in store.conn.execute(
            "SELECT responsible, status_rank, deals FROM queue_counts WHERE deals <> 0")}

    records = []
    for c in range(12):
        records += [msg(f"wa:{c}", "2026-11-24T09:00:00Z"), msg(f"wa:{c}", "2026-11-24T09:05:00Z")]
        if c % 2:
            records.append(msg(f"wa:{c}", "2026-11-24T09:06:00Z", "agent", author="Luis"))
    ingest(store, records)
    assert stored() == recount() and sum(recount().values()) == 12
    now = "2026-11-24T12:00:00Z"
    steps = [
        lambda: actions.reply(store, "wa:0", "hola", now=now, author="Elena"),  # unread → green, responsible Elena
        lambda: actions.assign(store, "wa:1", "Marta", now=now),  # responsible changes, rank stays
        lambda: actions.close(store, "wa:3", now=now),
        lambda: actions.complete(store, "wa:5", now=now, force=True),  # → grey
        lambda: service.undo(store, str(store.conn.execute("SELECT max(id) FROM changes").fetchone()[0]), now=now),
    ]
    for step in steps:
        step()
        assert stored() == recount()
    queue = listing.queue(store, now=now)
    assert sum(queue.counts.values()) == 12
    assert listing.queue(store, now=now, agent="Marta").counts["green"] == 1
    assert verify.check(store) == []
    with store.write():
        store.conn.execute("UPDATE queue_counts SET deals = deals + 2 WHERE responsible = 'Marta'")
    assert verify.check(store) == ["queue count of green deals (responsible 'Marta'): 3 stored, the deals give 1"]
