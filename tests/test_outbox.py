"""The outbox: replies to live channels queued, handed to a sender, retried, given up,
marked delivered and read (README "Live channels", rules/delivery.py)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chatcrm import actions, importers, service, times
from chatcrm.importers import ImportOptions
from chatcrm.rules import delivery
from chatcrm.sender import SendResult, command_sender, remote_id
from tests.helpers import FIXTURES, ROOT, ingest, msg, run

LIVE = FIXTURES / "live"
T0 = "2026-11-29T12:00:00Z"
WAMID = "wamid.HBgLMzQ2MDAxMTEyMjIVAgARGBJBQjEyQzM0RDU2RTc4RjkwAA=="


def at(seconds: int) -> str:
    return times.from_epoch(times.epoch(T0) + seconds)


def live(store, *names):
    batches = [importers.read_source(str(LIVE / name), None, ImportOptions()) for name in names]
    return service.ingest(store, batches)


class Clock:
    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now


class Sender:
    """A sender double: records what it was given, answers from a script."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.given = []

    def __call__(self, entry):
        self.given.append(entry)
        answer = self.answers.pop(0) if self.answers else SendResult(True, remote_id=f"r{len(self.given)}")
        return answer


def deliver(store, sender, clock, **kwargs):
    return service.deliver(store, sender, clock=clock, owner="test", **kwargs)


def test_a_reply_on_a_live_chat_is_queued_and_one_on_an_exported_chat_is_not(store):
    live(store, "telegram-getupdates.json")
    ingest(store, [msg("web:1", "2026-11-29T09:00:00Z", id="w1")])
    queued = actions.reply(store, "tg:5550001", "Sí, en azul", now=T0, author="Luis")
    plain = actions.reply(store, "web:1", "Hola", now=T0, author="Luis")
    assert queued.queued == 1 and queued.channel == "telegram" and plain.queued is None
    assert [(e["reply_id"], e["chat_key"], e["client_id"], e["text"], e["state"]) for e in service.outbox(store, now=T0)] == [
        (1, "tg:5550001", "5550001", "Sí, en azul", "waiting")]


def test_the_outbox_json_carries_what_a_sender_needs(store):
    live(store, "telegram-business.jsonl", "whatsapp-message.json")
    actions.reply(store, "tg:7770002", "Sí, abrimos", now=T0, author="Luis")
    actions.reply(store, "wa:34600111222", "Confirmado", now=at(1), author="Elena")
    result = run("outbox", "-f", "json", "--db", store.path)
    assert result.code == 0, result.err
    telegram, whatsapp = result.json()
    assert {k: telegram[k] for k in ("channel", "chat_key", "client_id", "text", "business_connection_id", "phone_number_id")} == {
        "channel": "telegram", "chat_key": "tg:7770002", "client_id": "7770002", "text": "Sí, abrimos",
        "business_connection_id": "BQADBAADfxgAAlsVqVE", "phone_number_id": None}
    assert (whatsapp["channel"], whatsapp["client_id"], whatsapp["phone_number_id"], whatsapp["reply_id"]) == (
        "whatsapp", "34600111222", "106540352242922", 2)


def test_a_sent_reply_leaves_the_outbox_with_the_id_the_channel_gave(store):
    live(store, "telegram-getupdates.json")
    actions.reply(store, "tg:5550001", "Sí", now=T0, author="Luis")
    report = deliver(store, Sender(SendResult(True, remote_id="777")), Clock(at(5)))
    assert [(e["state"], e["remote_id"], e["tries"]) for e in report.tried] == [("delivered", "777", 1)]
    assert service.outbox(store, now=at(5)) == []
    assert [e["state"] for e in service.outbox(store, now=at(5), everything=True)] == ["delivered"]
    assert deliver(store, Sender(), Clock(at(6))).tried == []  # never sent twice


