"""Live channels: Telegram Bot API updates and WhatsApp Cloud API webhooks read by `ingest`
(README "Live channels")."""

import json
import sqlite3

import pytest

from chatcrm import importers
from chatcrm.events import DeliveryStatus, Event, Skipped
from chatcrm.importers import ImportOptions
from tests.helpers import FIXTURES, run

LIVE = FIXTURES / "live"


def read(path, **options):
    _, fmt, events = importers.read_source(str(path), None, ImportOptions(**options))
    return fmt, list(events)


def messages(db):
    """The stored messages; none where a refused import left no database (or an empty one)."""
    if not db.exists():
        return []
    conn = sqlite3.connect(db)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'messages'").fetchone():
            return []
        return conn.execute("SELECT chat_key, uid, direction, author, text, sent_at FROM messages ORDER BY chat_key, sent_at, uid").fetchall()
    finally:
        conn.close()


def update(update_id, kind="message", message_id=1, text="hola", date=1795943700, chat=5550001, sender=None, **extra):
    message = {"message_id": message_id, "from": sender or {"id": chat, "is_bot": False, "first_name": "Ana"},
               "chat": {"id": chat, "first_name": "Ana", "type": "private"}, "date": date, **extra}
    if text is not None:
        message["text"] = text
    return {"update_id": update_id, kind: message}


def write_updates(path, updates, style="lines"):
    if style == "response":
        path.write_text(json.dumps({"ok": True, "result": updates}), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps(u) + "\n" for u in updates), encoding="utf-8")
    return path


# ------------------------------------------------------------------ Telegram


def test_a_getupdates_response_gives_its_messages_keyed_like_a_telegram_export_and_skips_the_rest():
    fmt, events = read(LIVE / "telegram-getupdates.json")
    assert fmt == "telegram-bot"
    found = [e for e in events if isinstance(e, Event)]
    assert [(e.chat, e.id, e.direction, e.author, e.text, e.at) for e in found] == [
        ("tg:5550001", "bot:101", "client", "Ana Pérez", "Hola, ¿tienen la talla M?", "2026-11-29T09:15:00Z"),
        ("tg:5550001", "bot:102", "client", "Ana Pérez", "[photo] esta chaqueta", "2026-11-29T09:15:12Z"),
    ]
    assert found[0].contact == "Ana Pérez" and found[0].live.recipient == "5550001" and found[0].live.via is None
    assert [s.what for s in events if isinstance(s, Skipped)] == ["update 871500003: callback_query"]


def test_a_single_update_and_json_lines_of_updates_are_read_alike(tmp_path):
    one = tmp_path / "webhook.json"
    one.write_text(json.dumps(update(7, text="hola"), indent=2), encoding="utf-8")
    lines = write_updates(tmp_path / "updates.jsonl", [update(7, text="hola"), update(8, message_id=2, text="¿hay alguien?")])
    assert [e.text for e in read(one)[1]] == ["hola"]
    assert [e.text for e in read(lines)[1]] == ["hola", "¿hay alguien?"]
    assert read(lines)[0] == "telegram-bot"


@pytest.mark.parametrize("content, text", [
    ({"sticker": {"emoji": "👍", "file_id": "x"}}, "[sticker 👍]"),
    ({"voice": {"file_id": "x", "duration": 3}}, "[voice message]"),
    ({"document": {"file_id": "x", "file_name": "factura.pdf"}, "caption": "la factura"}, "[file factura.pdf] la factura"),
    ({"video_note": {"file_id": "x"}}, "[video message]"),
    ({"animation": {"file_id": "x"}, "document": {"file_id": "x"}}, "[GIF]"),
    ({"location": {"latitude": 40.4, "longitude": -3.7}}, "[location 40.4,-3.7]"),
    ({"venue": {"title": "Tienda Sol", "address": "Mayor 1"}, "location": {"latitude": 40.4, "longitude": -3.7}}, "[venue: Tienda Sol]"),
    ({"contact": {"first_name": "Eva", "phone_number": "+34600"}}, "[contact: Eva +34600]"),
    ({"poll": {"question": "¿Talla?", "options": []}}, "[poll: ¿Talla?]"),
    ({"dice": {"emoji": "🎲", "value": 4}}, "[dice 🎲 4]"),
])
def test_every_content_kind_with_meaning_gives_a_text(tmp_path, content, text):
    path = write_updates(tmp_path / "u.jsonl", [update(1, text=None, **content)])
    assert [e.text for e in read(path)[1]] == [text]


