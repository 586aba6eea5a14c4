"""Point 6: times are accepted within a documented range, everywhere they enter, and
anything stored displays in any zone."""

import sqlite3

import pytest

from chatcrm import times
from tests.helpers import msg, run, write_jsonl

ZONES = ("-23:59", "+23:59", "-05:00", "+05:00", "Pacific/Kiritimati", "Pacific/Pago_Pago", "UTC")


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00Z", "9999-12-31T00:00:00Z", "1969-12-31T23:59:59Z",
                                "0001-01-01T00:00:00+05:00", "9999-12-30T23:00:00-05:00"])
def test_point6_an_import_refuses_a_time_outside_the_range_as_invalid_input(tmp_path, at):
    path = write_jsonl(tmp_path / "far.jsonl", [msg("tg:1", "2026-11-24T10:00:00Z"), msg("tg:1", at)])
    result = run("ingest", path)
    assert result.code == 5 and result.err.count("\n") == 1
    assert f"{path}:2: 'at': " in result.err and "outside the times chatcrm keeps" in result.err
    assert times.RANGE in result.err
    skipped = run("ingest", "--skip-invalid", path)
    assert skipped.code == 0 and "1 invalid" in skipped.err


def test_point6_the_range_edges_import_and_display_in_every_zone(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATCRM_NOW", times.LATEST)
    records = [msg("tg:1", times.EARLIEST, text="first"), msg("tg:2", times.LATEST, text="last"),
               {"type": "close", "chat": "tg:2", "at": times.LATEST}]
    assert run("ingest", write_jsonl(tmp_path / "edges.jsonl", records)).code == 0
    for zone in ZONES:
        for args in (["list"], ["list", "-f", "json"], ["timeline", "tg:1"], ["timeline", "tg:2"], ["stats"]):
            result = run(*args, "--tz", zone)
            assert result.code == 0, (args, zone, result.err)
    assert "9999-12-31 23:58" in run("timeline", "tg:2", "--tz", "+23:59").out


def test_point6_times_stored_before_the_range_was_kept_still_display_in_any_zone(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATCRM_NOW", "2026-11-24T12:00:00Z")
    assert run("ingest", write_jsonl(tmp_path / "a.jsonl", [msg("tg:1", "2026-11-24T10:00:00Z"),
                                                           msg("tg:2", "2026-11-24T10:00:00Z")])).code == 0
    conn = sqlite3.connect(tmp_path / "chatcrm.db")
    for key, at in (("tg:1", "0001-01-01T00:00:00Z"), ("tg:2", "9999-12-31T23:59:59Z")):
        conn.execute("UPDATE messages SET sent_at = ? WHERE chat_key = ?", [at, key])
        conn.execute("UPDATE chats SET opened_at = ?, last_message_at = ?, waiting_since = ? WHERE chat_key = ?",
                     [at, at, at, key])
        conn.execute("UPDATE deals SET created_at = ?, last_message_at = ?, waiting_since = ? WHERE key = ?",
                     [at, at, at, key])
    conn.commit()
    conn.close()
    for zone in ("-05:00", "+05:00", "America/New_York", "Asia/Tokyo"):
        listed = run("list", "--tz", zone)
        assert listed.code == 0, (zone, listed.err)
        assert "0001-01-01 00:00 UTC" in listed.out or "9999-12-31 23:59 UTC" in listed.out
        for deal in ("tg:1", "tg:2"):
            assert run("timeline", deal, "--tz", zone).code == 0
        assert run("stats", "--tz", zone).code == 0


@pytest.mark.parametrize("args, env", [
    (["reply", "1", "hi", "--at", "0001-01-01T00:00:00+05:00"], {}),
    (["reply", "1", "hi", "--at", "9999-12-31T12:00:00Z"], {}),
    (["reply", "1", "hi"], {"CHATCRM_NOW": "1969-07-20T20:17:00Z"}),
    (["list"], {"CHATCRM_NOW": "0001-01-01T00:00:00+01:00"}),
    (["stats", "--since", "1000000000000000000000000d"], {}),
    (["stats", "--since", "1969-12-31"], {}),
    (["stats", "--until", "9999-12-31T12:00"], {}),
    (["stats", "--since", "3000000d"], {}),
    (["list", "--sla", "100000000000000000000w"], {}),
    (["list", "--sla", "9" * 5000 + "s"], {}),
    (["list", "--tz", "+99:99"], {}),
    (["list", "--tz", "-24:00"], {}),
    (["list", "--interval", "100000000000000000000w"], {}),
])
def test_point6_a_time_or_duration_outside_the_range_in_an_option_is_a_usage_error(tmp_path, monkeypatch, args, env):
    monkeypatch.setenv("CHATCRM_NOW", "2026-11-24T12:00:00Z")
    assert run("ingest", write_jsonl(tmp_path / "a.jsonl", [msg("tg:1", "2026-11-24T10:00:00Z")])).code == 0
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = run(*args)
    assert result.code == 2, result.err
    assert result.err.startswith("Error: ") and result.err.count("\n") == 1 and len(result.err) < 300
    assert "internal error" not in result.err


def test_point6_the_range_rule():
    assert times.parse(times.EARLIEST) == times.EARLIEST and times.parse(times.LATEST) == times.LATEST
    for outside in ("1969-12-31T23:59:59Z", "9999-12-31T00:00:00Z"):
        with pytest.raises(ValueError, match="outside the times chatcrm keeps"):
            times.parse(outside)
    with pytest.raises(ValueError):
        times.from_epoch(-1)
    with pytest.raises(ValueError):
        times.from_epoch(10**20)
    assert times.parse_duration("8000d") == 8000 * 86400
    with pytest.raises(ValueError, match="too long"):
        times.parse_duration("9000000d")
