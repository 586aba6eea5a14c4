"""Hostile live-channel payloads and CSV files (README "Live channels", "Limits"): every
field read by its type, bounded reading, ids that cannot carry anything else, options
that do not apply refused, and CSV records that cannot swallow the rest of a file."""

import json
import sqlite3

import pytest

from chatcrm.importers.payload import Fields, Malformed
from tests.helpers import FIXTURES, run

LIVE = FIXTURES / "live"
ENV = {"CHATCRM_NOW": "2026-11-24T18:00:00Z", "CHATCRM_TZ": "UTC", "CHATCRM_AGENT": "Luis"}

WA_MESSAGE = {"from": "34600111222", "id": "wamid.1", "timestamp": "1795951200", "type": "text", "text": {"body": "hola"}}
WA_OTHER = {"from": "34600333444", "id": "wamid.2", "timestamp": "1795951260", "type": "text", "text": {"body": "buenas"}}
WA_STATUS = {"id": "wamid.9", "status": "failed", "timestamp": "1795951200", "errors": [{"code": 131026, "title": "x"}]}


def whatsapp(value=None, entry=None):
    entry = entry if entry is not None else {"changes": [{"field": "messages", "value": value}]}
    return {"object": "whatsapp_business_account", "entry": [entry]}


TG_MESSAGE = {"message_id": 1, "from": {"id": 5550001, "first_name": "Ana"}, "date": 1795943700, "text": "hola",
              "chat": {"id": 5550001, "type": "private", "first_name": "Ana"}}


def telegram(kind="message", **fields):
    message = {k: v for k, v in {**TG_MESSAGE, **fields}.items() if v is not ...}
    return {"update_id": 1, kind: message}


def stored(db):
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'messages'").fetchone():
            return 0
        return conn.execute("SELECT count(*) FROM messages").fetchone()[0]


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


def refused(path, *args):
    """Imports `path`; returns the one error line after checking exit 5 and nothing written."""
    db = path.parent / "refused.db"
    result = run("ingest", "--db", db, path, *args)
    assert result.code == 5, result.err
    assert result.err.startswith(f"Error: {path}:") and result.err.count("\n") == 1, result.err
    assert "internal error" not in result.err and "Traceback" not in result.err
    assert stored(db) == 0
    return result.err


# ------------------------------------------------------------------ every field by its type

WHATSAPP_MALFORMED = [
    ({"metadata": "x", "messages": [WA_MESSAGE]}, "change.value.metadata must be an object, not 'x'"),
    ({"contacts": [{"wa_id": "1", "profile": "x"}], "messages": [WA_MESSAGE]}, "change.value.contacts[0].profile must be an object"),
    ({"contacts": 5, "messages": [WA_MESSAGE]}, "change.value.contacts must be a list, not 5"),
    ({"messages": 5}, "change.value.messages must be a list, not 5"),
    ({"statuses": 5}, "change.value.statuses must be a list, not 5"),
    ({"messages": [dict(WA_MESSAGE, type=["text"])]}, "messages[0].type must be a string, not a list"),
    ({"messages": [dict(WA_MESSAGE, type="interactive", interactive={"button_reply": "x"})]},
     "messages[0].interactive.button_reply must be an object"),
    ({"messages": [dict(WA_MESSAGE, type="contacts", contacts=[{"name": "x"}])]}, "messages[0].contacts[0].name must be an object"),
    ({"messages": [dict(WA_MESSAGE, type="order", order={"product_items": 5})]}, "messages[0].order.product_items must be a list"),
    ({"statuses": [dict(WA_STATUS, status=["read"])]}, "statuses[0].status must be a string, not a list"),
    ({"statuses": [dict(WA_STATUS, errors=[{"error_data": "x"}])]}, "statuses[0].errors[0].error_data must be an object"),
    ({"messages": [dict(WA_MESSAGE, timestamp=True)]}, "messages[0].timestamp must be a string of digits (at most 12), not true"),
    ({"messages": [dict(WA_MESSAGE, text={"body": {"x": 1}})]}, "messages[0].text.body must be a string, not an object"),
    ({"messages": [dict(WA_MESSAGE, id=7)]}, "messages[0].id must be a string, not 7"),
    ({"messages": [{k: v for k, v in WA_MESSAGE.items() if k != "id"}]}, "messages[0] without id"),
]


