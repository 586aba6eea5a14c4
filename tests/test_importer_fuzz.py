"""Every importer, given anything: random bytes, mutated real exports, hostile shapes.

Never a traceback or an internal error: an import either succeeds or is refused with
InvalidInput (exit 5) in one short line, and a refused import writes nothing. The slow
tier runs 1,000 generated cases per importer (CHATCRM_FUZZ_CASES=N for more); the default
tier a quick sample.
"""

import os
import sqlite3
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatcrm import importers, service
from chatcrm.errors import ChatcrmError, InvalidInput
from chatcrm.importers import ImportOptions
from chatcrm.store import open_store
from tests.helpers import FIXTURES, run

SEEDS = {
    "jsonl": [FIXTURES / "support-day.jsonl"],
    "csv": [],
    "telegram": [FIXTURES / "telegram/personal_chat.json", FIXTURES / "telegram/full_export.json",
                 FIXTURES / "telegram/ChatExport_2026-11-24/result.json", FIXTURES / "telegram/public_channel.json"],
    "whatsapp": [FIXTURES / "whatsapp/WhatsApp Chat with Marta Gómez.txt", FIXTURES / "whatsapp/iphone/_chat.txt",
                 FIXTURES / "whatsapp/notices_many_languages.txt", FIXTURES / "whatsapp/layouts/arabic_indic_digits.txt",
                 FIXTURES / "whatsapp/layouts/old_android_month_names.txt", FIXTURES / "whatsapp/android_12h_ampm.txt"],
    "messenger": [FIXTURES / "messenger/message_1.json",
                  FIXTURES / "meta/facebook-tiendasol-2025/your_facebook_activity/messages/inbox/anagarcia_10001/message_1.json"],
    "telegram-bot": [FIXTURES / "live/telegram-getupdates.json", FIXTURES / "live/telegram-business.jsonl",
                     FIXTURES / "live/telegram-edit.json"],
    "whatsapp-cloud": [FIXTURES / "live/whatsapp-message.json", FIXTURES / "live/whatsapp-statuses.json"],
}
LIVE_FORMATS = ["telegram-bot", "whatsapp-cloud"]
_CSV_SEED = (
    "type,chat,from,author,text,at\n"
    "message,tg:1,client,Ana,\"hola, ¿qué tal?\",2026-11-24T09:00:00Z\n"
    "message,tg:1,agent,Luis,\"bien\ny tú\",2026-11-24T09:05:00Z\n"
    "close,tg:1,,,,2026-11-24T10:00:00Z\n"
).encode()
SEED_BYTES = {fmt: [p.read_bytes() for p in paths] for fmt, paths in SEEDS.items()}
SEED_BYTES["csv"] = [_CSV_SEED]
SEED_BYTES["jsonl"] = [b"".join(SEED_BYTES["jsonl"][0].splitlines(keepends=True)[:8])]  # a short day: quicker cases
_TOKENS = [b"[", b"]", b"{", b"}", b'"', b",", b":", b"\n", b"\r", b"\x00", b"\xff", b"\xe2\x80\x8e", b"\\u0000",
           b"-", b"/", b".", b"12", b"99999999999999999999", b"PM", b" - ", b"] ", b"[1/1/22, 10:00:00] ", b"null",
           b"true", b"-1e999", b'"messages": [', b'"at":', b'"chat":', b"\xef\xbb\xbf", b"\t", b"a" * 300]


@st.composite
def mutated(draw, fmt):
    data = bytearray(draw(st.sampled_from(SEED_BYTES[fmt])))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "dup", "truncate", "token"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[at:at + draw(st.integers(1, 64))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "dup":
            data[at:at] = data[at:at + draw(st.integers(1, 200))]
        elif op == "truncate":
            del data[at:]
        else:
            data[at:at] = draw(st.sampled_from(_TOKENS))
    return bytes(data)


_JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.floats(allow_nan=False),
              st.text(max_size=12), st.sampled_from(["", "message", "service", "personal_chat", "public_channel",
                                                    "2026-11-24T09:00:00", "1795510000", "user1", "Call", "Generic"])),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


