"""Importing any export again, or a later one that overlaps it, adds nothing it already gave."""

import shutil
import tracemalloc
import zipfile
from datetime import datetime, timedelta

import pytest

from chatcrm import importers
from chatcrm.importers import ImportOptions
from tests.helpers import FIXTURES, run

EXPORTS = [
    ("whatsapp/iphone/_chat.txt", ["--agent", "Tienda Sol"]),
    ("whatsapp/iphone-group/_chat.txt", ["--agent", "Tienda Sol", "--chat", "wa:vip"]),
    ("whatsapp/WhatsApp Chat mit Jonas Weber.txt", []),
    ("whatsapp/notices_many_languages.txt", ["--agent", "Tienda Sol"]),
    ("whatsapp/names_with_marks.txt", ["--agent", "Tienda Sol", "--chat", "wa:x"]),
    *[(f"whatsapp/layouts/{p.name}", ["--agent", "Tienda Sol", "--year", "2014"])
      for p in sorted((FIXTURES / "whatsapp/layouts").glob("*.txt"))],
    ("telegram/ChatExport_2026-11-24", []),
    ("telegram/public_channel.json", ["--agent", "Tienda Sol Ofertas"]),
    ("meta/facebook-tiendasol-2025", ["--agent", "Tienda Sol"]),
    ("meta/instagram-tiendasol-2025", ["--agent", "tiendasol"]),
]


@pytest.mark.parametrize("path, args", EXPORTS, ids=[p for p, _ in EXPORTS])
def test_importing_an_export_again_adds_nothing(path, args):
    first = run("ingest", FIXTURES / path, *args)
    assert first.code == 0, first.err
    added = int(first.err.split("added ")[1].split(" ")[0])
    assert added > 0
    again = run("ingest", FIXTURES / path, *args)
    assert again.code == 0 and again.err.startswith("added 0 message(s)") and f"{added} already present" in again.err


def test_a_later_meta_export_that_overlaps_adds_only_the_newer_messages(tmp_path):
    thread = "your_facebook_activity/messages/inbox/anagarcia_10001"
    early = tmp_path / "facebook-2025-11-01"
    (early / thread).mkdir(parents=True)
    shutil.copyfile(FIXTURES / "meta/facebook-tiendasol-2025" / thread / "message_1.json", early / thread / "message_1.json")
    assert "added 2 message(s)" in run("ingest", early, "--agent", "Tienda Sol").err
    later = run("ingest", FIXTURES / "meta/facebook-tiendasol-2025", "--agent", "Tienda Sol")
    assert "added 3 message(s)" in later.err and "2 already present" in later.err, later.err


def test_a_big_whatsapp_zip_is_read_in_flat_memory(tmp_path):
    moment = datetime(2022, 1, 13, 9, 0, 0)
    lines = []
    for i in range(40000):
        moment += timedelta(seconds=41)
        who = "Ana Costa" if i % 2 else "Tienda Sol"
        lines.append(f"[{moment:%d/%m/%y}, {moment:%H:%M:%S}] {who}: mensaje {i} " + "x" * 90)
    text = ("\n".join(lines) + "\n").encode()
    path = tmp_path / "WhatsApp Chat - Ana Costa.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("_chat.txt", text)
    tracemalloc.start()
    count = 0
    for _, _, events in importers.read_sources(str(path), None, ImportOptions(agents=("Tienda Sol",))):
        count += sum(1 for _ in events)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == 40000
    assert peak < len(text) / 2  # never the whole chat at once
