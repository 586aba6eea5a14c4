"""Real and hostile exports a review tried: nothing a client wrote is dropped, damaged or
oversized archives are refused cleanly, identity does not depend on who the employee is."""

import json
import zipfile

import pytest

from chatcrm import importers
from chatcrm.errors import InvalidInput
from chatcrm.importers import ImportOptions
from tests.helpers import read_export, nothing_written, run


read = read_export  # every event an export gives, checked as ingest checks them


def texts(events):
    return [e.text for e in events]


# ----------------------------------------------------------------- notices are whole fixed phrases

CLIENT_SENTENCES = [
    "Video call, please", "Voice call, when you can", "Llamada, cuando puedas", "Videollamada mañana, ¿vale?",
    "Appel vocal, svp", "Chamada de vídeo, pode ser?", "Videoanruf, geht das?", "Chiamata, quando puoi",
    "Marta is a contact.", "Pedro es un contacto de la tienda", "Hovor, prosím",
    "Your security code is 1234", "Messages and calls are end-to-end encrypted? Are they?",
]


@pytest.mark.parametrize("sentence", CLIENT_SENTENCES)
def test_without_the_mark_a_client_sentence_with_notice_words_is_a_message(sentence, tmp_path):
    path = tmp_path / "WhatsApp Chat with Ana.txt"
    path.write_text(f"18/03/2022, 14:56 - Ana: Hola\n18/03/2022, 14:57 - Tienda Sol: Dime\n"
                    f"18/03/2022, 14:58 - Ana: {sentence}\n", encoding="utf-8")
    assert texts(read(path)) == ["Hola", "Dime", sentence]


NOTICE_SENTENCES = [
    "Voice call, 19 sec", "Missed voice call", "Missed video call, Tap to call back", "Video call, 1:05",
    "Llamada de voz perdida", "Videollamada, 3 min", "Zmeškaný hovor", "Verpasster Sprachanruf",
    "Your security code with Ana changed. Tap to learn more.",
]


@pytest.mark.parametrize("sentence", NOTICE_SENTENCES)
def test_without_the_mark_only_whole_fixed_notice_sentences_are_left_out(sentence, tmp_path):
    path = tmp_path / "WhatsApp Chat with Ana.txt"
    path.write_text(f"18/03/2022, 14:56 - Ana: Hola\n18/03/2022, 14:57 - Tienda Sol: Dime\n"
                    f"18/03/2022, 14:58 - Ana: {sentence}\n", encoding="utf-8")
    assert texts(read(path)) == ["Hola", "Dime"]


def test_with_the_ios_mark_notices_and_calls_are_left_out(tmp_path):
    path = tmp_path / "WhatsApp Chat - Ana.txt"
    path.write_text("[18/03/2022, 14:56:01] Ana: Hola\n[18/03/2022, 14:57:00] Tienda Sol: Dime\n"
                    "[18/03/2022, 14:58:00] Ana: \u200eMarta is a contact.\n"
                    "[18/03/2022, 14:59:00] Ana: \u200eVideo call, \u200eNo answer\n", encoding="utf-8")
    assert texts(read(path)) == ["Hola", "Dime"]


