"""WhatsApp exports as people have them: every layout and locale, notices, names, identity."""

import shutil
import zipfile
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatcrm import importers
from chatcrm.errors import InvalidInput
from chatcrm.importers import ImportOptions
from chatcrm.importers.roles import clean_name
from chatcrm.times import UTC
from tests.helpers import read_export, FIXTURES, run, nothing_written

WA = FIXTURES / "whatsapp"


read = read_export  # every event an export gives, checked as ingest checks them


def summary(events):
    return [(e.at, e.direction, e.author, e.text) for e in events]


# ----------------------------------------------------------------- every stamp class

LAYOUTS = [
    ("time_first_ios.txt", ["2022-03-18T14:56:01Z", "2022-03-18T15:01:30Z"]),
    ("arabic_indic_digits.txt", ["2022-03-18T14:56:00Z", "2022-03-18T15:01:15Z"]),
    ("buddhist_era.txt", ["2022-03-18T14:56:00Z", "2022-03-18T15:01:00Z"]),
    ("old_iphone_no_brackets.txt", ["2016-01-07T16:56:55Z", "2016-01-07T17:02:10Z"]),
    ("day_periods_in_words.txt", ["2022-03-18T09:15:00Z", "2022-03-18T14:30:00Z", "2022-03-18T23:05:00Z"]),
    ("old_android_month_names.txt", ["2013-08-28T19:23:00Z", "2013-08-28T19:40:00Z"]),
    ("persian_digits_and_calendar.txt", ["2023-03-18T14:56:00Z", "2023-03-18T15:01:00Z"]),
    ("hijri_with_rlm_marks.txt", ["2022-04-03T14:56:00Z", "2022-04-03T15:01:15Z"]),  # 1 Ramadan 1443, tabular
    ("chinese_markers.txt", ["2022-03-18T14:56:00Z", "2022-03-18T15:01:00Z"]),
    ("dots_and_spanish_pm.txt", ["2022-03-18T14:56:00Z", "2022-03-18T15:01:00Z"]),
]


@pytest.mark.parametrize("name, times", LAYOUTS, ids=[n for n, _ in LAYOUTS])
def test_every_layout_gives_its_times_authors_and_texts(name, times):
    events = read(WA / "layouts" / name, agents=("Tienda Sol",))
    assert [e.at for e in events] == times
    assert [e.direction for e in events][:2] == ["client", "agent"]
    assert events[1].author == "Tienda Sol" and all(e.text and e.text == e.text.strip() for e in events)


def test_a_whatsapp_text_starting_with_a_bracket_is_never_taken_for_json():
    for name in ("time_first_ios.txt", "arabic_indic_digits.txt"):
        head, stream = importers.open_source(str(WA / "layouts" / name))
        stream.close()
        assert importers.detect(head, "renamed.dat") == "whatsapp"


def test_dates_without_a_year_are_refused_naming_the_year_or_take_it_from_year(tmp_path):
    path = WA / "layouts" / "no_year.txt"
    with pytest.raises(InvalidInput, match=r"no_year.txt:1: the dates in this export have no year; give it with --year"):
        read(path, agents=("Tienda Sol",))
    assert [e.at for e in read(path, agents=("Tienda Sol",), year=2014)] == ["2014-03-05T20:11:00Z", "2014-03-05T20:15:00Z"]
    result = run("ingest", path, "--agent", "Tienda Sol", "--year", "2014")
    assert result.code == 0 and "added 2 message(s)" in result.err
    assert run("ingest", path, "--agent", "Tienda Sol").code == 5


def test_yearless_dates_run_over_new_year(tmp_path):
    path = tmp_path / "chat.txt"
    path.write_text("Dec 31, 11:50 PM - Ana: feliz año\nJan 1, 12:10 AM - Luis: igualmente\n", encoding="utf-8")
    assert [e.at for e in read(path, agents=("Luis",), year=2013)] == ["2013-12-31T23:50:00Z", "2014-01-01T00:10:00Z"]


# ----------------------------------------------------------------- notices, calls, edits, deletions