@st.composite
def json_mutated(draw, fmt):
    """A real export with some of its values replaced: the structure holds, the content lies."""
    import json

    seed = draw(st.sampled_from(SEED_BYTES[fmt])).decode("utf-8-sig")
    try:
        docs = [json.loads(seed)] if fmt != "jsonl" else None
    except ValueError:  # JSON Lines of live updates
        docs = None
    lines = docs is None
    if lines:
        docs = [json.loads(line) for line in seed.splitlines() if line.strip()]
    for doc in docs:
        paths = [p for p in _paths(doc) if p]
        for _ in range(draw(st.integers(1, 4))):
            path = draw(st.sampled_from(paths))
            parent = doc
            for step in path[:-1]:
                parent = parent[step]
            if draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = draw(_JSON_VALUES)
            paths = [p for p in _paths(doc) if p]
            if not paths:
                break
    if lines:
        return "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs).encode()
    return json.dumps(docs[0], ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 2]))).encode()


_TEXT_TOKENS = ["[", "]", " - ", ": ", "\n", "\r\n", "\u200e", "\u202a", "\u00a0", "~", "<This message was edited>",
                "PM", "p. m.", "下午", "م", "١٨/٣/٢٠٢٢، ", "31/12/99, 23:59 - ", "[1/1/22, 10:00:00] ", "2565", "Aug ",
                "Mar 5, 8:11 PM - ", "7/1/16, 4:56:55 PM: ", "00:00", "99:99", "0/0/0", ",", "\"", "\ufeff"]


@st.composite
def text_mutated(draw, fmt):
    """A real export edited as text: lines repeated, dropped, swapped, and stamp pieces put in."""
    lines = draw(st.sampled_from(SEED_BYTES[fmt])).decode("utf-8-sig").split("\n")
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, max(0, len(lines) - 1)))
        op = draw(st.sampled_from(["dup", "drop", "swap", "token", "text"]))
        if op == "dup" and lines:
            lines.insert(at, lines[at])
        elif op == "drop" and lines:
            del lines[at]
        elif op == "swap" and len(lines) > 1:
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        elif lines:
            piece = draw(st.sampled_from(_TEXT_TOKENS)) if op == "token" else draw(st.text(max_size=12))
            cut = draw(st.integers(0, len(lines[at])))
            lines[at] = lines[at][:cut] + piece + lines[at][cut:]
    return "\n".join(lines).encode("utf-8", "surrogatepass")


def inputs(fmt):
    if fmt in LIVE_FORMATS:  # structure-aware above all: any value replaced by any other JSON type
        return st.one_of(st.binary(max_size=600), mutated(fmt), json_mutated(fmt), json_mutated(fmt), json_mutated(fmt))
    if fmt in ("jsonl", "telegram", "messenger"):
        return st.one_of(st.binary(max_size=600), mutated(fmt), json_mutated(fmt), json_mutated(fmt))
    return st.one_of(st.binary(max_size=600), mutated(fmt), text_mutated(fmt), text_mutated(fmt), text_mutated(fmt))


def _rows(db) -> int:
    with sqlite3.connect(db) as connection:
        return sum(connection.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("messages", "chat_events", "deals"))


class _Harness:
    def __init__(self, folder):
        self.folder = folder
        self.db = folder / "fuzz.db"
        self.store = open_store(self.db)
        self.store.conn.execute("PRAGMA synchronous=OFF")  # thousands of small imports: no fsync each
        self.cases = 0
        self.outcomes = {"imported": 0, "refused": 0}

    def check(self, fmt, data, detect, agents, chat, skip_invalid=None):
        path = self.folder / ("input." + {"jsonl": "jsonl", "csv": "csv", "whatsapp": "txt"}.get(fmt, "json"))
        path.write_bytes(data)
        options = ImportOptions(agents=agents, chat=chat)
        before = _rows(self.db)
        try:
            sources = importers.read_sources(str(path), None if detect else fmt, options)
            skip = bool(agents) if skip_invalid is None else skip_invalid
            service.ingest(self.store, importers.checked(sources, options), skip_invalid=skip)
            self.outcomes["imported"] += 1
        except InvalidInput as error:
            self.outcomes["refused"] += 1
            message = str(error)
            assert "\n" not in message and len(message) < 1500, message[:300]
            assert _rows(self.db) == before
        except ChatcrmError as error:  # any other refusal must name itself too (and write nothing)
            assert error.exit_code in (2, 5), error
            assert _rows(self.db) == before
        self.cases += 1


