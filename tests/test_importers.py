"""Chat exports people really have: Telegram, WhatsApp, Messenger/Instagram."""

import io
import json
import shutil

import pytest

from chatcrm import importers
from chatcrm.errors import InvalidInput
from chatcrm.events import Event
from chatcrm.importers import ImportOptions
from chatcrm.times import zone
from tests.helpers import FIXTURES, SHARED_EXPORTS, run


def read(path, fmt=None, **options) -> list[Event]:
    name, detected, events = importers.read_source(str(path), fmt, ImportOptions(**options))
    out = list(events)
    assert all(isinstance(e, Event) for e in out), out
    return out


def summary(events):
    return [(e.at, e.direction, e.author, e.text) for e in events]


# ----------------------------------------------------------------- detection


@pytest.mark.parametrize(
    "path, fmt",
    [
        ("support-day.jsonl", "jsonl"),
        ("telegram/personal_chat.json", "telegram"),
        ("telegram/full_export.json", "telegram"),
        ("whatsapp/WhatsApp Chat with Marta Gómez.txt", "whatsapp"),
        ("whatsapp/ios_mdy_lrm_crlf.txt", "whatsapp"),
        ("whatsapp/android_12h_ampm.txt", "whatsapp"),
        ("messenger/message_1.json", "messenger"),
    ],
)
def test_formats_are_detected_from_the_content(path, fmt):
    head, stream = importers.open_source(str(FIXTURES / path))
    stream.close()
    assert importers.detect(head, "renamed.dat") == fmt


# ----------------------------------------------------------------- Telegram


def test_telegram_personal_chat_the_partner_is_the_client_and_media_is_named():
    events = read(FIXTURES / "telegram/personal_chat.json")
    assert summary(events) == [
        ("2026-11-24T09:15:00Z", "client", "Ana Pérez", "¿Tienen la chaqueta azul en talla M? https://shop.example/p/881"),
        ("2026-11-24T09:20:00Z", "agent", "Tienda Sol", "¡Hola Ana! Sí, nos quedan dos."),
        ("2026-11-24T09:21:30Z", "client", "Ana Pérez", "[photo]"),
        ("2026-11-24T10:22:00Z", "client", "Ana Pérez", "[voice message]"),  # only `date`: read in --tz (UTC)
        ("2026-11-24T09:31:00Z", "client", "Ana Pérez", "[sticker 👍]"),
    ]
    assert {e.chat for e in events} == {"tg:5550001"}
    assert {e.contact for e in events} == {"Ana Pérez"}
    assert [e.id for e in events] == ["11", "12", "13", "14", "16"]


def test_telegram_date_without_unixtime_is_read_in_tz():
    events = read(FIXTURES / "telegram/personal_chat.json", tz=zone("Europe/Madrid"))
    assert events[3].at == "2026-11-24T09:22:00Z"


def test_telegram_full_export_its_owner_is_the_employee():
    events = read(FIXTURES / "telegram/full_export.json")
    assert summary(events) == [
        ("2026-11-24T08:00:00Z", "client", "Jorge Ruiz", "Buenos días"),
        ("2026-11-24T08:05:00Z", "agent", "Tienda Sol", "Buenos días, Jorge"),
        ("2026-11-24T07:10:00Z", "client", "Lucía Fernández", "¿Cuándo llegan las rebajas?"),
    ]
    assert [e.chat for e in events] == ["tg:5550002", "tg:5550002", "tg:9990001"]