def test_notices_in_many_languages_and_call_records_are_not_messages():
    events = read(WA / "notices_many_languages.txt", agents=("Tienda Sol",))
    assert summary(events) == [
        ("2022-03-18T14:04:00Z", "client", "Ana Costa", "I left my umbrella in the shop yesterday"),
        ("2022-03-18T14:05:00Z", "agent", "Tienda Sol", "We found it, it was removed from the window"),
        ("2022-03-18T14:12:00Z", "client", "Ana Costa", "Thanks a lot!"),
    ]


def test_iphone_chat_edit_markers_removed_deleted_kept_calls_dropped():
    events = read(WA / "iphone" / "_chat.txt", agents=("tienda sol",))
    assert summary(events) == [
        ("2026-11-24T09:01:12Z", "client", "Carmen Ruiz", "Hola, ¿tenéis la lámpara en verde?"),
        ("2026-11-24T09:05:03Z", "agent", "Tienda Sol", "Sí, nos quedan tres"),
        ("2026-11-24T09:06:00Z", "client", "Carmen Ruiz", "<adjunto: 00000007-PHOTO-2026-11-24-09-06-00.jpg>"),
        ("2026-11-24T09:07:30Z", "client", "Carmen Ruiz", "Se eliminó este mensaje."),
        ("2026-11-24T09:10:45Z", "client", "Carmen Ruiz", "Perfecto, paso a las 12"),
    ]


def test_a_german_android_export_named_in_german_is_its_client():
    events = read(WA / "WhatsApp Chat mit Jonas Weber.txt")
    assert {e.chat for e in events} == {"wa:Jonas Weber"}
    assert summary(events) == [
        ("2022-03-18T14:56:00Z", "client", "Jonas Weber", "Guten Tag, ist das Fahrrad noch da?"),
        ("2022-03-18T14:58:00Z", "agent", "Tienda Sol", "Ja, noch eins"),
        ("2022-03-18T15:03:00Z", "client", "Jonas Weber", "Super, ich komme morgen\num 10 Uhr"),
        ("2022-03-19T09:30:00Z", "client", "Jonas Weber", "IMG-20220319-WA0003.jpg (Datei angehängt)"),
    ]


# ----------------------------------------------------------------- names


def test_author_names_are_stored_clean_and_matched_without_case():
    events = read(WA / "names_with_marks.txt", agents=("TIENDA SOL",), chat="wa:x")
    assert [(e.author, e.direction) for e in events] == [
        ("+34 600 11 22 33", "client"), ("Lucía Vega", "client"), ("Tienda Sol", "agent")]
    assert read(WA / "names_with_marks.txt", agents=("~ lucía\u00a0vega", "Tienda Sol"), chat="wa:x")[1].direction == "agent"


def test_clean_name_rules():
    assert clean_name("\u202a+34\u00a0600\u202c") == "+34 600"
    assert clean_name("~\u202fAna") == "Ana"
    assert clean_name("\u2066Ana\u2069  Costa\u200f") == "Ana Costa"
    assert clean_name("~") == "~"


# ----------------------------------------------------------------- chat identity


def _zip(path, members: dict) -> str:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return str(path)


def test_two_iphone_chats_both_called_chat_txt_never_share_a_deal(tmp_path):
    one = tmp_path / "a" / "_chat.txt"
    two = tmp_path / "b" / "_chat.txt"
    one.parent.mkdir()
    two.parent.mkdir()
    shutil.copyfile(WA / "iphone" / "_chat.txt", one)
    two.write_text("[25/11/26, 10:00:00] Tienda Sol: Hola Jaime\n[25/11/26, 10:01:00] Jaime Ortiz: Hola\n", encoding="utf-8")
    assert run("ingest", one, "--agent", "Tienda Sol").code == 0
    assert run("ingest", two, "--agent", "Tienda Sol").code == 0
    # the first names its contact on iOS's encryption notice; the second has no notice: both authors name it
    assert sorted(r["deal_key"] for r in run("list", "-f", "json").json()) == ["wa:Carmen Ruiz", "wa:Jaime Ortiz, Tienda Sol"]