def test_replies_go_in_order_per_chat_and_a_failing_one_holds_back_only_its_own_chat(store):
    live(store, "telegram-getupdates.json", "whatsapp-message.json")
    actions.reply(store, "tg:5550001", "tg 2", now=at(20), author="Luis")
    actions.reply(store, "tg:5550001", "tg 1", now=at(10), author="Luis")  # written later, earlier time
    actions.reply(store, "wa:34600111222", "wa 1", now=at(15), author="Luis")
    actions.reply(store, "wa:34600111222", "wa 2", now=at(25), author="Luis")
    sender = Sender(SendResult(False, error="exit 7: Bad Gateway"))  # the first try fails
    deliver(store, sender, Clock(at(30)))
    assert [e["text"] for e in sender.given] == ["tg 1", "wa 1", "wa 2"]  # tg 2 waits for tg 1
    retry = Sender()
    deliver(store, retry, Clock(at(30 + 61)))
    assert [e["text"] for e in retry.given] == ["tg 1", "tg 2"]


def test_a_failure_is_tried_again_after_the_back_off_and_given_up_after_the_documented_tries(store):
    live(store, "telegram-getupdates.json")
    actions.reply(store, "tg:5550001", "first", now=T0, author="Luis")
    actions.reply(store, "tg:5550001", "second", now=at(1), author="Luis")
    clock = Clock(at(2))
    failing = Sender(*[SendResult(False, error="exit 22: chat not found")] * 10)
    for n, wait in enumerate(delivery.BACKOFF_SECONDS, start=1):
        report = deliver(store, failing, clock)
        assert [(e["state"], e["tries"], e["next_try_at"]) for e in report.tried] == [
            ("waiting", n, times.from_epoch(times.epoch(clock.now) + wait))]
        clock.now = times.from_epoch(times.epoch(clock.now) + wait - 1)
        assert deliver(store, failing, clock).tried == []  # not before its back-off
        clock.now = times.from_epoch(times.epoch(clock.now) + 1)
    report = deliver(store, failing, clock)
    assert [(e["text"], e["state"], e["tries"]) for e in report.tried[:1]] == [("first", "failed", delivery.MAX_TRIES)]
    assert len(failing.given) == delivery.MAX_TRIES + 1  # the given-up one no longer holds back "second"
    shown = run("outbox", "--db", store.path, "--tz", "UTC")
    assert "failed" in shown.out and "exit 22: chat not found" in shown.out


def test_the_back_off_schedule():
    assert [delivery.backoff(n) for n in range(1, delivery.MAX_TRIES + 1)] == [60, 300, 900, 3600, None]


def test_whatsapp_statuses_mark_a_sent_reply_delivered_then_read_in_any_order(store, tmp_path):
    live(store, "whatsapp-message.json")
    actions.reply(store, "wa:34600111222", "Confirmado", now=T0, author="Luis")
    report = deliver(store, Sender(SendResult(True, remote_id=WAMID)), Clock(at(1)))
    assert [e["state"] for e in report.tried] == ["sent"]
    live(store, "whatsapp-statuses.json")
    assert [e["state"] for e in service.outbox(store, now=at(2), everything=True)] == ["read"]
    # statuses read before the sender's answer was recorded: the same state
    other = service.ingest
    from chatcrm.store import open_store

    second = open_store(tmp_path / "second.db")
    live(second, "whatsapp-statuses.json", "whatsapp-message.json")
    actions.reply(second, "wa:34600111222", "Confirmado", now=T0, author="Luis")
    deliver(second, Sender(SendResult(True, remote_id=WAMID)), Clock(at(1)))
    assert [e["state"] for e in service.outbox(second, now=at(2), everything=True)] == ["read"]
    second.close()
    assert other is service.ingest


def test_the_timeline_shows_each_replys_delivery_state(store):
    live(store, "whatsapp-message.json")
    actions.reply(store, "wa:34600111222", "uno", now=T0, author="Luis")
    actions.reply(store, "wa:34600111222", "dos", now=at(1), author="Luis")
    deliver(store, Sender(SendResult(True, remote_id=WAMID), SendResult(False, error="exit 1: down")), Clock(at(2)))
    live(store, "whatsapp-statuses.json")
    entries = service.timeline(store, "wa:34600111222", now=at(3))[1]
    assert [(e["text"], e.get("delivery")) for e in entries if e["kind"] == "message"][-2:] == [
        ("uno", "read"), ("dos", "waiting")]
    table = run("timeline", "wa:34600111222", "--db", store.path).out
    assert "uno · read" in table and "dos · waiting" in table


# ------------------------------------------------------------------ the sender command