def test_telegram_group_without_an_owner_names_the_authors_rather_than_guess(tmp_path):
    data = json.loads((FIXTURES / "telegram/full_export.json").read_text(encoding="utf-8"))
    group = data["chats"]["list"][1]
    path = tmp_path / "result.json"
    path.write_text(json.dumps(group, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(InvalidInput, match="authors found: Lucía Fernández; name the employees with --agent"):
        read(path)
    assert read(path, agents=("Tienda Sol",))[0].direction == "client"


def test_a_truncated_telegram_export_is_refused_with_its_place_and_nothing_is_written(tmp_path):
    whole = (FIXTURES / "telegram/personal_chat.json").read_bytes()
    cut = tmp_path / "result.json"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    lines = cut.read_bytes().count(b"\n") + 1
    result = run("ingest", cut)
    assert result.code == 5
    assert result.err.startswith(f"Error: {cut}:{lines}: broken Telegram export")
    assert result.err.count("\n") == 1
    assert "no chatcrm database" in run("list", "-f", "json").err  # not even an empty database is left


@pytest.mark.slow
def test_telegram_streams_a_large_export_one_message_at_a_time(tmp_path):
    """A generated export of 20,000 messages is read without building the document."""
    messages = ",".join(
        json.dumps({"id": i, "type": "message", "date_unixtime": str(1763971200 + i), "from": "Ana" if i % 2 else "Shop",
                    "from_id": "user1" if i % 2 else "user2", "text": f"m{i}"})
        for i in range(20000)
    )
    path = tmp_path / "big.json"
    path.write_text('{"name": "Ana", "type": "personal_chat", "id": 1, "messages": [' + messages + "]}")
    import tracemalloc

    tracemalloc.start()
    _, _, events = importers.read_source(str(path), None, ImportOptions())
    count = sum(1 for _ in events)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == 20000
    assert peak < path.stat().st_size  # far less than the file: nothing held whole


# ----------------------------------------------------------------- WhatsApp


def test_whatsapp_android_named_chat_notices_multiline_media_and_twins():
    events = read(FIXTURES / "whatsapp/WhatsApp Chat with Marta Gómez.txt")
    assert summary(events) == [
        ("2026-11-24T10:02:00Z", "client", "Marta Gómez", "Hola, hice un pedido el viernes\ny aún no ha llegado"),
        ("2026-11-24T10:03:00Z", "client", "Marta Gómez", "<Media omitted>"),
        ("2026-11-24T10:03:00Z", "client", "Marta Gómez", "ok"),
        ("2026-11-24T10:03:00Z", "client", "Marta Gómez", "ok"),
        ("2026-11-24T10:10:00Z", "agent", "Tienda Sol", "Hola Marta: lo miro ahora mismo"),
        ("2026-11-24T13:45:00Z", "client", "Marta Gómez", "IMG-20261124-WA0001.jpg (file attached)\n¿Es este el paquete?"),
    ]
    assert {e.chat for e in events} == {"wa:Marta Gómez"}


def test_whatsapp_identical_messages_in_one_minute_are_both_kept_and_reimport_adds_nothing():
    path = FIXTURES / "whatsapp/WhatsApp Chat with Marta Gómez.txt"
    first = run("ingest", path)
    assert "added 6 message(s)" in first.err
    again = run("ingest", path)
    assert "added 0 message(s)" in again.err and "6 already present" in again.err
    texts = [e["text"] for e in run("timeline", "wa:Marta Gómez", "-f", "json").json() if e["kind"] == "message"]
    assert texts.count("ok") == 2


def test_whatsapp_ios_bom_lrm_crlf_month_first_and_no_final_newline():
    events = read(FIXTURES / "whatsapp/ios_mdy_lrm_crlf.txt", agents=("Elena",), chat="wa:34611222333")
    assert summary(events) == [
        ("2026-11-24T09:58:30Z", "client", "Pedro Sánchez", "Buenas, ¿abrís el sábado?"),
        ("2026-11-24T09:59:02Z", "client", "Pedro Sánchez", "<attached: 00000012-PHOTO-2026-11-24-09-59-02.jpg>"),
        ("2026-11-24T10:15:44Z", "agent", "Elena", "Sí, de 10:00 a 14:00."),
        ("2026-11-24T10:16:10Z", "client", "Pedro Sánchez", "Perfecto, gracias"),
    ]
    assert {e.chat for e in events} == {"wa:34611222333"}


def test_whatsapp_12_hour_times_with_nbsp_and_day_first_inferred():
    events = read(FIXTURES / "whatsapp/android_12h_ampm.txt", agents=("luis",), tz=zone("Europe/Madrid"))
    assert summary(events) == [
        ("2026-12-05T22:58:00Z", "client", "Sofía Martín", "¿Seguís abiertos?"),
        ("2026-12-05T23:03:00Z", "agent", "Luis", "Ya cerramos, te escribo mañana a primera hora"),
        ("2026-12-06T11:15:00Z", "agent", "Luis", "Buenos días Sofía"),
        ("2026-12-13T08:05:00Z", "client", "Sofía Martín", "Gracias"),
    ]


def test_whatsapp_without_an_employee_lists_the_authors():
    result = run("ingest", FIXTURES / "whatsapp/ios_mdy_lrm_crlf.txt")
    assert result.code == 5
    assert "authors found: Elena, Pedro Sánchez" in result.err and "--agent" in result.err


def test_whatsapp_from_stdin_a_one_to_one_chat_is_its_client_and_a_group_needs_a_chat_key():
    data = (FIXTURES / "whatsapp/ios_mdy_lrm_crlf.txt").read_bytes()
    assert run("ingest", "-", "--agent", "Elena", input=data).code == 0
    assert [r["deal_key"] for r in run("list", "-f", "json").json()] == ["wa:Pedro Sánchez"]
    group = data + "\r\n[11/24/26, 10:17:00] Lola: y yo\r\n".encode()
    refused = run("ingest", "-", "--agent", "Elena", input=group)
    assert refused.code == 5 and "--chat KEY" in refused.err
    assert run("ingest", "-", "--agent", "Elena", "--chat", "wa:1", input=group).code == 0


def test_whatsapp_an_impossible_date_is_invalid(tmp_path):
    path = tmp_path / "chat.txt"
    path.write_text("30/02/2026, 10:00 - Ana: hola\n13/01/2026, 10:00 - Luis: hola\n", encoding="utf-8")
    result = run("ingest", path, "--agent", "Luis")
    assert result.code == 5 and result.err.startswith(f"Error: {path}:1: impossible date")


# ----------------------------------------------------------------- Messenger


def test_messenger_bom_mojibake_newest_first_and_the_title_is_the_client():
    events = read(FIXTURES / "messenger/message_1.json")
    assert summary(events) == [
        ("2025-11-24T10:26:40Z", "client", "Raúl Díaz", "¿Mi pedido 48001 ya salió?"),
        ("2025-11-24T10:30:00Z", "client", "Raúl Díaz", "[photo]"),
        ("2025-11-24T10:35:00Z", "agent", "Tienda Sol", "¡Ya ha salido! 🚚"),
    ]
    assert {e.chat for e in events} == {"fb:inbox/rauldiaz_1234567890"}
    assert {e.contact for e in events} == {"Raúl Díaz"}


# ----------------------------------------------------------------- through the CLI


def test_dry_run_reports_what_an_export_would_add():
    result = run("ingest", "--dry-run", FIXTURES / "telegram/personal_chat.json")
    assert result.code == 0 and result.err.startswith("would add 5 message(s)")
    assert run("list", "-f", "json").code == 1  # no database was created


def test_a_later_export_that_overlaps_adds_only_what_is_new(tmp_path):
    data = json.loads((FIXTURES / "telegram/personal_chat.json").read_text(encoding="utf-8"))
    early = dict(data, messages=data["messages"][:3])
    (tmp_path / "early.json").write_text(json.dumps(early, ensure_ascii=False), encoding="utf-8")
    assert "added 2 message(s)" in run("ingest", tmp_path / "early.json").err
    later = run("ingest", FIXTURES / "telegram/personal_chat.json")
    assert "added 3 message(s)" in later.err and "2 already present" in later.err


def test_all_exports_of_one_team_land_on_their_deals():
    paths = [FIXTURES / "telegram/personal_chat.json", FIXTURES / "telegram/full_export.json",
             FIXTURES / "whatsapp/WhatsApp Chat with Marta Gómez.txt", FIXTURES / "messenger/message_1.json"]
    result = run("ingest", *paths)
    assert result.code == 0, result.err
    rows = run("list", "-f", "json").json()
    assert {r["deal_key"]: r["status"] for r in rows} == {
        "tg:5550001": "unread",
        "tg:5550002": "green",
        "tg:9990001": "unread",
        "wa:Marta Gómez": "unread",
        "fb:inbox/rauldiaz_1234567890": "green",
    }
    assert {r["channel"] for r in rows} == {"telegram", "whatsapp", "messenger"}


# ----------------------------------------------------------------- the real samples

# (file, --agent names, messages, first message (at, direction, author))
SAMPLES = [
    ("telegram/chat-analytics_full_export_MultiChat_2C_6M.json", (), 5, ("2023-01-01T12:00:00Z", "client", "Alice")),
    ("telegram/chat-analytics_personal_chat_DM_2A_7M.json", (), 6, ("2019-07-12T16:55:32Z", "client", "Bob")),
    ("telegram/chat-miner_full_export_minimal.json", ("Author 2",), 2, ("2018-12-05T10:39:10Z", "client", "Author 1")),
    ("telegram/ragtgbot_private_group_result.json", ("verymuchuser",), 4, ("2025-03-29T14:11:08Z", "agent", "verymuchuser")),
    ("telegram/tg2md_private_channel_legacy.json", ("test",), 18, ("2020-11-12T12:54:07Z", "agent", "test")),
    ("whatsapp/android_cs_ddmmyy_dots_nocomma.txt", ("Dmitry S",), 57, ("2022-03-18T14:56:00Z", "agent", "Dmitry S")),
    ("whatsapp/android_en_ddmmyyyy_24h_media_multiline.txt", ("Dmitry S",), 57, ("2022-03-18T14:56:00Z", "agent", "Dmitry S")),
    ("whatsapp/android_en_group_system_lines.txt", ("Dmitry S",), 4, ("2023-01-11T16:26:00Z", "agent", "Dmitry S")),
    ("whatsapp/chat-miner_bracket_mmddyy_24h.txt", ("John Doe",), 7, ("2019-01-01T11:25:00Z", "agent", "John Doe")),
    ("whatsapp/chat-miner_ddmmyy_24h.txt", ("John Doe",), 7, ("2019-01-01T11:25:00Z", "agent", "John Doe")),
    ("whatsapp/chat-miner_mmddyyyy_12h_a.m.txt", ("John Doe",), 7, ("2019-01-01T11:25:00Z", "agent", "John Doe")),
    ("whatsapp/chat-miner_nbsp_p.m._unicode.txt", ("John Doe",), 3, ("2022-10-09T22:37:00Z", "agent", "John Doe")),
    ("whatsapp/ios_en_mdyy_24h_attached_lrm_crlf.txt", ("Dmitry S",), 22, ("2022-03-27T21:41:35Z", "agent", "Dmitry S")),
    ("whatsapp/ios_fr_mdyy_nocomma_omitted_lrm_crlf.txt", ("Dmitry S",), 22, ("2022-03-27T21:41:35Z", "agent", "Dmitry S")),
    ("whatsapp/whatstk_pokemon_dd.mm.yyyy_24h.txt", ("Misty",), 18, ("2016-08-06T13:23:00Z", "client", "Ash Ketchum")),
    ("messenger/chat-analytics_messenger_2A_7M_bom.json", (), 7, ("2014-11-05T00:27:20Z", "agent", "Bob")),
    ("messenger/chat-miner_facebook_messenger_minimal.json", ("John Doe",), 2, ("2022-11-16T19:50:03Z", "agent", "John Doe")),
    ("messenger/chat-miner_instagram_mojibake.json", ("John Doe",), 12, ("2017-07-06T19:25:00Z", "agent", "John Doe")),
]


@pytest.mark.skipif(not SHARED_EXPORTS.is_dir(), reason="../shared/exports is not beside the project")
@pytest.mark.parametrize("name, agents, count, first", SAMPLES, ids=[s[0] for s in SAMPLES])
def test_every_real_sample_imports_with_counts_directions_and_times(name, agents, count, first, tmp_path):
    path = tmp_path / name.split("/")[-1]
    shutil.copyfile(SHARED_EXPORTS / name, path)  # read-only folder: work on a copy
    events = read(path, agents=agents)
    assert len(events) == count
    assert min((e.at, e.line) for e in events)[0] == first[0]
    earliest = min(events, key=lambda e: (e.at, e.line))
    assert (earliest.at, earliest.direction, earliest.author) == first
    assert all(e.text for e in events)
    assert not any("end-to-end" in e.text or "chiffrés de bout en bout" in e.text for e in events)
    args = ["ingest", path] + [a for agent in agents for a in ("--agent", agent)]
    assert run(*args).code == 0
    assert "already present" in run(*args).err and f"{count} already present" in run(*args).err


@pytest.mark.skipif(not SHARED_EXPORTS.is_dir(), reason="../shared/exports is not beside the project")
def test_the_samples_cover_every_export_in_the_folder():
    files = {str(p.relative_to(SHARED_EXPORTS)) for p in SHARED_EXPORTS.rglob("*") if p.suffix in (".json", ".txt")}
    assert files == {s[0] for s in SAMPLES}


def test_media_only_text_helpers():
    from chatcrm.importers.messenger import unmojibake
    from chatcrm.importers.telegram import flatten, media_placeholder

    assert flatten(["a", {"type": "bold", "text": "b"}, {"type": "text_link", "text": "c", "href": "x"}]) == "abc"
    assert media_placeholder({"media_type": "video_file", "file": "v.mp4"}) == "[video]"
    assert media_placeholder({"file": "x.pdf", "file_name": "invoice.pdf"}) == "[file invoice.pdf]"
    assert unmojibake("J\u00e2\u009d\u00a4\u00ef\u00b8\u008fhn") == "J❤️hn"
    assert unmojibake("plain ñ ✓") == "plain ñ ✓"


# The fast path for plain messages must agree with the checked path on every record.
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from chatcrm import times  # noqa: E402
from chatcrm.importers import native  # noqa: E402

_VALUES = st.one_of(
    st.none(),
    st.sampled_from([
        "", " ", "client", "agent", "tg:1", "D-1", "2026-11-24T09:15:00Z", "2026-02-30T09:00", " 2026-11-24T09:15:00Z",
        "2026-02-29T09:00:00Z", "2028-02-29T09:00:00Z", "2026-11-24T24:00:00Z", "2026-11-24T09:60:00Z",
        "0000-01-01T00:00:00Z", "2026-11-24T09:15:00+02:00", "2026-11-24T09:15:00z", "2026-13-01T09:15:00Z",
    ]),
    st.text(max_size=5), st.integers(-2, 3), st.booleans(), st.lists(st.integers(), max_size=1),
)


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(record=st.dictionaries(st.sampled_from(native.FIELDS), _VALUES, max_size=9), base=st.booleans())
def test_the_plain_message_fast_path_agrees_with_the_checked_path(record, base):
    if base:
        record = {"chat": "tg:1", "from": "client", "at": "2026-11-24T09:15:00Z", **record}
    fast = native._plain_message(record, "f", 1, times.UTC)
    if fast is not None:
        assert fast == native._checked_event(record, "f", 1, times.UTC)