def test_service_messages_and_unused_updates_are_skipped_and_counted_not_refused(tmp_path):
    path = write_updates(tmp_path / "u.jsonl", [
        update(1, text=None, new_chat_members=[{"id": 9, "first_name": "Eva"}]),
        {"update_id": 2, "my_chat_member": {"chat": {"id": 1}}},
        {"update_id": 3, "channel_post": {"message_id": 1, "chat": {"id": -100}, "date": 1795943700, "text": "x"}},
        update(4, text="hola"),
    ])
    result = run("ingest", path)
    assert result.code == 0, result.err
    assert result.err.startswith("added 1 message(s) and 0 other event(s); 0 already present; 3 update(s) skipped")


def test_reading_the_same_updates_again_adds_nothing(tmp_path):
    first = run("ingest", LIVE / "telegram-getupdates.json", LIVE / "telegram-business.jsonl")
    assert first.code == 0, first.err
    before = messages(tmp_path / "chatcrm.db")
    again = run("ingest", LIVE / "telegram-business.jsonl", LIVE / "telegram-getupdates.json")
    assert again.err.startswith("added 0 message(s) and 0 other event(s); 6 already present;")
    assert "edited" not in again.err
    assert messages(tmp_path / "chatcrm.db") == before


def test_an_edit_changes_the_stored_text_and_is_not_a_second_message(tmp_path):
    assert run("ingest", LIVE / "telegram-getupdates.json").code == 0
    result = run("ingest", LIVE / "telegram-edit.json")
    assert result.err.startswith("added 0 message(s) and 0 other event(s); 1 already present; 1 message(s) edited;")
    texts = [row[4] for row in messages(tmp_path / "chatcrm.db")]
    assert texts == ["Hola, ¿tienen la talla M en azul?", "[photo] esta chaqueta"]


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0), (2, 0, 1)])
def test_the_latest_edit_wins_whatever_order_the_updates_arrive_in(tmp_path, order):
    original = update(1, message_id=5, text="v1")
    edit1 = update(2, "edited_message", message_id=5, text="v2", edit_date=1795943760)
    edit2 = update(3, "edited_message", message_id=5, text="v3", edit_date=1795943820)
    updates = [original, edit1, edit2]
    db = tmp_path / f"{''.join(map(str, order))}.db"
    for n in order:  # one ingest per update: each arrives on its own
        assert run("ingest", "--db", db, write_updates(tmp_path / f"u{n}.jsonl", [updates[n]])).code == 0
    assert [(row[1], row[4], row[5]) for row in messages(db)] == [("id:bot:5", "v3", "2026-11-29T09:15:00Z")]
    both = tmp_path / "both.db"  # and all in one file, newest first
    assert run("ingest", "--db", both, write_updates(tmp_path / "all.jsonl", [edit2, edit1, original])).code == 0
    assert [row[4] for row in messages(both)] == ["v3"]


def test_business_messages_the_owner_is_the_employee_and_the_connection_is_kept(tmp_path):
    assert run("ingest", LIVE / "telegram-business.jsonl").code == 0
    rows = messages(tmp_path / "chatcrm.db")
    assert [(r[1], r[2], r[3], r[4]) for r in rows] == [
        ("id:3001", "client", "Raúl Díaz", "¿Abren el sábado?"),
        ("id:3002", "agent", "Tienda Sol", "Sí, de 10 a 14 h."),  # its edit
        ("id:3003", "client", "Raúl Díaz", "[sticker 👍]"),
    ]
    conn = sqlite3.connect(tmp_path / "chatcrm.db")
    assert conn.execute("SELECT chat_key, channel, recipient, via FROM live_chats").fetchall() == [
        ("tg:7770002", "telegram", "7770002", "BQADBAADfxgAAlsVqVE")
    ]


def test_a_business_bot_writing_for_the_owner_is_the_employee(tmp_path):
    path = write_updates(tmp_path / "u.jsonl", [update(
        1, "business_message", text="Gracias por escribir", sender={"id": 5550001, "first_name": "Ana"},
        sender_business_bot={"id": 99, "is_bot": True, "first_name": "SolBot"}, business_connection_id="C1")])
    assert [e.direction for e in read(path)[1]] == ["agent"]