def test_a_group_in_a_file_called_chat_txt_is_refused_asking_for_chat():
    path = WA / "iphone-group" / "_chat.txt"
    result = run("ingest", path, "--agent", "Tienda Sol")
    assert result.code == 5 and "--chat KEY" in result.err and result.err.count("\n") == 1
    assert nothing_written()
    assert run("ingest", path, "--agent", "Tienda Sol", "--chat", "wa:vip").code == 0
    rows = run("list", "-f", "json").json()
    assert [r["deal_key"] for r in rows] == ["wa:vip"]


def test_a_bare_chat_txt_and_a_later_zip_of_the_same_chat_land_on_one_deal(tmp_path):
    early = (WA / "iphone" / "_chat.txt").read_bytes()
    later = early + "[24/11/26, 11:00:00] Carmen Ruiz: Ya estoy aquí\r\n".encode()
    archive = _zip(tmp_path / "WhatsApp Chat - Carmen Ruiz.zip",
                   {"_chat.txt": later, "00000007-PHOTO-2026-11-24-09-06-00.jpg": b"\xff\xd8\xff fake jpeg"})
    assert "added 5 message(s)" in run("ingest", WA / "iphone" / "_chat.txt", "--agent", "Tienda Sol").err
    again = run("ingest", archive, "--agent", "Tienda Sol")
    assert again.code == 0 and "added 1 message(s)" in again.err and "5 already present" in again.err
    assert [r["deal_key"] for r in run("list", "-f", "json").json()] == ["wa:Carmen Ruiz"]
    assert "added 0 message(s)" in run("ingest", archive, "--agent", "Tienda Sol").err


@pytest.mark.parametrize("name", [
    "WhatsApp Chat with Carmen Ruiz", "WhatsApp Chat - Carmen Ruiz", "WhatsApp Chat mit Carmen Ruiz",
    "Chat de WhatsApp con Carmen Ruiz", "Conversa do WhatsApp com Carmen Ruiz", "WhatsApp-chat met Carmen Ruiz",
    "Discussion WhatsApp avec Carmen Ruiz", "Chat WhatsApp con Carmen Ruiz", "Carmen Ruiz ile WhatsApp Sohbeti",
])
def test_android_zips_named_in_the_phones_language_give_the_chat_its_name(name, tmp_path):
    text = (WA / "iphone" / "_chat.txt").read_bytes()
    archive = _zip(tmp_path / f"{name}.zip", {f"{name}.txt": text, "IMG-1.jpg": b"x"})
    events = read(archive)
    assert {e.chat for e in events} == {"wa:Carmen Ruiz"}
    assert [e.direction for e in events][:2] == ["client", "agent"]  # the other author is the employee


def test_a_renamed_one_to_one_export_is_keyed_by_its_client(tmp_path):
    path = tmp_path / "export.txt"
    shutil.copyfile(WA / "iphone" / "_chat.txt", path)
    assert {e.chat for e in read(path, agents=("Tienda Sol",))} == {"wa:Carmen Ruiz"}


def test_existing_keys_stay():
    assert {e.chat for e in read(WA / "WhatsApp Chat with Marta Gómez.txt")} == {"wa:Marta Gómez"}


# ----------------------------------------------------------------- a writer for every layout and locale

_AM_PM = {
    "AM": ("AM", "PM", "after"), "a. m.": ("a. m.", "p. m.", "after"), "a.m.": ("a.m.", "p.m.", "after"),
    "vorm.": ("vorm.", "nachm.", "after"), "上午": ("上午", "下午", "before"), "ص": ("ص", "م", "after"),
    "nbsp": ("a.\u00a0m.", "p.\u00a0m.", "after"), "nnbsp": ("\u202fAM", "\u202fPM", "after-tight"),
}
_MONTHS_EN = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def _date(moment: datetime, style: str) -> str:
    d, m, y = moment.day, moment.month, moment.year
    return {
        "d/m/Y": f"{d:02d}/{m:02d}/{y}", "d/m/y": f"{d:02d}/{m:02d}/{y % 100:02d}", "-d/-m/y": f"{d}/{m}/{y % 100:02d}",
        "d.m.Y": f"{d:02d}.{m:02d}.{y}", "d.m.y": f"{d:02d}.{m:02d}.{y % 100:02d}", "d-m-Y": f"{d:02d}-{m:02d}-{y}",
        "m/d/y": f"{m:02d}/{d:02d}/{y % 100:02d}", "-m/-d/y": f"{m}/{d}/{y % 100:02d}", "m/d/Y": f"{m:02d}/{d:02d}/{y}",
        "Y-m-d": f"{y}-{m:02d}-{d:02d}", "Y/m/d": f"{y}/{m}/{d}", "Y. m. d.": f"{y}. {m}. {d}.",
        "d/m/BE": f"{d}/{m}/{y + 543}", "d Mon Y": f"{d} {_MONTHS_EN[m - 1]} {y}", "Mon d, Y": f"{_MONTHS_EN[m - 1]} {d}, {y}",
    }[style]