@pytest.mark.parametrize("value, problem", WHATSAPP_MALFORMED)
def test_whatsapp_every_field_of_the_wrong_type_is_refused_naming_it_exit_5_nothing_written(tmp_path, value, problem):
    path = tmp_path / "n.json"
    path.write_text(json.dumps(whatsapp(value)), encoding="utf-8")
    error = refused(path)
    assert error.startswith(f"Error: {path}:1: ") and problem in error, error


def test_whatsapp_an_entry_whose_changes_are_not_a_list_is_refused_naming_it(tmp_path):
    path = tmp_path / "n.json"
    path.write_text(json.dumps(whatsapp(entry={"changes": 5})), encoding="utf-8")
    assert refused(path) == f"Error: {path}:1: entry[0].changes must be a list, not 5\n"


def test_whatsapp_a_malformed_message_is_skipped_alone_with_skip_invalid(tmp_path):
    path = tmp_path / "n.json"
    bad = dict(WA_MESSAGE, id="wamid.bad", type=["text"])
    path.write_text(json.dumps(whatsapp({"messages": [bad, WA_OTHER]})), encoding="utf-8")
    result = run("ingest", "--db", tmp_path / "db", "--skip-invalid", path)
    assert result.code == 0, result.err
    assert "message wamid.bad: messages[0].type must be a string" in result.err
    assert stored(tmp_path / "db") == 1


TELEGRAM_MALFORMED = [
    (telegram(chat={"id": True, "type": "private"}), "message.chat.id must be a whole number, not true"),
    (telegram(message_id=True), "message.message_id must be a whole number, not true"),
    (telegram(date=True), "message.date must be a whole number, not true"),
    (telegram(date="1795943700"), "message.date must be a whole number, not '1795943700'"),
    (telegram(**{"from": {"id": 5550001, "first_name": ["A"]}}), "message.from.first_name must be a string, not a list"),
    (telegram(chat={"id": 5550001, "title": {"x": 1}}), "message.chat.title must be a string, not an object"),
    (telegram(text=["hola"]), "message.text must be a string, not a list"),
    (telegram(text=..., sticker={"emoji": 5}), "message.sticker.emoji must be a string, not 5"),
    (telegram(text=..., location={"latitude": "40.4", "longitude": -3.7}), "message.location.latitude must be a number"),
    (telegram(chat={"id": 1.5}), "message.chat.id must be a whole number, not 1.5"),
    (telegram(chat={"id": 10**30}), "message.chat.id must be a whole number, not 1e+30"),
    ({"update_id": True, "message": TG_MESSAGE}, "update.update_id must be a whole number, not true"),
    ({"update_id": 1, "message": [TG_MESSAGE]}, "message must be an object, not a list"),
]


@pytest.mark.parametrize("update, problem", TELEGRAM_MALFORMED)
def test_telegram_every_field_of_the_wrong_type_is_refused_naming_it_exit_5_nothing_written(tmp_path, update, problem):
    path = tmp_path / "u.json"
    path.write_text(json.dumps(update), encoding="utf-8")
    error = refused(path)
    assert problem in error, error


def test_true_is_not_a_number_nor_a_list_a_name_for_the_typed_access():
    fields = Fields({"id": True, "name": ["A"], "n": 7, "digits": "0123", "big": 1 << 63}, "message")
    with pytest.raises(Malformed, match=r"message.id must be a whole number, not true"):
        fields.whole("id")
    with pytest.raises(Malformed, match=r"message.name must be a string, not a list"):
        fields.text("name")
    with pytest.raises(Malformed, match=r"message.big must be a whole number"):
        fields.whole("big")
    with pytest.raises(Malformed, match=r"message without gone"):
        fields.text("gone", required=True)
    assert fields.whole("n") == 7 and fields.digits("digits") == "0123" and fields.text("gone") is None