def test_a_telegram_desktop_export_and_live_updates_of_one_chat_meet_on_one_deal(tmp_path):
    assert run("ingest", FIXTURES / "telegram" / "personal_chat.json").code == 0
    assert run("ingest", LIVE / "telegram-getupdates.json").code == 0
    deals = run("list", "-f", "json").json()
    assert [(d["deal_key"], d["status"]) for d in deals] == [("tg:5550001", "unread")]
    keys = {row[0] for row in messages(tmp_path / "chatcrm.db")}
    assert keys == {"tg:5550001"}


# ------------------------------------------------------------------ WhatsApp


def test_a_whatsapp_notification_gives_every_message_type_keyed_by_the_clients_wa_id():
    fmt, events = read(LIVE / "whatsapp-message.json")
    assert fmt == "whatsapp-cloud"
    assert [(e.chat, e.direction, e.author, e.text, e.at) for e in events] == [
        ("wa:34600111222", "client", "Marta Gómez", "Buenas, ¿me confirmáis el pedido 1042?", "2026-11-29T11:20:00Z"),
        ("wa:34600111222", "client", "Marta Gómez", "[image] el ticket", "2026-11-29T11:20:30Z"),
        ("wa:34600111222", "client", "Marta Gómez", "[location: Tienda Sol, Calle Mayor 1, Madrid]", "2026-11-29T11:21:00Z"),
    ]
    assert events[0].id.startswith("wamid.") and events[0].live.via == "106540352242922"


@pytest.mark.parametrize("message, text", [
    ({"type": "document", "document": {"filename": "ticket.pdf", "caption": "aquí"}}, "[file ticket.pdf] aquí"),
    ({"type": "audio", "audio": {"id": "1", "voice": True}}, "[audio]"),
    ({"type": "sticker", "sticker": {"id": "1", "animated": False}}, "[sticker]"),
    ({"type": "contacts", "contacts": [{"name": {"formatted_name": "Eva Ruiz"}}]}, "[contact: Eva Ruiz]"),
    ({"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": "b1", "title": "Sí"}}}, "Sí"),
    ({"type": "button", "button": {"text": "Confirmar", "payload": "ok"}}, "Confirmar"),
    ({"type": "reaction", "reaction": {"message_id": "wamid.x", "emoji": "👍"}}, "[reaction 👍]"),
    ({"type": "unsupported", "errors": [{"code": 131051}]}, "[unsupported message]"),
])
def test_every_whatsapp_message_type_gives_a_text(tmp_path, message, text):
    path = tmp_path / "n.json"
    path.write_text(json.dumps(notification(messages=[{"from": "34600111222", "id": "wamid.1", "timestamp": "1795951200", **message}])))
    assert [e.text for e in read(path)[1]] == [text]


def notification(**value):
    return {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "Marta Gómez"}, "wa_id": "34600111222"}], **value}}]}]}


def test_whatsapp_statuses_become_delivery_statuses_and_other_changes_are_skipped(tmp_path):
    _, events = read(LIVE / "whatsapp-statuses.json")
    assert [(s.status, s.at) for s in events if isinstance(s, DeliveryStatus)] == [
        ("delivered", "2026-11-29T11:31:00Z"), ("read", "2026-11-29T11:32:00Z")]
    path = tmp_path / "n.json"
    path.write_text(json.dumps({"object": "whatsapp_business_account", "entry": [{"changes": [
        {"field": "account_update", "value": {}}]}]}))
    assert run("ingest", path).err.startswith("added 0 message(s) and 0 other event(s); 0 already present; 1 update(s) skipped")


def test_a_whatsapp_export_named_with_the_clients_key_meets_the_live_chat_on_one_deal(tmp_path):
    assert run("ingest", LIVE / "whatsapp-message.json").code == 0
    export = FIXTURES / "whatsapp" / "WhatsApp Chat with Marta Gómez.txt"
    result = run("ingest", "--chat", "wa:34600111222", export)
    assert result.code == 0, result.err
    deals = run("list", "-f", "json").json()
    assert [d["deal_key"] for d in deals] == ["wa:34600111222"]