def _fuzz(fmt, examples, tmp_path_factory):
    harness = _Harness(tmp_path_factory.mktemp(f"fuzz-{fmt}"))

    live = fmt in LIVE_FORMATS  # --chat (and --agent on WhatsApp) are refused there, exit 2
    agents = [(), ("Ana Pérez",)] if fmt == "telegram-bot" else [()] if live else [
        (), ("Tienda Sol",), ("Tienda Sol", "Luis"), ("Luis", "Elena")]

    @settings(max_examples=examples, deadline=None, derandomize=examples > 500,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=inputs(fmt), detect=st.booleans(), agents=st.sampled_from(agents),
           chat=st.sampled_from([None] if live else [None, "x:1"]), skip_invalid=st.booleans() if live else st.none())
    def case(data, detect, agents, chat, skip_invalid):
        harness.check(fmt, data, detect, agents, chat, skip_invalid)

    try:
        case()
    finally:
        harness.store.close()
    assert harness.cases >= examples * 0.9
    if examples >= 500:  # the mutations keep enough structure that many imports go through
        assert harness.outcomes["imported"] > examples * 0.05, harness.outcomes


FORMATS = ["jsonl", "csv", "telegram", "whatsapp", "messenger"]


@pytest.mark.parametrize("fmt", FORMATS + LIVE_FORMATS)
def test_fuzz_each_importer_a_quick_sample(fmt, tmp_path_factory):
    _fuzz(fmt, 120, tmp_path_factory)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS + LIVE_FORMATS)
def test_fuzz_each_importer_1000_cases(fmt, tmp_path_factory):
    _fuzz(fmt, int(os.environ.get("CHATCRM_FUZZ_CASES", "1000")), tmp_path_factory)


# ----------------------------------------------------------------- hostile shapes, bounded