def entry(**extra):
    base = {"reply_id": 1, "deal_id": 1, "channel": "telegram", "chat_key": "tg:1", "client_id": "1",
            "text": 'dice "hola"\n', "business_connection_id": None, "phone_number_id": None}
    return {**base, **extra}


def test_the_command_gets_the_reply_as_json_and_in_the_environment(tmp_path):
    seen = tmp_path / "seen.json"
    send = command_sender(f'cat > {seen}; printf "%s|%s" "$CHATCRM_CLIENT_ID" "$CHATCRM_TEXT_JSON" >> {seen}.env; echo 4242', 10)
    assert send(entry()) == SendResult(True, remote_id="4242")
    assert json.loads(seen.read_text())["text"] == 'dice "hola"\n'
    assert Path(f"{seen}.env").read_text() == '1|"dice \\"hola\\"\\n"'


def test_a_failing_command_is_worded_by_its_last_stderr_line():
    send = command_sender("echo warming up >&2; echo 'Bad Request: chat not found' >&2; exit 22", 10)
    assert send(entry()) == SendResult(False, error="exit 22: Bad Request: chat not found")


@pytest.mark.slow
def test_a_command_that_hangs_is_stopped_after_the_timeout_and_counted_as_a_failure(tmp_path):
    pid_file = tmp_path / "pid"
    started = time.monotonic()
    send = command_sender(f"sleep 30 & echo $! > {pid_file}; wait", 1)
    result = send(entry())
    assert not result.ok and "longer than 1 s" in result.error
    assert time.monotonic() - started < 10
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the whole process group is gone, not only the shell
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the sender's child {pid} still runs")


@pytest.mark.parametrize("output, expected", [
    ('{"ok":true,"result":{"message_id":891,"chat":{"id":1}}}', "891"),
    ('{"messaging_product":"whatsapp","contacts":[{"input":"346","wa_id":"346"}],"messages":[{"id":"wamid.X"}]}', "wamid.X"),
    ("abc-1\nmore", "abc-1"),
    ("", None),
    ("\x00" * 300, None),  # what the sender printed is no id: the reply is delivered without one
    ("x" * 201, None),
    ('{"ok":true,"result":{"message_id":{"nested":1}}}', None),
    ("true", None),
    ("12345", "12345"),
])
def test_the_remote_id_is_read_from_the_channels_answer(output, expected):
    assert remote_id(output) == expected


def test_deliver_from_the_command_line(tmp_path):
    assert run("ingest", LIVE / "telegram-getupdates.json").code == 0
    assert run("reply", "tg:5550001", "Sí", "--at", T0).code == 0
    result = run("deliver", "--command", """echo '{"ok":true,"result":{"message_id":55}}'""")
    assert result.code == 0, result.err
    assert result.out == "reply 1 (deal 1, tg:5550001): delivered, remote id 55\n"
    assert result.err.startswith("deliver: 1 sent, 0 failed of 1 tried; 0 waiting")
    assert run("deliver", "--command", "true", "--timeout", "soon").code == 2


# ------------------------------------------------------------------ concurrency and kills


