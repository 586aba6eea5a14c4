"""`chatcrm search`: full-text search over messages, authors, deal titles and contacts,
kept in step with every write, built by a migration, verified by `check`."""

import json
import sqlite3

import pytest

from chatcrm import actions, service
from chatcrm.errors import NotFound, UsageError
from chatcrm.store import open_store, verify
from tests.helpers import FIXTURES, ingest, msg, run, write_jsonl

NOW = "2026-11-24T17:00:00Z"


def t(minute: int, hour: int = 9) -> str:
    return f"2026-11-24T{hour:02d}:{minute:02d}:00Z"


def found(store, query, **filters):
    return [(h["kind"], h["deal_id"], h["text"]) for h in service.search(store, query, now=NOW, **filters).hits]


@pytest.fixture
def day(store):
    records = [json.loads(line) for line in (FIXTURES / "support-day.jsonl").read_text(encoding="utf-8").splitlines()]
    ingest(store, records)
    return store


# ------------------------------------------------------------- what matches


def test_case_and_accents_do_not_matter_in_any_script(store):
    ingest(store, [
        msg("tg:1", t(0), text="Mi Factura, por favor", id="1"),
        msg("tg:2", t(1), text="¿Y la facturá?", id="2"),
        msg("tg:3", t(2), text="Где мой ЗАКАЗ?", id="3"),
        msg("tg:4", t(3), text="Otra cosa", id="4"),
        msg("tg:5", t(4), text="Tiếng Việt", id="5"),  # letters with two diacritics each
    ])
    assert sorted(d for _, d, _ in found(store, "factura")) == [1, 2]
    assert sorted(d for _, d, _ in found(store, "FACTURÁ")) == [1, 2]
    assert [d for _, d, _ in found(store, "заказ")] == [3]
    assert [d for _, d, _ in found(store, "tieng viet")] == [5]


def test_fts_syntax_phrase_or_and_prefix_work(day):
    assert {text for _, _, text in found(day, '"talla M"')} == {
        "¿Tienen la chaqueta azul en talla M?", "¡Hola Ana! Sí, nos quedan dos en talla M."}
    assert {d for _, d, _ in found(day, "factura OR chaqueta")} == {2, 6}
    assert any("pedido" in text for _, _, text in found(day, "pedi*"))
    assert found(day, "pedi") == []


def test_authors_deal_titles_and_contacts_are_found(day):
    by_author = found(day, "author:elena")
    assert by_author and all(kind == "message" for kind, _, _ in by_author)
    deals = [(kind, d) for kind, d, _ in found(day, "Carmen") if kind == "deal"]
    assert deals == [("deal", 6)]  # the contact, and the title "Carmen López — factura 47110", once


def test_newest_first_by_default_and_best_first_with_sort_rank(store):
    ingest(store, [
        msg("tg:1", t(0), text="pedido pedido pedido", id="1"),
        msg("tg:2", t(5), text="un pedido entre muchas otras palabras de relleno aquí", id="2"),
        msg("tg:3", t(9), text="otro pedido entre muchas más palabras de relleno, y algunas más", id="3"),
    ])
    assert [d for _, d, _ in found(store, "pedido")] == [3, 2, 1]
    assert [d for _, d, _ in found(store, "pedido", sort="rank")] == [1, 2, 3]
    assert [d for _, d, _ in found(store, "pedido", sort="rank", limit=1)] == [1]  # the best, not the newest


def test_filters_narrow_the_matches(day):
    assert {d for _, d, _ in found(day, "pedido", deal="6")} == {6}
    assert {d for _, d, _ in found(day, "pedido", channel="messenger")} == {7}
    assert {d for _, d, _ in found(day, "hola", agent="Elena")} <= {1, 4, 6}
    assert {h for h in found(day, "hola", author="luis")} and all(
        h["author"] == "Luis" for h in service.search(day, "hola", now=NOW, author="luis").hits)
    assert {d for _, d, _ in found(day, "hola", status="unread")} <= {2, 3, 6, 8}
    assert found(day, "factura", since="2026-11-24T14:00:00Z") == [
        ("message", 6, "No me ha llegado la factura al correo")]
    assert all(h["at"] < "2026-11-24T14:00:00Z" for h in service.search(day, "factura", now=NOW, until="2026-11-24T14:00:00Z").hits)
    result = service.search(day, "hola", now=NOW, limit=2)
    assert len(result.hits) == 2 and result.more