def test_every_payload_field_read_goes_through_the_typed_access():
    """Past the document's envelope (checked where it is read), the live readers read no
    field with a raw `.get(` or `[...]` on the payload: a field read raw would bring back
    the class of bug (a list turned into a name by str(), true taken for 1)."""
    from chatcrm.importers import telegram_bot, whatsapp_cloud

    for module, start in ((telegram_bot, "def _update("), (whatsapp_cloud, "def _change(")):
        body = open(module.__file__, encoding="utf-8").read().split(start, 1)[1]
        raw = [line.strip() for line in body.splitlines()
               if ".get(" in line and "fields.value.get(key)" not in line and "names.get(" not in line]
        assert raw == [], module.__name__


# ------------------------------------------------------------------ bounds


@pytest.mark.parametrize("fmt", ["telegram-bot", "whatsapp-cloud"])
def test_live_endless_input_is_refused_at_line_1_in_bounded_memory(fmt):
    from tests.test_importer_fuzz import _bounded_run

    result, peak, _ = _bounded_run("ingest", "-f", fmt, "/dev/zero")
    assert result.code == 5 and result.err.startswith("Error: /dev/zero:1: ") and result.err.count("\n") == 1
    assert peak < 40 << 20


def test_live_a_line_over_16_mib_is_refused_with_its_line(tmp_path):
    path = tmp_path / "big.jsonl"
    update = telegram(text="x" * (17 << 20))
    path.write_text(json.dumps(telegram()) + "\n" + json.dumps(update) + "\n", encoding="utf-8")
    assert refused(path) == f"Error: {path}:2: a line longer than 16 MiB; not a Telegram Bot API payload\n"


def test_live_a_getupdates_of_100_long_escaped_messages_on_one_line_is_read(tmp_path):
    """Telegram escapes what is not ASCII: 100 updates of 4,096 emoji, each replying to
    another, make a one-line response of about 10 MB that a fetcher must be able to import
    (else no later update would ever be)."""
    path = tmp_path / "response.json"
    text = "😀" * 4096
    result = [dict(telegram(message_id=n, text=text, reply_to_message=dict(TG_MESSAGE, text=text)), update_id=n)
              for n in range(1, 101)]
    path.write_text(json.dumps({"ok": True, "result": result}), encoding="utf-8")
    assert path.stat().st_size > 9 << 20
    assert run("ingest", "--db", tmp_path / "db", path).code == 0
    assert stored(tmp_path / "db") == 100


def test_live_a_document_over_16_mib_spread_over_lines_is_refused_naming_where_it_begins(tmp_path):
    path = tmp_path / "big.json"
    result = [telegram(text="x" * (4 << 20)) for _ in range(5)]
    path.write_text("\n" + json.dumps({"ok": True, "result": result}, indent=1), encoding="utf-8")
    assert refused(path) == (f"Error: {path}:2: a document spread over lines larger than 16 MiB; "
                             "not a Telegram Bot API payload\n")


def test_live_a_document_of_more_than_a_million_values_is_refused_before_it_is_parsed(tmp_path):
    from tests.test_importer_fuzz import _bounded_run

    path = tmp_path / "many.jsonl"
    path.write_text('{"update_id": 1, "message": [' + ",".join(["[]"] * ((1 << 20) + 1)) + "]}\n", encoding="utf-8")
    result, peak, _ = _bounded_run("ingest", "--db", tmp_path / "db", path)
    assert result.err == f"Error: {path}:1: more than 1,048,576 values in one document; not a Telegram Bot API payload\n"
    assert peak < 40 << 20


