"""Real and hostile exports a review tried: nothing a client wrote is dropped, damaged or
oversized archives are refused cleanly, identity does not depend on who the employee is."""

import json
import zipfile

import pytest

from chatcrm import importers
from chatcrm.errors import InvalidInput
from chatcrm.events import Event
from chatcrm.importers import ImportOptions
from tests.helpers import nothing_written, run


def read(path, **options) -> list[Event]:
    options = ImportOptions(**options)
    out = []
    for _, _, events in importers.checked(importers.read_sources(str(path), None, options), options):
        out.extend(events)
    assert all(isinstance(e, Event) for e in out), out
    return out


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