def test_bad_filters_and_queries_are_usage_errors(day):
    for query in ("foo AND", '"unterminated', "pedido:4711", "   "):
        with pytest.raises(UsageError):
            service.search(day, query, now=NOW)
    with pytest.raises(NotFound):
        service.search(day, "hola", now=NOW, deal="999")
    with pytest.raises(NotFound):
        service.search(day, "hola", now=NOW, agent="Nadie")
    with pytest.raises(UsageError):
        service.search(day, "hola", now=NOW, status="blue")
    with pytest.raises(UsageError):
        service.search(day, "hola", now=NOW, sort="best")


# ------------------------------------------------------------- kept in step


def test_a_reply_is_found_at_once(day):
    actions.reply(day, "3", "Tu número de seguimiento es ZX9001", now=NOW, author="Luis")
    assert found(day, "zx9001") == [("message", 3, "Tu número de seguimiento es ZX9001")]
    assert verify.check(day) == []


def test_a_large_import_into_a_database_with_messages_is_indexed_whole(day):
    """The bulk path sets the triggers aside and indexes the new messages at its end."""
    ingest(day, [msg(f"wa:9{n}", t(n, 10), text=f"lote {n} único", id=f"l{n}") for n in range(12)])
    assert len(found(day, "lote", limit=50)) == 12
    assert verify.check(day) == []
    triggers = {r[0] for r in day.conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert {"messages_search_insert", "messages_search_delete", "messages_search_update"} <= triggers


def test_a_refused_import_leaves_the_index_and_its_triggers_as_they_were(day, tmp_path):
    before = found(day, "lote")
    bad = [msg(f"wa:9{n}", t(n, 10), text=f"lote {n}", id=f"l{n}") for n in range(8)] + [{"chat": "x"}]
    result = run("ingest", "--db", day.path, write_jsonl(tmp_path / "bad.jsonl", bad))
    assert result.code == 5 and found(day, "lote") == before == []
    actions.reply(day, "3", "lote nuevo", now=NOW, author="Luis")
    assert found(day, "lote") == [("message", 3, "lote nuevo")]


def test_deleting_or_editing_a_stored_message_follows_into_the_index(day):
    conn = day.conn
    with day.write():
        conn.execute("DELETE FROM messages WHERE text = 'No me ha llegado la factura al correo'")
        conn.execute("UPDATE messages SET text = 'Os escribo por la boleta' WHERE text LIKE 'Os escribo%'")
    assert [k for k, _, _ in found(day, "factura")] == ["deal"]
    assert found(day, "boleta") == [("message", 6, "Os escribo por la boleta")]
    assert [p for p in verify.check(day) if p.startswith("search")] == []


def test_check_finds_a_message_missing_from_the_index(day):
    with day.write():
        day.conn.execute("DROP TRIGGER messages_search_insert")
        day.conn.execute("INSERT INTO messages (chat_key, uid, direction, author, text, sent_at) "
                         "SELECT chat_key, 'id:sneaked', 'client', 'X', 'sin índice', '2026-11-24T16:59:00Z' FROM messages LIMIT 1")
    problems = verify.check(day)
    assert any("1 message(s) are not indexed" in p for p in problems)


def test_check_finds_a_deal_indexed_with_another_title(day):
    with day.write():
        day.conn.execute("UPDATE deals_fts SET text = 'otro título' WHERE rowid = 6")
    assert any("deal 6's title or contact is not indexed as stored" in p for p in verify.check(day))


def test_the_migration_builds_the_index_of_an_older_database(tmp_path):
    import shutil

    old = tmp_path / "old.db"
    shutil.copy(FIXTURES.parent / "tests" / "fixtures" / "schema-m002.db", old)
    conn = sqlite3.connect(old)
    texts = [row[0] for row in conn.execute("SELECT text FROM messages")]
    conn.close()
    assert texts
    store = open_store(old)
    try:
        word = texts[0].split()[0].strip("¿?¡!.,")
        assert any(word in h["text"] for h in service.search(store, f'"{word}"', now=NOW, limit=100).hits)
        assert verify.check(store) == []
    finally:
        store.close()


def test_export_leaves_the_index_out(day, tmp_path):
    records = list(service.export(day))
    assert records and {r["type"] for r in records} <= {"message", "close", "complete", "assign"}


# ------------------------------------------------------------- the command


@pytest.fixture
def cli_day():
    assert run("ingest", FIXTURES / "support-day.jsonl").code == 0


def test_search_prints_deal_status_time_direction_author_and_marked_snippet(cli_day, monkeypatch):
    monkeypatch.setenv("CHATCRM_NOW", NOW)
    result = run("search", "factura")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0].split() == ["DEAL", "STATUS", "TIME", "FROM", "MATCH"]
    assert "6       UNREAD    2026-11-24 14:10  ← Carmen López       No me ha llegado la [factura] al correo" in lines
    assert lines[-1] == "3 match(es) for factura, newest first"
    assert "\x1b[" not in result.out  # piped: plain markers