def _bounded_run(*args, input=None):
    """The CLI's answer, its peak Python memory and how long it took."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        result = run(*args, input=input)
        return result, tracemalloc.get_traced_memory()[1], time.monotonic() - started
    finally:
        tracemalloc.stop()


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
@pytest.mark.parametrize("fmt", [None, *FORMATS])
def test_endless_input_is_refused_in_bounded_memory_naming_file_and_line(fmt):
    args = ["ingest", "/dev/zero", "--chat", "x:1"] + (["--format", fmt] if fmt else [])
    result, peak, seconds = _bounded_run(*args)
    assert result.code == 5, result.err
    assert result.err.startswith("Error: /dev/zero:") and result.err.count("\n") == 1
    assert peak < 40 << 20 and seconds < 20
    assert "internal error" not in result.err


@pytest.mark.parametrize("fmt", FORMATS)
def test_deep_nesting_is_refused_in_bounded_memory(fmt, tmp_path):
    deep = "[" * 100000 + "]" * 100000
    body = {
        "jsonl": '{"chat": "x", "at": "2026-11-24T10:00:00Z", "from": "client", "text": ' + deep + "}\n",
        "csv": "chat,at,text\nx,2026-11-24T10:00:00Z," + deep + "\n",
        "telegram": '{"name": "x", "type": "personal_chat", "id": 1, "messages": [{"text": ' + deep + "}]}",
        "whatsapp": "[24/11/26, 09:00:00] Ana: " + deep + "\n",
        "messenger": '{"participants": [], "messages": [' + deep + "]}",
    }[fmt]
    path = tmp_path / "deep.data"
    path.write_text(body, encoding="utf-8")
    result, peak, _ = _bounded_run("ingest", path, "--format", fmt, "--chat", "x:1", "--agent", "Ana")
    assert "internal error" not in result.err and "Traceback" not in result.err
    assert result.code in (0, 5), result.err
    if result.code == 5:
        assert result.err.count("\n") == 1 and len(result.err) < 400
    assert peak < 60 << 20


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "whatsapp"])
def test_a_huge_line_is_refused_with_file_and_line_quoting_little(fmt, tmp_path):
    path = tmp_path / "huge.data"
    path.write_bytes(b"x" * (9 << 20))
    result = run("ingest", path, "--format", fmt, "--chat", "x:1")
    assert result.code == 5
    assert result.err == f"Error: {path}:1: a line longer than 8 MiB; not a " + {
        "jsonl": "JSON Lines file", "csv": "CSV file", "whatsapp": "WhatsApp chat export"}[fmt] + "\n"


def test_a_5_mb_csv_header_is_not_echoed(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("chat,at," + "y" * (5 << 20) + "\n", encoding="utf-8")
    result = run("ingest", path)
    assert result.code == 5 and len(result.err) < 400 and "wrong CSV header" in result.err


def test_a_jsonl_whose_first_line_is_over_64_kib_is_still_jsonl(tmp_path):
    path = tmp_path / "long.jsonl"
    path.write_text('{"chat": "x:1", "at": "2026-11-24T10:00:00Z", "from": "client", "text": "' + "z" * 100000 + '"}\n',
                    encoding="utf-8")
    result = run("ingest", path)
    assert result.code == 0 and "added 1 message(s)" in result.err


def test_binary_input_is_refused(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 10)
    result = run("ingest", path)
    assert result.code == 5 and "binary data" in result.err


def test_skip_invalid_on_endless_garbage_stops(tmp_path):
    path = tmp_path / "garbage.jsonl"
    path.write_text("not json\n" * 5000, encoding="utf-8")
    result = run("ingest", path, "--skip-invalid")
    assert result.code == 5 and "more than 1000 invalid records" in result.err


def test_whatsapp_from_a_pipe_is_refused_at_the_first_nul_without_spooling():
    result = run("ingest", "-", "--format", "whatsapp", "--chat", "x:1", input=b"[24/11/26, 09:00:00] Ana: hola\n" + b"\0" * 100)
    assert result.code == 5 and result.err.startswith("Error: <stdin>:2: binary data")


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "whatsapp"])
def test_a_nul_byte_in_a_named_text_format_is_refused_at_its_line(fmt, tmp_path):
    path = tmp_path / "nul.data"
    first = {"jsonl": '{"chat": "x:1", "at": "2026-11-24T10:00:00Z", "from": "client", "text": "a"}',
             "csv": "chat,at,from,text", "whatsapp": "[24/11/26, 09:00:00] Ana: hola"}[fmt]
    path.write_bytes(first.encode() + b"\nx\x00y\n")
    result = run("ingest", path, "--format", fmt, "--chat", "x:1", "--agent", "Ana")
    assert result.code == 5 and result.err.startswith(f"Error: {path}:2: binary data (a NUL byte)"), result.err


@pytest.mark.parametrize("fmt", FORMATS + LIVE_FORMATS)
def test_fuzz_through_the_cli_exit_0_or_5_and_never_an_internal_error(fmt, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"cli-{fmt}")
    db = folder / "cli.db"

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=inputs(fmt), detect=st.booleans())
    def case(data, detect):
        path = folder / "input.data"
        path.write_bytes(data)
        options = [] if fmt in LIVE_FORMATS else ["--agent", "Tienda Sol", "--chat", "x:1"]
        args = ["ingest", "--db", db, path, *options] + ([] if detect else ["--format", fmt])
        before = _rows(db) if db.exists() else 0
        result = run(*args)
        assert result.code in (0, 5), result.err
        assert "internal error" not in result.err and "Traceback" not in result.err
        if result.code == 5:
            assert result.err.startswith("Error: ") and result.err.count("\n") == 1 and len(result.err) < 1500
            assert (_rows(db) if db.exists() else 0) == before

    case()