def _messenger(tmp_path, rows):
    messages = [{"sender_name": s, "timestamp_ms": 1795514400000 + i * 60000, **c} for i, (s, c) in enumerate(rows)]
    path = tmp_path / "message_1.json"
    path.write_text(json.dumps({"participants": [{"name": "Ana"}, {"name": "Tienda Sol"}], "title": "Ana",
                                "messages": messages[::-1]}, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("sentence", [
    "I called you yesterday but nobody answered", "Hat mit der Lieferung leider nicht geklappt",
    "Reaccionó mal mi piel al producto", "Reacted badly to the cream, what now?", "Liked a message you sent? no",
    "My sister called the shop", "Ana started a call with the courier, no answer",
])
def test_messenger_notices_are_whole_fixed_phrases_so_client_sentences_stay(sentence, tmp_path):
    path = _messenger(tmp_path, [("Tienda Sol", {"content": "Hola"}), ("Ana", {"content": sentence})])
    assert texts(read(path)) == ["Hola", sentence]


def test_messenger_a_named_notice_counts_only_when_its_actor_is_the_sender(tmp_path):
    path = _messenger(tmp_path, [("Tienda Sol", {"content": "Hola"}), ("Ana", {"content": "Ana started a call."}),
                                 ("Ana", {"content": "Pedro started a call."}),
                                 ("Ana", {"content": "Hat mit 😂 auf deine Nachricht reagiert"})])
    assert texts(read(path)) == ["Hola", "Pedro started a call."]


# ----------------------------------------------------------------- unsent Messenger messages


def test_messenger_unsent_messages_are_not_client_messages(tmp_path):
    path = _messenger(tmp_path, [("Tienda Sol", {"content": "Hola"}), ("Ana", {"is_unsent": True}),
                                 ("Ana", {"content": "Ana unsent a message."}),
                                 ("Ana", {"content": "I unsent a message by mistake"})])
    assert texts(read(path)) == ["Hola", "I unsent a message by mistake"]


# ----------------------------------------------------------------- damaged and oversized archives

_CHAT = "".join(f"[18/03/2022, 14:{i % 60:02d}:01] Ana: Hola número {i} qwertyuiop\n" for i in range(3000)) + \
    "[18/03/2022, 15:00:01] Tienda Sol: x\n"


def _damaged_zip(path, method):
    with zipfile.ZipFile(path, "w", method) as archive:
        archive.writestr("_chat.txt", _CHAT)
    data = bytearray(path.read_bytes())
    if method == zipfile.ZIP_STORED:
        at = data.find(b"Hola n", len(data) // 2)
        data[at:at + 4] = b"HOLA"  # the CRC no longer matches
    elif method == zipfile.ZIP_DEFLATED:
        for k in range(60, len(data) // 2, 97):
            data[k] ^= 0xFF
    else:
        half = len(data) // 2
        data[half:half + 40] = b"\x00\xff" * 20
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_LZMA, zipfile.ZIP_BZIP2],
                         ids=["bad-crc", "zlib", "lzma", "bz2"])
def test_a_damaged_zip_member_is_refused_at_its_line_as_damaged(method, tmp_path):
    path = _damaged_zip(tmp_path / "chat.zip", method)
    result = run("ingest", path, "--agent", "Tienda Sol")
    assert result.code == 5, result.err
    assert result.err.count("\n") == 1 and "internal error" not in result.err
    assert f"{path}/_chat.txt:" in result.err and ": the archive is damaged (" in result.err
    assert nothing_written()


def test_a_damaged_member_of_a_telegram_or_meta_archive_is_refused_as_damaged(tmp_path):
    telegram = {"name": "Ana", "type": "personal_chat", "id": 1, "messages": [
        {"id": i, "type": "message", "date": "2022-03-18T14:56:01", "date_unixtime": str(1647615361 + i),
         "from": "Ana" if i % 2 else "Tienda Sol", "from_id": f"user{i % 2}", "text": f"Hola {i} " * 8}
        for i in range(2000)]}
    path = tmp_path / "tg.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ChatExport_2022-03-18/result.json", json.dumps(telegram))
    data = bytearray(path.read_bytes())
    for k in range(200, len(data) // 2, 53):
        data[k] ^= 0xFF
    path.write_bytes(bytes(data))
    result = run("ingest", path, "--agent", "Tienda Sol")
    assert result.code == 5 and "result.json:" in result.err and "the archive is damaged (" in result.err, result.err
    assert nothing_written()


def test_a_zip_that_expands_over_a_hundred_times_is_refused(tmp_path):
    line = b"[18/03/2022, 14:56:01] Ana: Hola, quiero informacion sobre el pedido\n"
    path = tmp_path / "WhatsApp Chat - Ana.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("_chat.txt", b"[18/03/2022, 14:56:00] Tienda Sol: hola\n" + line * 100000)
    assert path.stat().st_size < 30000
    result = run("ingest", path)
    assert result.code == 5 and "expands more than 100 times its compressed size" in result.err, result.err
    assert nothing_written()


def test_an_ordinary_zip_below_the_ratio_bound_imports(tmp_path):
    path = tmp_path / "WhatsApp Chat - Ana.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("_chat.txt", "[18/03/2022, 14:56:00] Tienda Sol: hola\n[18/03/2022, 14:57:00] Ana: ¿Hay stock?\n")
    assert run("ingest", path).code == 0


def test_a_zip_with_too_many_entries_is_refused_from_its_end_record_before_listing(tmp_path, monkeypatch):
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(40):
            archive.writestr(f"{i}.txt", "")
    from chatcrm.importers import sources

    monkeypatch.setattr(sources, "MAX_MEMBERS", 30)
    listed = []
    monkeypatch.setattr(zipfile.ZipFile, "_RealGetContents", lambda self: listed.append(1))
    with pytest.raises(InvalidInput, match="more than 30 entries"):
        list(sources.read_sources(str(path), None, ImportOptions()))
    assert listed == []  # refused before the entries were read


@pytest.mark.parametrize("value, traceback", [("", False), ("0", False), ("1", True), ("yes", True)])
def test_chatcrm_debug_shows_tracebacks_only_for_a_value_other_than_0(value, traceback, monkeypatch, tmp_path):
    from chatcrm import cli

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    path = tmp_path / "WhatsApp Chat with Ana.txt"
    path.write_text("18/03/2022, 14:56 - Ana: Hola\n18/03/2022, 14:57 - Tienda Sol: Dime\n", encoding="utf-8")
    monkeypatch.setenv("CHATCRM_DEBUG", value)
    monkeypatch.setattr(cli, "_clock", broken)
    if traceback:
        with pytest.raises(RuntimeError, match="boom"):
            cli.main(["ingest", str(path)])
    else:
        result = run("ingest", path)
        assert result.code == 1 and "internal error: RuntimeError: boom" in result.err


# ----------------------------------------------------------------- Messenger memory bound


def test_a_messenger_file_of_too_many_values_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    from chatcrm.importers import messenger

    path = tmp_path / "message_1.json"
    path.write_bytes(b'{"participants":[{"name":"a"},{"name":"b"}],"title":"a","messages":[' + b"{}," * 5000 + b"{}]}")
    monkeypatch.setattr(messenger, "MAX_JSON_VALUES", 4096)
    parsed = []
    loads = messenger.json.loads
    monkeypatch.setattr(messenger.json, "loads", lambda *a, **k: parsed.append(k) if "object_pairs_hook" in k
                        else loads(*a, **k))
    with pytest.raises(InvalidInput, match=r"message_1.json: more than 4,096 values"):
        read(path)
    assert parsed == []


def test_a_tiny_messenger_zip_that_expands_to_millions_of_rows_is_refused(tmp_path):
    rows = b"{}," * ((20 << 20) // 3)
    path = tmp_path / "fb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("messages/inbox/x_1/message_1.json",
                         b'{"participants":[{"name":"a"},{"name":"b"}],"title":"a","messages":[' + rows + b"{}]}")
    result = run("ingest", path)
    assert result.code == 5 and "fb.zip/messages/inbox/x_1/message_1.json:" in result.err, result.err
    assert nothing_written()


def test_meta_mojibake_is_repaired_as_the_file_is_parsed(tmp_path):
    path = _messenger(tmp_path, [("Tienda Sol", {"content": "Hola"}),
                                 ("Ana", {"content": "informaci\u00c3\u00b3n", "photos": [{"uri": "x"}]})])
    assert texts(read(path)) == ["Hola", "[photo] información"]


# ----------------------------------------------------------------- a WhatsApp key never depends on --agent


@pytest.mark.parametrize("notice", ["", "[18/03/2022, 14:55:00] Ana: \u200eMessages and calls are end-to-end encrypted.\n"],
                         ids=["no-notice", "ios-notice"])
def test_reimporting_a_chat_txt_with_another_agent_changes_directions_and_adds_nothing(notice, tmp_path):
    path = tmp_path / "_chat.txt"
    path.write_text(notice + "[18/03/2022, 14:56:01] Ana: Hola\n[18/03/2022, 14:57:12] Tienda Sol: Sí\n"
                    "[18/03/2022, 14:58:00] Ana: Genial\n", encoding="utf-8")
    assert run("ingest", path, "--agent", "Tienda Sol").code == 0
    again = run("ingest", path, "--agent", "Ana")
    assert again.code == 0 and "added 0 message(s)" in again.err and "3 message(s) changed direction" in again.err
    rows = run("list", "-f", "json").json()
    assert [r["deal_key"] for r in rows] == ["wa:Ana" if notice else "wa:Ana, Tienda Sol"]
    assert len(run("export").out.splitlines()) == 3


def test_the_whatsapp_key_of_a_generic_file_is_the_same_whoever_the_employee_is(tmp_path):
    from chatcrm.importers import whatsapp

    for authors in ({"Ana", "Tienda Sol"}, {"+34 600", "Luis"}):
        keys = {whatsapp.chat_key("_chat.txt", ImportOptions(agents=(a,)), authors) for a in authors}
        assert len(keys) == 1


# ----------------------------------------------------------------- stamps, line endings, encodings


def _chat(tmp_path, text: str, name="WhatsApp Chat with Ana.txt", mode="w"):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


@pytest.mark.parametrize("first, second, at", [
    ("2022/03/18 午前0:08", "2022/03/18 午前0:09", "2022-03-18T00:08:00Z"),
    ("18/03/2022, 00:08 a. m.", "18/03/2022, 00:09 a. m.", "2022-03-18T00:08:00Z"),
    ("18/03/2022, 0:08 p. m.", "18/03/2022, 0:09 p. m.", "2022-03-18T12:08:00Z"),
])
def test_a_twelve_hour_time_with_hour_0_is_12(first, second, at, tmp_path):
    path = _chat(tmp_path, f"{first} - Ana: こんにちは\n{second} - Tienda Sol: はい\n")
    events = read(path)
    assert [e.at for e in events][0] == at and texts(events) == ["こんにちは", "はい"]


def test_a_notice_after_an_hour_0_stamp_is_not_glued_into_the_message_before(tmp_path):
    path = _chat(tmp_path, "06/10/2020, 11:25 a. m. - Ana: Lorem ipsum\n"
                           "06/20/2020, 00:08 a. m. - +12 345 578 created group \"x\"\n"
                           "06/20/2020, 00:09 a. m. - Tienda Sol: hola\n")
    assert texts(read(path)) == ["Lorem ipsum", "hola"]


def test_lone_cr_line_endings_are_line_breaks(tmp_path):
    path = _chat(tmp_path, "[18/03/2022, 14:56:01] Ana: Hola\r[18/03/2022, 14:57:12] Tienda Sol: Si\r"
                           "[18/03/2022, 14:58:00] Ana: Genial\rotra línea\r", name="WhatsApp Chat - Ana.txt")
    events = read(path)
    assert texts(events) == ["Hola", "Si", "Genial\notra línea"] and [e.line for e in events] == [1, 2, 3]


def test_a_nul_byte_is_refused_at_its_own_line(tmp_path):
    path = _chat(tmp_path, b"[18/03/2022, 14:56:01] Ana: Hola\n[18/03/2022, 14:57:12] Tienda Sol: Si\n"
                           b"[18/03/2022, 14:58:00] Ana: a\0b\n", name="nul.txt")
    result = run("ingest", path)
    assert result.code == 5 and "nul.txt:3: binary data (a NUL byte)" in result.err, result.err


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_text_is_refused_as_utf16(encoding, tmp_path):
    path = _chat(tmp_path, "[18/03/2022, 14:56:01] Ana: Hola\n".encode(encoding), name="u16.txt")
    result = run("ingest", path)
    assert result.code == 5 and "u16.txt:1: UTF-16 text; save it as UTF-8" in result.err, result.err
    assert nothing_written()


def test_year_0000_is_refused_not_read_as_2000(tmp_path):
    from chatcrm.events import Invalid
    from chatcrm.importers import whatsapp

    path = _chat(tmp_path, "[18/03/0000, 14:56:01] Ana: Hola\n[18/03/2022, 14:57:12] Tienda Sol: Si\n",
                 name="WhatsApp Chat - Ana.txt")
    with path.open("rb") as stream:
        out = list(whatsapp.read(stream, str(path), ImportOptions()))
    assert isinstance(out[0], Invalid) and "year 0000" in out[0].reason
    assert [e.at for e in out[1:]] == ["2022-03-18T14:57:12Z"]
    short = _chat(tmp_path, "[18/03/00, 14:56:01] Ana: Hola\n[18/03/00, 14:57:12] Tienda Sol: Si\n", name="WhatsApp Chat - Ana.txt")
    assert read(short)[0].at == "2000-03-18T14:56:01Z"  # a two-digit 00 is 2000


# ----------------------------------------------------------------- Telegram and Messenger details


def test_telegram_formatted_text_keeps_each_entitys_text_exactly(tmp_path):
    from chatcrm.importers.telegram import flatten

    assert flatten([{"type": "bold", "text": "Importante: "}, "mi pedido"]) == "Importante: mi pedido"
    assert flatten([{"type": "italic", "text": "italic"}, "\n\n", {"type": "bold", "text": "multiline\nbold\n\ntext"}]) \
        == "italic\n\nmultiline\nbold\n\ntext"


def test_telegram_html_exports_are_refused_by_name(tmp_path):
    folder = tmp_path / "ChatExport_2024-01-01"
    folder.mkdir()
    (folder / "messages.html").write_text("<!DOCTYPE html>\n<html>\n<head><title>Exported Data</title></head></html>\n")
    for args in ([folder], [folder / "messages.html"], ["--format", "telegram", folder / "messages.html"]):
        result = run("ingest", *args)
        assert result.code == 5 and "a Telegram HTML export; export the chat as JSON instead" in result.err, result.err


def test_a_negative_messenger_timestamp_is_worded_as_outside_the_range_kept(tmp_path):
    path = _messenger(tmp_path, [("Tienda Sol", {"content": "Hola"})])
    doc = json.loads(path.read_text())
    doc["messages"].append({"sender_name": "Ana", "timestamp_ms": -5000000000000000, "content": "x"})
    path.write_text(json.dumps(doc))
    result = run("ingest", path)
    assert result.code == 5 and "timestamp_ms" in result.err and "outside the times chatcrm keeps" in result.err, result.err


def test_jsonl_detection_reads_a_first_line_nested_1000_deep(tmp_path):
    path = tmp_path / "deep.dat"
    path.write_text('{"chat":"x","at":"2026-11-24T10:00:00Z","type":"message","from":"client","text":"a","extra":'
                    + "[" * 999 + "]" * 999 + "}\n")
    head, stream = importers.open_source(str(path))
    stream.close()
    assert importers.detect(head, str(path)) == "jsonl"


def test_a_telegram_export_written_with_sorted_keys_reads_as_the_original(tmp_path):
    from tests.helpers import SHARED_EXPORTS

    original = SHARED_EXPORTS / "telegram" / "chat-analytics_personal_chat_DM_2A_7M.json"
    path = tmp_path / "sorted.json"
    path.write_text(json.dumps(json.loads(original.read_text(encoding="utf-8")), sort_keys=True), encoding="utf-8")

    def shown(events):
        return [(e.chat, e.at, e.direction, e.author, e.text, e.contact) for e in events]

    assert shown(read(path)) == shown(read(original)) and len(read(path)) == 6


# ----------------------------------------------------------------- --dates names the day/month order


def test_dates_option_names_the_day_month_order_where_the_file_cannot_tell(tmp_path):
    path = _chat(tmp_path, "[3/4/23, 10:00:00] Ana: Hola\n[3/4/23, 10:05:00] Tienda Sol: Buenas\n", name="WhatsApp Chat - Ana.txt")
    assert read(path)[0].at == "2023-04-03T10:00:00Z"  # a tie: day-first
    assert read(path, dates="mdy")[0].at == "2023-03-04T10:00:00Z"
    assert read(path, dates="dmy")[0].at == "2023-04-03T10:00:00Z"
    later = tmp_path / "later"
    later.mkdir()
    more = _chat(later, "[3/4/23, 10:00:00] Ana: Hola\n[3/4/23, 10:05:00] Tienda Sol: Buenas\n"
                        "[3/20/23, 09:00:00] Ana: ¿Y mi pedido?\n", name="WhatsApp Chat - Ana.txt")
    assert run("ingest", "--dates", "mdy", path).code == 0
    again = run("ingest", more)
    assert again.code == 0 and "added 1 message(s)" in again.err and "2 already present" in again.err


def test_dates_option_accepts_only_dmy_or_mdy(tmp_path):
    path = _chat(tmp_path, "[3/4/23, 10:00:00] Ana: Hola\n[3/4/23, 10:05:00] Tienda Sol: Buenas\n", name="WhatsApp Chat - Ana.txt")
    result = run("ingest", "--dates", "ymd", path)
    assert result.code == 2 and "--dates" in result.err and nothing_written()


def test_dates_option_leaves_a_year_first_date_alone(tmp_path):
    path = _chat(tmp_path, "2022/03/18 14:56 - Ana: Hola\n2022/03/18 14:57 - Tienda Sol: Buenas\n")
    assert read(path, dates="mdy")[0].at == "2022-03-18T14:56:00Z"