def _time(moment: datetime, style: str) -> str:
    h, mi, s = moment.hour, moment.minute, moment.second
    if style == "H:M":
        return f"{h:02d}:{mi:02d}"
    if style == "H:M:S":
        return f"{h:02d}:{mi:02d}:{s:02d}"
    if style == "H.M":
        return f"{h:02d}.{mi:02d}"
    if style == "periods":
        h12 = h % 12 or 12
        word = ("in the morning" if 6 <= h < 12 else "in the afternoon" if 12 <= h < 18
                else "in the evening" if 18 <= h < 21 else "at night")
        return f"{h12}:{mi:02d} {word}"
    am, pm, where = _AM_PM[style]
    marker = am if h < 12 else pm
    clock = f"{h % 12 or 12}:{mi:02d}"
    if where == "before":
        return marker + clock
    return clock + (marker if where == "after-tight" else " " + marker)


_ARABIC = str.maketrans("0123456789,", "٠١٢٣٤٥٦٧٨٩،")


def render(messages, frame: str, date_style: str, time_style: str, arabic: bool) -> str:
    lines = []
    for moment, author, text in messages:
        date, time = _date(moment, date_style), _time(moment, time_style)
        stamp = {
            "ios": f"[{date}, {time}] ", "ios-nocomma": f"[{date} {time}] ", "ios-time-first": f"[{time}, {date}] ",
            "android": f"{date}, {time} - ", "android-nocomma": f"{date} {time} - ",
            "android-time-first": f"{time}, {date} - ", "old-iphone": f"{date}, {time}: ",
        }[frame]
        if arabic:
            stamp = stamp.translate(_ARABIC)
        lines.append(f"{stamp}{author}: {text}")
    return "\n".join(lines) + "\n"


AUTHORS = ["Ana Costa", "Tienda Sol", "\u202a+34\u00a0600\u00a011\u00a022\u00a033\u202c", "~\u202fLucía Vega", "王芳", "سارة"]
_WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyzñéü¿?¡! ", min_size=1, max_size=20).map(str.strip).filter(bool)
_TEXTS = st.lists(_WORDS, min_size=1, max_size=3).map("\n".join)
FRAMES = ["ios", "ios-nocomma", "ios-time-first", "android", "android-nocomma", "android-time-first", "old-iphone"]
DATES = ["d/m/Y", "d/m/y", "-d/-m/y", "d.m.Y", "d.m.y", "d-m-Y", "m/d/y", "-m/-d/y", "m/d/Y", "Y-m-d", "Y/m/d",
         "Y. m. d.", "d/m/BE", "d Mon Y", "Mon d, Y"]
TIMES = ["H:M", "H:M:S", "H.M", "periods", *_AM_PM]


