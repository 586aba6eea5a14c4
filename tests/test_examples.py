"""The senders and the fetcher in examples/, run against a local server on 127.0.0.1 that
answers as the Telegram Bot API and the WhatsApp Cloud API do."""

import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from tests.helpers import FIXTURES, ROOT, run

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="the example senders need curl")

EXAMPLES = ROOT / "examples"
LIVE = FIXTURES / "live"
BOT_TOKEN = "123456:TEST-token"
WA_TOKEN = "EAAG-test-token"


class FakeApis(BaseHTTPRequestHandler):
    """Telegram's /bot<token>/sendMessage and /getUpdates; WhatsApp's /v21.0/<id>/messages."""

    requests: list = []
    updates: list = []

    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlparse(self.path)
        self.requests.append(("GET", url.path, parse_qs(url.query), dict(self.headers)))
        if url.path != f"/bot{BOT_TOKEN}/getUpdates":
            return self.answer(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        offset = int(parse_qs(url.query).get("offset", ["0"])[0])
        return self.answer(200, {"ok": True, "result": [u for u in self.updates if u["update_id"] >= offset]})

    def do_POST(self):
        url = urlparse(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Type", "").startswith("application/json"):
            body = json.loads(raw)
        else:
            body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        self.requests.append(("POST", url.path, body, dict(self.headers)))
        if url.path.startswith("/bot"):
            if url.path != f"/bot{BOT_TOKEN}/sendMessage":
                return self.answer(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
            if body.get("chat_id") == "404":
                return self.answer(400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"})
            return self.answer(200, {"ok": True, "result": {
                "message_id": 900 + len(self.requests), "chat": {"id": int(body["chat_id"]), "type": "private"},
                "date": 1795951900, "text": body["text"]}})
        if self.headers.get("Authorization") != f"Bearer {WA_TOKEN}":
            return self.answer(401, {"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}})
        return self.answer(200, {"messaging_product": "whatsapp", "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                                 "messages": [{"id": f"wamid.TEST{len(self.requests)}"}]})


@pytest.fixture
def apis(monkeypatch):
    FakeApis.requests = []
    FakeApis.updates = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApis)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("TELEGRAM_API_BASE", base)
    monkeypatch.setenv("WHATSAPP_API_BASE", base + "/v21.0")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("WHATSAPP_TOKEN", WA_TOKEN)
    monkeypatch.setenv("CHATCRM_NOW", "2026-11-29T12:00:00Z")
    yield FakeApis
    server.shutdown()
    server.server_close()


TEXT = 'Hola "Ana", 50 % menos\nen la talla M — ¿vale? $HOME `x`'


def test_the_telegram_sender_sends_the_reply_and_its_message_id_is_kept(apis):
    assert run("ingest", LIVE / "telegram-getupdates.json", LIVE / "telegram-business.jsonl").code == 0
    assert run("reply", "tg:5550001", TEXT).code == 0
    assert run("reply", "tg:7770002", "Abrimos a las 10").code == 0
    result = run("deliver", "--command", EXAMPLES / "send-channel.sh")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "reply 1 (deal 1, tg:5550001): delivered, remote id 901",
        "reply 2 (deal 2, tg:7770002): delivered, remote id 902",
    ]
    (_, path, bot, _), (_, _, business, _) = apis.requests
    assert path == f"/bot{BOT_TOKEN}/sendMessage"
    assert bot == {"chat_id": "5550001", "text": TEXT}
    assert business == {"chat_id": "7770002", "text": "Abrimos a las 10", "business_connection_id": "BQADBAADfxgAAlsVqVE"}


def test_the_whatsapp_sender_posts_a_text_message_to_the_number_the_client_wrote_to(apis):
    assert run("ingest", LIVE / "whatsapp-message.json").code == 0
    assert run("reply", "wa:34600111222", TEXT).code == 0
    result = run("deliver", "--command", EXAMPLES / "send-whatsapp.sh")
    assert result.out == "reply 1 (deal 1, wa:34600111222): sent, remote id wamid.TEST1\n", result.err
    method, path, body, headers = apis.requests[0]
    assert (method, path) == ("POST", "/v21.0/106540352242922/messages")
    assert body == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "34600111222",
                    "type": "text", "text": {"preview_url": False, "body": TEXT}}
    assert headers["Authorization"] == f"Bearer {WA_TOKEN}"


def test_an_api_error_is_a_failed_try_worded_by_the_apis_answer(apis, monkeypatch):
    assert run("ingest", LIVE / "whatsapp-message.json").code == 0
    assert run("reply", "wa:34600111222", "hola").code == 0
    monkeypatch.setenv("WHATSAPP_TOKEN", "expired")
    result = run("deliver", "--command", EXAMPLES / "send-whatsapp.sh")
    assert result.code == 0
    assert result.out.startswith("reply 1 (deal 1, wa:34600111222): try 1 failed, retry at 2026-11-29T12:01:00Z: exit 22: WhatsApp: ")
    assert "Invalid OAuth access token." in result.out
    assert run("outbox", "-f", "json").json()[0]["state"] == "waiting"


def test_a_sender_without_its_token_fails_clearly(apis, monkeypatch):
    assert run("ingest", LIVE / "telegram-getupdates.json").code == 0
    assert run("reply", "tg:5550001", "hola").code == 0
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN")
    result = run("deliver", "--command", EXAMPLES / "send-telegram.sh")
    assert "TELEGRAM_BOT_TOKEN" in result.out and "failed" in result.out
    assert apis.requests == []


def test_the_fetcher_imports_new_updates_and_confirms_them_only_once_imported(apis, tmp_path):
    apis.updates = json.loads((LIVE / "telegram-getupdates.json").read_text())["result"]
    env = {**os.environ, "CHATCRM_SPOOL": str(tmp_path / "spool"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    first = subprocess.run([EXAMPLES / "fetch-telegram.sh"], env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "added 2 message(s)" in first.stderr
    assert (tmp_path / "spool" / "telegram-offset").read_text().strip() == "871500004"
    second = subprocess.run([EXAMPLES / "fetch-telegram.sh"], env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0 and second.stderr == ""
    assert apis.requests[-1][2]["offset"] == ["871500004"]
    assert [d["deal_key"] for d in run("list", "-f", "json").json()] == ["tg:5550001"]


def test_the_whatsapp_sender_json_encodes_the_recipient_and_refuses_a_phone_id_that_is_not_digits(apis):
    """A recipient stored before ids were checked (or by another tool) cannot add fields to
    the request: it arrives as one string, whatever it holds; a phone number id that is
    not digits (it goes into the URL and curl's configuration) is not sent at all."""
    import sqlite3

    assert run("ingest", LIVE / "whatsapp-message.json").code == 0
    assert run("reply", "wa:34600111222", "hola").code == 0
    assert run("reply", "wa:34600111222", "adiós").code == 0
    hostile = '34600111222","to":"34999999999'
    with sqlite3.connect(os.environ["CHATCRM_DB"]) as conn:
        conn.execute("UPDATE outbox SET recipient = ? WHERE id = 1", (hostile,))
        conn.execute("UPDATE outbox SET via = ? WHERE id = 2", ('1"\nurl = "http://elsewhere',))
    result = run("deliver", "--command", EXAMPLES / "send-whatsapp.sh")
    assert result.code == 0, result.err
    assert len(apis.requests) == 1 and apis.requests[0][2]["to"] == hostile
    assert result.out.splitlines()[1].startswith("reply 2 (deal 1, wa:34600111222): try 1 failed")
    assert "the phone number id is not digits; not sent" in result.out


def test_the_fetcher_skips_an_unreadable_update_and_keeps_few_failed_batches(apis, tmp_path):
    good = json.loads((LIVE / "telegram-getupdates.json").read_text())["result"]
    apis.updates = [{"update_id": good[0]["update_id"] - 1, "message": {"chat": "not an object"}}, *good]
    env = {**os.environ, "CHATCRM_SPOOL": str(tmp_path / "spool"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    fetched = subprocess.run([EXAMPLES / "fetch-telegram.sh"], env=env, capture_output=True, text=True, timeout=60)
    assert fetched.returncode == 0, fetched.stderr
    assert "skipped" in fetched.stderr and "added 2 message(s)" in fetched.stderr
    assert (tmp_path / "spool" / "telegram-offset").read_text().strip() == "871500004"
    env["CHATCRM_DB"] = str(tmp_path / "not-a-db")
    (tmp_path / "not-a-db").write_text("not sqlite")
    apis.updates = [{**update, "update_id": update["update_id"] + 10} for update in good]
    for _ in range(7):
        failed = subprocess.run([EXAMPLES / "fetch-telegram.sh"], env=env, capture_output=True, text=True, timeout=60)
        assert failed.returncode == 1
    assert len(list((tmp_path / "spool").glob("telegram-*.json.failed"))) == 5
    assert not list((tmp_path / "spool").glob("telegram-*.json"))
    assert (tmp_path / "spool" / "telegram-offset").read_text().strip() == "871500004"