def test_reading_a_whatsapp_notification_again_adds_nothing(tmp_path):
    assert run("ingest", LIVE / "whatsapp-message.json", LIVE / "whatsapp-statuses.json").code == 0
    again = run("ingest", LIVE / "whatsapp-message.json", LIVE / "whatsapp-statuses.json")
    assert again.err.startswith("added 0 message(s) and 0 other event(s); 5 already present; 0 invalid")


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("name, content, where", [
    ("cut.json", (LIVE / "telegram-getupdates.json").read_text()[:700], "cut.json:20: broken Telegram Bot API payload"),
    ("cut.jsonl", (LIVE / "telegram-business.jsonl").read_text()[:900], "cut.jsonl:3: broken Telegram Bot API payload"),
    ("cut-wa.json", (LIVE / "whatsapp-message.json").read_text()[:600], "cut-wa.json:17: broken WhatsApp webhook notification"),
    ("failed.json", '{"ok": false, "error_code": 401, "description": "Unauthorized"}',
     "failed.json:1: a failed Telegram getUpdates response (Unauthorized)"),
    ("no-entry.json", '{"object": "whatsapp_business_account", "entry": 3}', "no-entry.json:1: a WhatsApp notification without"),
])
def test_a_malformed_or_truncated_payload_is_refused_with_its_place_and_nothing_is_written(tmp_path, name, content, where):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    good = LIVE / "whatsapp-message.json"
    result = run("ingest", good, path)
    assert result.code == 5
    assert result.err.startswith(f"Error: {path.parent}/{where}"), result.err
    assert len(result.err.splitlines()) == 1 and "Traceback" not in result.err
    assert messages(tmp_path / "chatcrm.db") == []


def test_an_update_missing_its_chat_is_invalid_and_can_be_skipped(tmp_path):
    bad = {"update_id": 9, "message": {"message_id": 1, "date": 1795943700, "text": "x"}}
    path = write_updates(tmp_path / "u.jsonl", [update(1), bad])
    refused = run("ingest", path)
    assert refused.code == 5 and refused.err == f"Error: {path}:2: update 9: message without chat.id\n"
    assert run("ingest", "--skip-invalid", path).code == 0
    assert len(messages(tmp_path / "chatcrm.db")) == 1


def test_client_text_reaches_the_terminal_escaped(tmp_path):
    path = write_updates(tmp_path / "u.jsonl", [update(1, text="hola\x1b[2Jmundo")])
    assert run("ingest", path).code == 0
    shown = run("list").out
    assert "\x1b" not in shown and "\\x1b[2J" in shown


@pytest.mark.parametrize("content, fmt", [
    ('{"update_id": 1, "message": {}}\n', "telegram-bot"),
    ('{\n  "ok": true,\n  "result": []\n}\n', "telegram-bot"),
    ('{"ok": false, "error_code": 401, "description": "Unauthorized"}', "telegram-bot"),
    ('{\n  "entry": [],\n  "object": "whatsapp_business_account"\n}\n', "whatsapp-cloud"),
    ('{"type": "message", "chat": "tg:1", "from": "client", "text": "\\"update_id\\": 5", "at": "2026-11-24T09:00:00Z"}\n', "jsonl"),
    ('{"type": "message", "chat": "wa:1", "from": "client", "text": "\\"object\\": \\"whatsapp_business_account\\"", "at": "2026-11-24T09:00:00Z"}\n', "jsonl"),
])
def test_live_payloads_are_told_from_their_content_and_events_quoting_their_names_are_not(content, fmt):
    assert importers.detect(content.encode(), "-") == fmt


@pytest.mark.parametrize("together", [False, True])
def test_search_finds_a_message_by_its_edited_text_only(tmp_path, together):
    """The search index follows an edit, in an import of its own or in the same one as
    the original (where a large import indexes its messages at its end)."""
    original = update(1, message_id=5, text="chaqueta roja")
    edit = update(2, "edited_message", message_id=5, text="chaqueta verde", edit_date=1795943760)
    others = [update(n, message_id=n, text=f"otra {n}") for n in range(10, 16)]  # past the bulk threshold
    if together:
        assert run("ingest", write_updates(tmp_path / "all.jsonl", [original, *others, edit])).code == 0
    else:
        assert run("ingest", write_updates(tmp_path / "a.jsonl", [original, *others])).code == 0
        assert run("ingest", write_updates(tmp_path / "b.jsonl", [edit])).code == 0
    assert run("search", "verde", "-f", "json").json()[0]["text"] == "chaqueta verde"
    assert run("search", "roja", "-f", "json").json() == []
    assert run("check").code == 0