def chatcrm(*args, env=None, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "chatcrm", *map(str, args)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


@pytest.mark.slow
def test_two_deliver_runs_at_once_never_send_one_reply_twice_and_keep_each_chats_order(tmp_path):
    db = tmp_path / "c.db"
    assert run("ingest", "--db", db, LIVE / "telegram-getupdates.json", LIVE / "telegram-business.jsonl",
               LIVE / "whatsapp-message.json").code == 0
    for n in range(12):
        key = ("tg:5550001", "tg:7770002", "wa:34600111222")[n % 3]
        assert run("reply", "--db", db, key, f"reply {n:02d}", "--at", at(n)).code == 0
    log = tmp_path / "sent.log"
    sender = f'sleep 0.05; printf "%s %s\\n" "$CHATCRM_CHAT_KEY" "$CHATCRM_TEXT" >> {log}'
    env = {**os.environ, "CHATCRM_DB": str(db), "CHATCRM_NOW": at(100)}
    runs = [chatcrm("deliver", "--command", sender, env=env) for _ in range(2)]
    outputs = [r.communicate(timeout=120) for r in runs]
    assert [r.returncode for r in runs] == [0, 0], outputs
    sent = log.read_text().splitlines()
    assert sorted(sent) == sorted(f"{('tg:5550001', 'tg:7770002', 'wa:34600111222')[n % 3]} reply {n:02d}" for n in range(12))
    for key in ("tg:5550001", "tg:7770002", "wa:34600111222"):
        mine = [line for line in sent if line.startswith(key)]
        assert mine == sorted(mine)
    assert sum(o[0].decode().count("\n") for o in outputs) == 12


@pytest.mark.slow
def test_a_run_killed_mid_delivery_loses_nothing_the_reply_goes_once_its_lease_runs_out(tmp_path):
    db = tmp_path / "k.db"
    assert run("ingest", "--db", db, LIVE / "telegram-getupdates.json").code == 0
    assert run("reply", "--db", db, "tg:5550001", "Sí", "--at", T0).code == 0
    started = tmp_path / "started"
    env = {**os.environ, "CHATCRM_DB": str(db), "CHATCRM_NOW": at(1)}
    victim = chatcrm("deliver", "--command", f"echo $$ > {started}; exec sleep 60", "--timeout", "30s", env=env)
    deadline = time.monotonic() + 60
    while not (started.exists() and started.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    os.kill(int(started.read_text()), signal.SIGKILL)  # the sender of the killed run
    assert [e["state"] for e in run("outbox", "--db", db, "-f", "json").json()] in (["sending"], ["waiting"])
    held = {**env, "CHATCRM_NOW": at(2)}  # the lease still holds: nobody sends it
    early = chatcrm("deliver", "--command", "echo 1", env=held)
    assert early.communicate(timeout=60)[0] == b""
    later = {**env, "CHATCRM_NOW": at(1 + delivery.lease_seconds(30) + 1)}
    again = chatcrm("deliver", "--command", "echo 99", env=later)
    out, err = again.communicate(timeout=60)
    assert out.decode() == "reply 1 (deal 1, tg:5550001): delivered, remote id 99\n", err


def test_a_senders_endless_output_costs_time_never_memory():
    import tracemalloc

    tracemalloc.start()
    try:
        delivered = command_sender("head -c 40000000 /dev/zero; echo err >&2", 30)(entry())
        flooded = command_sender("head -c 40000000 /dev/zero >&2; exit 3", 30)(entry())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert delivered == SendResult(True, remote_id=None)  # exit 0: delivered; 40 MB of NULs are no id
    assert not flooded.ok and flooded.error.startswith("exit 3")
    assert peak < 8 << 20  # the first MiB of stdout and the last 64 KiB of stderr are kept, not 40 MB


def test_a_value_the_environment_cannot_carry_is_a_failed_try_not_a_crash():
    result = command_sender("cat >/dev/null; echo 1", 10)(entry(text="a\x00b"))
    assert not result.ok and "cannot run the sender" in result.error and "null" in result.error


def test_a_reply_holding_a_nul_is_refused(store):
    live(store, "telegram-getupdates.json")
    result = run("reply", "tg:5550001", "-", "--db", store.path, input="a\x00b")
    assert (result.code, result.err) == (5, "Error: the reply text holds a NUL character, which no channel carries\n")
    assert run("outbox", "--db", store.path, "--format", "json").json() == []


def test_each_reply_is_reported_as_soon_as_its_result_is_recorded(store):
    live(store, "telegram-getupdates.json")
    for n in (1, 2):
        actions.reply(store, "tg:5550001", f"r{n}", now=at(n), author="Luis")
    heard = []

    class Watching(Sender):
        def __call__(self, entry):
            heard.append(("sending", entry["text"]))
            return super().__call__(entry)

    deliver(store, Watching(), Clock(at(5)), tried=lambda e: heard.append(("recorded", e["text"], e["state"])))
    assert heard == [("sending", "r1"), ("recorded", "r1", "delivered"), ("sending", "r2"), ("recorded", "r2", "delivered")]


def test_whatsapp_statuses_touch_only_whatsapp_replies_with_their_id(store):
    live(store, "telegram-getupdates.json")
    actions.reply(store, "tg:5550001", "Sí", now=T0, author="Luis")
    deliver(store, Sender(SendResult(True, remote_id=WAMID)), Clock(at(1)))  # a Telegram id that reads like a wamid
    live(store, "whatsapp-statuses.json")
    assert [e["state"] for e in service.outbox(store, now=at(2), everything=True)] == ["delivered"]
