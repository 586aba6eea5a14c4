"""Meta "Download your information" (Messenger, Instagram): folders, ZIPs, 2016 to today."""

import json
import shutil
import zipfile

import pytest

from chatcrm import importers
from chatcrm.errors import InvalidInput
from chatcrm.events import Event
from chatcrm.importers import ImportOptions
from tests.helpers import FIXTURES, run, nothing_written

FACEBOOK = FIXTURES / "meta" / "facebook-tiendasol-2025"
INSTAGRAM = FIXTURES / "meta" / "instagram-tiendasol-2025"


def read(path, **options) -> list[Event]:
    options = ImportOptions(**options)
    out = []
    for _, fmt, events in importers.checked(importers.read_sources(str(path), None, options), options):
        assert fmt == "messenger"
        out.extend(events)
    assert all(isinstance(e, Event) for e in out), out
    return out


def zipped(folder, path):
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(folder).as_posix())
    return path


def test_a_facebook_folder_every_thread_a_chat_a_split_thread_one_chat():
    events = read(FACEBOOK, agents=("Tienda Sol",))
    by_chat = {}
    for e in events:
        by_chat.setdefault(e.chat, []).append(e)
    assert sorted(by_chat) == ["fb:inbox/anagarcia_10001", "fb:inbox/clientesvip_20002"]
    ana = sorted(by_chat["fb:inbox/anagarcia_10001"], key=lambda e: e.at)
    assert [(e.direction, e.author, e.text) for e in ana] == [
        ("client", "Ana García", "Hola, ¿sigue a la venta la lámpara?"),
        ("client", "Ana García", "[photo]"),
        ("client", "Ana García", "¿Me pasas el enlace?"),  # written twice by the export: kept once
        ("agent", "Tienda Sol", "¡Claro! Mira el enlace\nLámpara verde\nhttps://tiendasol.example/p/77"),
    ]
    assert {e.channel for e in events} == {"messenger"}
    assert [e.text for e in by_chat["fb:inbox/clientesvip_20002"]] == ["¿Hay descuento hoy?"]  # group notices left out


def test_instagram_is_told_apart_and_a_thread_without_title_or_path_is_keyed_by_its_folder():
    events = read(INSTAGRAM, agents=("tiendasol",))
    assert {e.channel for e in events} == {"instagram"}
    assert sorted({e.chat for e in events}) == ["fb:inbox/lucasm_30003", "fb:inbox/martina_40004"]
    assert "Reaccionó" not in " ".join(e.text for e in events)


def test_a_meta_zip_imports_in_one_transaction_and_again_adds_nothing(tmp_path):
    archive = zipped(FACEBOOK, tmp_path / "facebook-tiendasol-2025-11-24.zip")
    first = run("ingest", archive, "--agent", "Tienda Sol")
    assert first.code == 0 and "added 5 message(s)" in first.err, first.err
    again = run("ingest", archive, "--agent", "Tienda Sol")
    assert "added 0 message(s)" in again.err and "5 already present" in again.err
    folder = run("ingest", FACEBOOK, "--agent", "Tienda Sol")  # the same export unpacked
    assert "added 0 message(s)" in folder.err


def test_a_broken_thread_in_a_zip_refuses_the_whole_zip(tmp_path):
    copy = tmp_path / "export"
    shutil.copytree(FACEBOOK, copy)
    (copy / "your_facebook_activity/messages/inbox/clientesvip_20002/message_1.json").write_text('{"messages": [', encoding="utf-8")
    result = run("ingest", zipped(copy, tmp_path / "x.zip"), "--agent", "Tienda Sol")
    assert result.code == 5 and "clientesvip_20002/message_1.json" in result.err
    assert nothing_written()


def test_older_layout_messages_inbox_and_a_single_file_by_its_path(tmp_path):
    thread = tmp_path / "facebook-old" / "messages" / "inbox" / "anagarcia_10001"
    thread.mkdir(parents=True)
    data = json.loads((FACEBOOK / "your_facebook_activity/messages/inbox/anagarcia_10001/message_1.json").read_text())
    del data["thread_path"]
    (thread / "message_1.json").write_text(json.dumps(data), encoding="utf-8")
    assert {e.chat for e in read(tmp_path / "facebook-old", agents=("Tienda Sol",))} == {"fb:inbox/anagarcia_10001"}
    assert {e.chat for e in read(thread / "message_1.json", agents=("Tienda Sol",))} == {"fb:inbox/anagarcia_10001"}


def test_without_path_or_title_the_participants_name_the_thread_never_message_1(tmp_path):
    data = json.loads((INSTAGRAM / "your_instagram_activity/messages/inbox/lucasm_30003/message_1.json").read_text())
    one = tmp_path / "a" / "message_1.json"
    two = tmp_path / "b" / "message_1.json"
    for path, who in ((one, "lucas.m"), (two, "nora")):
        path.parent.mkdir()
        doc = json.loads(json.dumps(data).replace("lucas.m", who))
        path.write_text(json.dumps(doc), encoding="utf-8")
    keys = {e.chat for e in read(one, agents=("tiendasol",))} | {e.chat for e in read(two, agents=("tiendasol",))}
    assert keys == {"fb:lucas.m, tiendasol", "fb:nora, tiendasol"}


@pytest.mark.parametrize("content", [
    "Reacted 😂 to your message", "Liked a message", "Ana reacted ❤ to your message", "Reaccionó con 👍 a tu mensaje",
    "Ana started a call.", "The video call ended.", "Missed call", "Ana named the group Ofertas.",
    "Ana added Pablo to the group.", "Ana left the group.", "Ana turned on member approval.", "Ana joined the group.",
    "You are now connected on Messenger",
])
def test_notices_without_a_type_are_not_messages(content, tmp_path):
    doc = {"participants": [{"name": "Ana"}, {"name": "Tienda Sol"}], "title": "Ana", "thread_path": "inbox/ana_1",
           "messages": [{"sender_name": "Ana", "timestamp_ms": 1795510000000, "content": content},
                        {"sender_name": "Ana", "timestamp_ms": 1795510001000, "content": "Hola"}]}
    path = tmp_path / "message_1.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    assert [e.text for e in read(path)] == ["Hola"]


def test_a_message_that_mentions_a_call_stays(tmp_path):
    doc = {"participants": [{"name": "Ana"}, {"name": "Tienda Sol"}], "title": "Ana", "thread_path": "inbox/ana_1",
           "messages": [{"sender_name": "Ana", "timestamp_ms": 1795510000000, "content": "Can you call me later? I missed a call"}]}
    path = tmp_path / "message_1.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert len(read(path)) == 1


def test_an_oversized_or_deep_messenger_file_is_refused_with_its_place(tmp_path):
    deep = tmp_path / "message_1.json"
    deep.write_text('{"participants": [], "messages": [' + "[" * 100000 + "]" * 100000 + "]}", encoding="utf-8")
    with pytest.raises(InvalidInput, match="message_1.json:1: nested deeper"):
        read(deep, chat="fb:x")