def test_live_a_getupdates_of_100_texts_full_of_commas_is_still_read(tmp_path):
    """The values bound counts commas, also those in texts: Telegram's largest batch stays below."""
    path = tmp_path / "commas.json"
    result = [dict(telegram(message_id=n, text="," * 4096), update_id=n) for n in range(1, 101)]
    path.write_text(json.dumps({"ok": True, "result": result}), encoding="utf-8")
    assert run("ingest", "--db", tmp_path / "db", path).code == 0
    assert stored(tmp_path / "db") == 100


def test_live_a_message_text_over_1_mib_is_invalid(tmp_path):
    path = tmp_path / "long.json"
    path.write_text(json.dumps(telegram(text="x" * ((1 << 20) + 1))), encoding="utf-8")
    assert refused(path) == f"Error: {path}:1: update 1: message.text is longer than 1 MiB\n"


@pytest.mark.parametrize("payload", [
    '{"update_id": 1, "message": {"message_id": 1, "chat": {"id": ' + "9" * 5000 + '}, "date": 1795943700, "text": "x"}}',
    '{"object": "whatsapp_business_account", "entry": [{"id": ' + "9" * 5000 + "}]}",
])
def test_live_a_number_of_5000_digits_is_refused_with_its_line(tmp_path, payload):
    path = tmp_path / "n.json"
    path.write_text("\n" + payload + "\n", encoding="utf-8")
    assert "near here (a number too large to be an id or a time)" in refused(path)


@pytest.mark.parametrize("layout", ["one line", "spread over lines"])
def test_live_nesting_deeper_than_64_levels_is_refused_with_its_line(tmp_path, layout):
    from tests.test_importer_fuzz import _bounded_run

    for depth in (100, 100000):
        path = tmp_path / f"deep{depth}.json"
        nested = "[" * depth + "]" * depth
        path.write_text('{"update_id": 1,' + ("\n" if layout != "one line" else "") + ' "message": ' + nested + "}\n",
                        encoding="utf-8")
        result, peak, _ = _bounded_run("ingest", "--db", tmp_path / "db", path)
        assert result.code == 5 and "nested deeper than 64 levels" in result.err, result.err
        # the line the document begins on, or the one where the parser gave up
        line = 1 if layout == "one line" or depth == 100 else 2
        assert result.err.startswith(f"Error: {path}:{line}: "), result.err
        assert peak < 60 << 20


def test_live_binary_and_broken_utf8_are_refused_with_their_line(tmp_path):
    path = tmp_path / "bin.jsonl"
    path.write_bytes(json.dumps(telegram()).encode() + b"\n" + b'{"update_id": 2, "x": "\xff"}\n')
    assert refused(path) == f"Error: {path}:2: broken Telegram Bot API payload on this line (not UTF-8 text (byte 24))\n"
    path.write_bytes(json.dumps(telegram()).encode() + b"\n\x00\n")
    assert refused(path) == f"Error: {path}:2: binary data (a NUL byte); not a Telegram Bot API payload\n"


# ------------------------------------------------------------------ WhatsApp ids are digits


@pytest.mark.parametrize("sender", ["abc", "xyz", '34600111222","to":"34999999999', "+34600111222", "", "٣٤٦"])
def test_whatsapp_a_sender_that_is_not_digits_is_refused(tmp_path, sender):
    path = tmp_path / "n.json"
    path.write_text(json.dumps(whatsapp({"messages": [dict(WA_MESSAGE, **{"from": sender})]})), encoding="utf-8")
    assert "messages[0].from must be a string of digits" in refused(path)


def test_whatsapp_a_contact_or_phone_number_id_that_is_not_digits_is_refused(tmp_path):
    path = tmp_path / "n.json"
    path.write_text(json.dumps(whatsapp({"contacts": [{"wa_id": "abc"}], "messages": [WA_MESSAGE]})), encoding="utf-8")
    assert "change.value.contacts[0].wa_id must be a string of digits" in refused(path)
    path.write_text(json.dumps(whatsapp({"metadata": {"phone_number_id": '1"\nurl = "http://elsewhere'},
                                          "messages": [WA_MESSAGE]})), encoding="utf-8")
    error = refused(path)
    assert "metadata.phone_number_id must be a string of digits" in error and "\\x0a" in error


