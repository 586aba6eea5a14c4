"""Telegram Desktop exports: the ChatExport folder, every message kind, channels."""

import zipfile

from tests.helpers import read_export, FIXTURES, run

EXPORT = FIXTURES / "telegram" / "ChatExport_2026-11-24"


read = read_export  # every event an export gives, checked as ingest checks them


def test_every_message_kind_says_what_it_was():
    events = read(EXPORT)
    assert [(e.direction, e.text) for e in events] == [
        ("client", "Hola, ¿dónde está la tienda?"),
        ("agent", "[venue: Tienda Sol, Calle Mayor 5, Madrid]"),
        ("client", "[contact: Rosa Martín, +34 600 000 111]"),
        ("agent", "[poll: ¿Qué color? — Rojo / Azul]"),
        ("client", "[to-do list: Recoger — Factura / Paquete]"),
        ("client", "[game: Lucky Wheel — Spin to win]"),
        ("agent", "[invoice: Lámpara verde — Pedido 5501 — 4900 EUR]"),
        ("agent", "[giveaway: 3 prize(s), 6 month(s), until 2026-12-01T00:00:00]"),
        ("client", "[dice 🎲 5]"),
        ("client", "[location: 40.42, -3.7]"),
        ("client", "[forwarded from Ofertas Madrid] 2x1 en lámparas"),
    ]  # the phone call (a service message) is not a message
    assert {e.chat for e in events} == {"tg:7770001"}


def test_the_chatexport_folder_and_its_zip_are_read_as_the_file():
    assert len(read(EXPORT)) == len(read(EXPORT / "result.json")) == 11


def test_a_zipped_chatexport_folder(tmp_path):
    path = tmp_path / "ChatExport_2026-11-24.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.write(EXPORT / "result.json", "ChatExport_2026-11-24/result.json")
        archive.writestr("ChatExport_2026-11-24/photos/photo_1.jpg", b"\xff\xd8")
    assert len(read(path)) == 11


def test_a_channel_shows_its_name_and_channel_on_the_deal():
    path = FIXTURES / "telegram" / "public_channel.json"
    assert run("ingest", path, "--agent", "Tienda Sol Ofertas").code == 0
    [row] = run("list", "-f", "json").json()
    assert (row["deal_key"], row["title"], row["contact"], row["channel"]) == (
        "tg:8880001", "Tienda Sol Ofertas (telegram channel)", "Tienda Sol Ofertas", "telegram")


def test_a_deep_telegram_file_is_refused_quickly_in_bounded_memory(tmp_path):
    import tracemalloc

    path = tmp_path / "result.json"
    path.write_text('{"name": "x", "type": "personal_chat", "id": 1, "messages": [{"text": ' + "[" * 100000 + "]" * 100000 + "}]}")
    tracemalloc.start()
    result = run("ingest", path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result.code == 5 and "nested deeper than 64 levels" in result.err and result.err.count("\n") == 1
    assert peak < 20 << 20