def test_the_event_format_carries_an_edit_and_a_live_chat(tmp_path):
    path = tmp_path / "live.jsonl"
    path.write_text(
        '{"id": "bot:1", "chat": "tg:1", "channel": "telegram", "recipient": "1", "via": "bc-1", "from": "client", '
        '"text": "hola", "at": "2026-11-24T10:00:00Z"}\n'
        '{"id": "bot:1", "chat": "tg:1", "from": "client", "text": "hola editado", "at": "2026-11-24T10:00:00Z", '
        '"edited_at": "2026-11-24T10:01:00Z"}\n', encoding="utf-8")
    fmt, (first, edit) = read(path)
    assert fmt == "jsonl"
    assert (first.live.channel, first.live.recipient, first.live.via, first.edited_at) == ("telegram", "1", "bc-1", None)
    assert (edit.text, edit.edited_at, edit.live) == ("hola editado", "2026-11-24T10:01:00Z", None)


@pytest.mark.parametrize("record, reason", [
    ('{"chat": "tg:1", "from": "client", "at": "2026-11-24T10:00:00Z", "edited_at": "2026-11-24T10:01:00Z"}',
     "an edit ('edited_at') names the message it edits by its 'id'"),
    ('{"id": "1", "chat": "tg:1", "from": "client", "at": "2026-11-24T10:00:00Z", "edited_at": "later"}', "'edited_at':"),
    ('{"chat": "web:1", "channel": "webchat", "recipient": "9", "from": "client", "at": "2026-11-24T10:00:00Z"}',
     "'recipient' goes with a live channel (telegram, whatsapp) as 'channel'"),
    ('{"chat": "tg:1", "via": "x", "from": "client", "at": "2026-11-24T10:00:00Z"}', "'via' goes with a 'recipient'"),
])
def test_an_edit_or_live_chat_in_the_event_format_is_checked(tmp_path, record, reason):
    path = tmp_path / "bad.jsonl"
    path.write_text(record + "\n", encoding="utf-8")
    _, (event,) = read(path)
    assert reason in str(event)


def _edit(tmp_path, name, edit_date, text):
    update = json.loads((LIVE / "telegram-edit.json").read_text(encoding="utf-8"))
    update["edited_message"].update(edit_date=edit_date, text=text)
    path = tmp_path / name
    path.write_text(json.dumps(update), encoding="utf-8")
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_export_of_live_chats_imports_back_whole_edits_and_where_replies_go(tmp_path, monkeypatch, fmt):
    monkeypatch.setenv("CHATCRM_NOW", "2026-11-29T12:00:00Z")
    original, restored = tmp_path / "original.db", tmp_path / "restored.db"
    assert run("ingest", "--db", original, *sorted(LIVE.glob("*.json*"))).code == 0
    assert run("ingest", "--db", original, _edit(tmp_path, "e3.json", 1795943900, "edit three")).code == 0
    dump = run("export", "--db", original, "-f", fmt)
    (tmp_path / f"dump.{fmt}").write_text(dump.out, encoding="utf-8")
    assert run("ingest", "--db", restored, tmp_path / f"dump.{fmt}").code == 0
    assert run("export", "--db", restored, "-f", fmt).out == dump.out
    # An older edit arriving later changes neither: the latest edit gives the text.
    older = _edit(tmp_path, "e1.json", 1795943800, "edit one")
    for db in (original, restored):
        assert run("ingest", "--db", db, older).code == 0
    assert run("export", "--db", restored).out == run("export", "--db", original).out
    assert "edit three" in run("timeline", "tg:5550001", "--db", restored).out
    # The restored live chats still queue their replies.
    for db in (original, restored):
        assert run("reply", "tg:5550001", "Sí, en azul", "--db", db).code == 0
    queued = [run("outbox", "-f", "json", "--db", db).json() for db in (original, restored)]
    assert [(e["channel"], e["client_id"]) for e in queued[1]] == [(e["channel"], e["client_id"]) for e in queued[0]]
    assert queued[1] and queued[1][0]["client_id"] == "5550001"


def test_one_deals_export_carries_its_own_edits_and_live_chat_only(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATCRM_NOW", "2026-11-29T12:00:00Z")
    db = tmp_path / "live.db"
    assert run("ingest", "--db", db, *sorted(LIVE.glob("*.json*"))).code == 0
    records = [json.loads(line) for line in run("export", "--db", db, "--deal", "tg:5550001").out.splitlines()]
    assert {r["chat"] for r in records} == {"tg:5550001"}
    assert [r.get("recipient") for r in records if "recipient" in r] == ["5550001"]
    assert [r["text"] for r in records if "edited_at" in r] == ["Hola, ¿tienen la talla M en azul?"]
    # the message itself with its own text, before the edit
    assert [r["text"] for r in records if r.get("id") == "bot:101" and "edited_at" not in r] == \
        ["Hola, ¿tienen la talla M?"]