def test_whatsapp_two_clients_stay_on_two_deals(tmp_path):
    path = tmp_path / "n.json"
    path.write_text(json.dumps(whatsapp({"messages": [WA_MESSAGE, WA_OTHER]})), encoding="utf-8")
    assert run("ingest", "--db", tmp_path / "db", path).code == 0
    keys = [d["deal_key"] for d in run("list", "--db", tmp_path / "db", "-f", "json").json()]
    assert sorted(keys) == ["wa:34600111222", "wa:34600333444"]


# ------------------------------------------------------------------ options on live payloads


def test_live_telegram_agent_matching_no_author_is_refused_like_an_export(tmp_path):
    result = run("ingest", "--db", tmp_path / "db", "--agent", "Nobody", LIVE / "telegram-getupdates.json")
    assert result.code == 5 and "--agent 'Nobody' matches no author" in result.err and "Ana Pérez" in result.err
    assert stored(tmp_path / "db") == 0


def test_live_telegram_agent_names_an_employee_of_a_bots_chat(tmp_path):
    path = tmp_path / "u.jsonl"
    staff = telegram(message_id=2, text="te ayudo", **{"from": {"id": 42, "first_name": "Luis"}})
    path.write_text(json.dumps(telegram()) + "\n" + json.dumps(dict(staff, update_id=2)) + "\n", encoding="utf-8")
    assert run("ingest", "--db", tmp_path / "db", "--agent", "Luis", path).code == 0
    with sqlite3.connect(tmp_path / "db") as conn:
        assert conn.execute("SELECT author, direction FROM messages ORDER BY sent_at, uid").fetchall() == [
            ("Ana", "client"), ("Luis", "agent")]


@pytest.mark.parametrize("args, fixture, says", [
    (["--chat", "tg:1"], "telegram-getupdates.json", "--chat does not apply to a Telegram Bot API payload"),
    (["--chat", "wa:1"], "whatsapp-message.json", "--chat does not apply to a WhatsApp Cloud API notification"),
    (["--agent", "Luis"], "whatsapp-message.json", "--agent does not apply to a WhatsApp Cloud API notification"),
])
def test_live_options_that_do_not_apply_are_refused_exit_2_nothing_written(tmp_path, args, fixture, says):
    export = FIXTURES / "whatsapp" / "WhatsApp Chat with Marta Gómez.txt"
    result = run("ingest", "--db", tmp_path / "db", *args, export, LIVE / fixture)
    assert result.code == 2, result.err
    assert result.err == f"Error: {LIVE / fixture}: {says}" + result.err.split(says, 1)[1] and result.err.count("\n") == 1
    assert stored(tmp_path / "db") == 0


# ------------------------------------------------------------------ business messages without from


def test_telegram_business_message_without_from_is_invalid(tmp_path):
    path = tmp_path / "u.json"
    path.write_text(json.dumps(telegram("business_message", business_connection_id="c1", **{"from": ...})), encoding="utf-8")
    assert refused(path) == f"Error: {path}:1: update 1: business_message without from (who wrote it)\n"


def test_telegram_business_message_sent_by_the_business_bot_without_from_is_the_employees(tmp_path):
    path = tmp_path / "u.json"
    update = telegram("business_message", business_connection_id="c1", sender_business_bot={"id": 9, "first_name": "Bot"},
                      **{"from": ...})
    path.write_text(json.dumps(update), encoding="utf-8")
    assert run("ingest", "--db", tmp_path / "db", path).code == 0
    with sqlite3.connect(tmp_path / "db") as conn:
        assert conn.execute("SELECT direction FROM messages").fetchall() == [("agent",)]


# ------------------------------------------------------------------ CSV