@st.composite
def conversations(draw):
    frame = draw(st.sampled_from(FRAMES))
    date_style = draw(st.sampled_from(DATES))
    time_style = draw(st.sampled_from(TIMES))
    if frame == "old-iphone" and time_style not in ("H:M:S", "AM"):
        time_style = draw(st.sampled_from(["H:M:S", "AM"]))
    if frame == "old-iphone" and "Mon" in date_style:
        date_style = "-m/-d/y"  # old iPhones wrote numeric dates only
    if frame.startswith("ios") and date_style == "Y-m-d" and time_style == "H:M":
        time_style = "H:M:S"  # `[2024-03-05 20:11]` is Signal's layout, never WhatsApp's
    if time_style == "H.M" and date_style[1:2] == "." or time_style == "H.M" and "." in date_style:
        time_style = "H:M"
    arabic = draw(st.booleans()) and time_style in ("H:M", "H:M:S", "ص")
    start = draw(st.datetimes(min_value=datetime(2013, 1, 1), max_value=datetime(2030, 12, 1)))
    start = start.replace(day=13 + start.day % 15, microsecond=0)  # a day above 12: the order is known
    if time_style not in ("H:M:S",) or frame == "old-iphone" and time_style != "H:M:S":
        start = start.replace(second=0)
    gaps = draw(st.lists(st.integers(0, 5 * 86400), min_size=1, max_size=6))
    moments = [start]
    for gap in gaps[1:]:
        moments.append(moments[-1] + timedelta(seconds=gap if time_style == "H:M:S" else gap - gap % 60))
    authors = draw(st.lists(st.sampled_from(AUTHORS), min_size=len(moments), max_size=len(moments)))
    texts = draw(st.lists(_TEXTS, min_size=len(moments), max_size=len(moments)))
    return frame, date_style, time_style, arabic, list(zip(moments, authors, texts))


def _check_round_trip(case, tmp_path_factory):
    frame, date_style, time_style, arabic, messages = case
    path = tmp_path_factory.mktemp("wa") / "chat.txt"
    path.write_text(render(messages, frame, date_style, time_style, arabic), encoding="utf-8")
    _, _, events = importers.read_source(str(path), None, ImportOptions(agents=("Tienda Sol",), chat="wa:gen"))
    got = [(e.at, e.author, e.text) for e in events]
    want = [(m.replace(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), clean_name(a), t) for m, a, t in messages]
    assert got == want, path.read_text(encoding="utf-8")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=conversations())
def test_any_layout_and_locale_the_writer_renders_parses_back_exactly(case, tmp_path_factory):
    _check_round_trip(case, tmp_path_factory)


@pytest.mark.slow
@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=conversations())
def test_any_layout_and_locale_round_trips_many(case, tmp_path_factory):
    _check_round_trip(case, tmp_path_factory)


def test_every_frame_date_and_time_style_round_trips_once(tmp_path_factory):
    """Each style at least once, whatever hypothesis draws."""
    base = [(datetime(2022, 3, 18, 14, 56, 1), "Ana Costa", "hola"), (datetime(2022, 3, 19, 9, 5, 30), "Tienda Sol", "buenas")]
    for frame in FRAMES:
        for date_style in DATES:
            for time_style in TIMES:
                if frame == "old-iphone" and (time_style not in ("H:M:S", "AM") or "Mon" in date_style):
                    continue
                if time_style == "H.M" and "." in date_style:
                    continue
                if frame.startswith("ios") and date_style == "Y-m-d" and time_style == "H:M":
                    continue
                messages = base if time_style == "H:M:S" else [(m.replace(second=0), a, t) for m, a, t in base]
                _check_round_trip((frame, date_style, time_style, False, messages), tmp_path_factory)


def test_without_an_employee_a_bare_chat_txt_lists_its_authors():
    result = run("ingest", WA / "iphone" / "_chat.txt")
    assert result.code == 5
    assert "authors of chat 'wa:Carmen Ruiz' are employees; authors found: Carmen Ruiz, Tienda Sol; name the employees" in result.err


def test_an_unknown_bracketed_layout_is_not_called_a_json_array(tmp_path):
    path = tmp_path / "odd.dat"
    path.write_text("[yesterday at noon] Ana: hola\n", encoding="utf-8")
    result = run("ingest", path)
    assert result.code == 5 and "JSON" not in result.err and "cannot tell the format" in result.err


def test_iphone_group_notices_written_as_the_group_are_not_messages_a_deleted_one_stays():
    events = read(WA / "iphone-group" / "_chat.txt", agents=("Tienda Sol",), chat="wa:vip")
    assert [(e.author, e.text) for e in events] == [
        ("Tienda Sol", "Bienvenidas al grupo de ofertas"), ("Rosa Martín", "¡Gracias!"),
        ("Lola", "Yo también quiero la oferta"), ("Rosa Martín", "This message was deleted."),
    ]