def test_on_a_terminal_the_match_is_highlighted(monkeypatch):
    from chatcrm import render

    assert render.snippet("la \ue000factura\ue001 \x1b[2J", True) == "la \x1b[1;33mfactura\x1b[0m \\x1b[2J"
    assert render.snippet("la \ue000factura\ue001", False) == "la [factura]"


def test_search_formats_json_csv_and_ids(cli_day):
    data = run("search", "factura", "-f", "json").json()
    assert data[0]["deal_id"] == 6 and data[0]["snippet"] == "No me ha llegado la [factura] al correo"
    assert set(data[0]) == {"kind", "deal_id", "deal_key", "status", "at", "direction", "author", "channel",
                            "chat_key", "text", "snippet"}
    assert run("search", "factura", "-f", "ids").out == "6\n"
    csv_out = run("search", "factura", "-f", "csv").out.splitlines()
    assert csv_out[0].startswith("kind,deal_id") and len(csv_out) == 4


def test_a_formula_in_a_client_message_is_defused_in_csv(tmp_path):
    run("ingest", write_jsonl(tmp_path / "e.jsonl", [msg("wa:1", t(0), text="=HYPERLINK(\"http://x\") pedido")]))
    out = run("search", "pedido", "-f", "csv").out
    assert "'=HYPERLINK" in out


def test_search_bad_input_is_one_line_and_the_documented_code(cli_day):
    for args, code, words in (
        (["search", "foo AND"], 2, "malformed search query 'foo AND': fts5: syntax error"),
        (["search", "hola", "--deal", "999"], 3, "no deal '999'"),
        (["search", "hola", "--since", "yesterday-ish"], 2, "--since"),
        (["search", "hola", "--format", "xml"], 2, "unknown --format"),
        (["search", "hola", "--sort", "best"], 2, "unknown --sort"),
    ):
        result = run(*args)
        assert result.code == code, args
        assert result.err.count("\n") == 1 and result.err.startswith("Error: ") and words in result.err, result.err
        assert "Traceback" not in result.err and result.out == ""


def test_a_large_import_indexes_its_new_deals_at_its_end_and_keeps_the_trigger(store):
    ingest(store, [msg(f"wa:{n}", t(n), text="hola", id=f"m{n}", contact=f"Cliente Número{n}") for n in range(9)])
    assert sorted(d for k, d, _ in found(store, "numero4 OR numero7") if k == "deal") == [5, 8]
    triggers = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert "deals_search_insert" in triggers
    ingest(store, [msg("wa:new", t(30), text="hola", id="x", contact="Otra Persona")])  # through the trigger
    assert [d for k, d, _ in found(store, "persona") if k == "deal"] == [10]
    assert verify.check(store) == []