def test_csv_a_quote_left_open_to_the_end_of_the_file_is_refused_naming_the_line_it_began(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text('type,chat,from,at,text\nmessage,x:1,client,2026-11-24T10:00:00Z,"oops\n'
                    "message,x:2,client,2026-11-24T10:01:00Z,second\n", encoding="utf-8")
    assert refused(path) == (f"Error: {path}:2: a quoted cell that is never closed: the record that begins "
                             "on this line runs to the end of the file\n")


def test_csv_a_quoted_cell_may_span_lines_as_export_writes_it(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text('type,chat,from,at,text\nmessage,x:1,client,2026-11-24T10:00:00Z,"two\nlines, ""quoted"""\n'
                    "message,x:2,client,2026-11-24T10:01:00Z,second\n", encoding="utf-8")
    assert run("ingest", "--db", tmp_path / "db", path).code == 0
    with sqlite3.connect(tmp_path / "db") as conn:
        assert conn.execute("SELECT text FROM messages ORDER BY sent_at").fetchall() == [('two\nlines, "quoted"',), ("second",)]


def test_csv_text_after_a_closing_quote_is_refused_with_its_line(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text('chat,at,from,text\nx:1,2026-11-24T10:00:00Z,client,"a"b\n', encoding="utf-8")
    assert refused(path).startswith(f"Error: {path}:2: bad CSV: ")


def test_csv_a_record_over_16_mib_is_refused_naming_where_it_began(tmp_path):
    path = tmp_path / "a.csv"
    cells = ",".join(['"' + "y" * (1 << 20) + '\n"'] * 17)
    path.write_text("chat,at,from,text\n" + "x:1,2026-11-24T10:00:00Z,client,ok\n" + cells + "\n", encoding="utf-8")
    assert refused(path) == f"Error: {path}:3: a CSV record larger than 16 MiB (a quoted cell left open?)\n"


def test_csv_a_header_naming_a_column_twice_is_refused_naming_it(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("type,chat,chat,from,at,text\nmessage,x:1,x:2,client,2026-11-24T10:00:00Z,hola\n", encoding="utf-8")
    assert refused(path).startswith(f"Error: {path}:1: wrong CSV header (column chat named twice); columns are: ")


def test_live_nesting_of_exactly_64_levels_is_read_and_65_refused():
    from chatcrm.errors import InvalidInput
    from chatcrm.importers.live import _shallow

    def nested(depth):
        value = []
        for _ in range(depth - 1):
            value = [value]
        return value

    assert _shallow(nested(64), "p", 1, "payload") == nested(64)
    with pytest.raises(InvalidInput, match=r"^p:1: nested deeper than 64 levels"):
        _shallow(nested(65), "p", 1, "payload")


def test_live_an_unpaired_surrogate_is_refused_with_its_line_and_a_joined_bom_read_past(tmp_path):
    path = tmp_path / "u.jsonl"
    good = json.dumps(telegram()).encode()
    path.write_bytes(good + b"\n" + b'{"update_id": 2, "message": {"text": "\\ud800"}}\n')
    assert "u.jsonl:2: broken Telegram Bot API payload on this line (a string holds an unpaired UTF-16" in refused(path)
    path.write_bytes(b"\xef\xbb\xbf" + good + b"\n\xef\xbb\xbf" + json.dumps(telegram(message_id=2)).encode() + b"\n")
    assert run("ingest", "--db", tmp_path / "db", path).code == 0
    assert stored(tmp_path / "db") == 2


def test_whatsapp_a_contact_without_wa_id_names_nobody_and_refuses_nothing(tmp_path):
    """Meta's contacts may come without a wa_id (a user known by a username): the message,
    whose from is its sender, is still read; only a wa_id that is there must be digits."""
    path = tmp_path / "n.json"
    path.write_text(json.dumps(whatsapp({"contacts": [{"profile": {"name": "Sin número"}}], "messages": [WA_MESSAGE]})),
                    encoding="utf-8")
    assert run("ingest", "--db", tmp_path / "db", path).code == 0
    with sqlite3.connect(tmp_path / "db") as conn:
        assert conn.execute("SELECT chat_key, author FROM messages").fetchall() == [("wa:34600111222", "34600111222")]
