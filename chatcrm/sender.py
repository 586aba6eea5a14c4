"""Running a sender command for one reply (`chatcrm deliver --command CMD`).

CMD runs through the shell with the reply as JSON on stdin, and the same fields in the
environment for scripts that would rather not parse JSON (`CHATCRM_CHANNEL`,
`CHATCRM_CHAT_KEY`, `CHATCRM_CLIENT_ID`, `CHATCRM_CLIENT_ID_JSON`, `CHATCRM_TEXT`,
`CHATCRM_TEXT_JSON` — those two as JSON strings —, `CHATCRM_REPLY_ID`, `CHATCRM_BUSINESS_CONNECTION_ID`,
`CHATCRM_PHONE_NUMBER_ID`). Exit status 0 is delivered; what it prints is the channel's
answer: Telegram's `{"ok": true, "result": {"message_id": …}}`, WhatsApp's
`{"messages": [{"id": "wamid…"}]}`, or the remote id alone on the first line. Any other
status is a failure, worded by the last line of its stderr. A command that runs longer
than the timeout is stopped (its whole process group) and counted as a failure.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from dataclasses import dataclass

OUTPUT_LIMIT = 1 << 20


@dataclass
class SendResult:
    ok: bool
    remote_id: str | None = None
    error: str | None = None


def environment(entry: dict) -> dict[str, str]:
    """The reply's fields as CHATCRM_* variables for the command."""
    values = {
        "CHATCRM_REPLY_ID": entry["reply_id"],
        "CHATCRM_CHANNEL": entry["channel"],
        "CHATCRM_CHAT_KEY": entry["chat_key"],
        "CHATCRM_CLIENT_ID": entry["client_id"],
        "CHATCRM_CLIENT_ID_JSON": json.dumps(str(entry["client_id"]), ensure_ascii=False),
        "CHATCRM_TEXT": entry["text"],
        "CHATCRM_TEXT_JSON": json.dumps(entry["text"], ensure_ascii=False),
        "CHATCRM_BUSINESS_CONNECTION_ID": entry.get("business_connection_id") or "",
        "CHATCRM_PHONE_NUMBER_ID": entry.get("phone_number_id") or "",
    }
    return {name: str(value) for name, value in values.items()}


def command_sender(command: str, timeout: float):
    """A `send(entry) -> SendResult` that runs `command` once per reply."""

    def send(entry: dict) -> SendResult:
        payload = json.dumps(entry, ensure_ascii=False).encode("utf-8") + b"\n"
        env = {**os.environ, **environment(entry)}
        try:
            process = subprocess.Popen(
                command, shell=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=env, start_new_session=True,
            )
        except OSError as error:
            return SendResult(False, error=f"cannot run the sender: {error.strerror or error}")
        try:
            out, err = process.communicate(payload, timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(process)
            return SendResult(False, error=f"the sender took longer than {timeout:g} s and was stopped")
        if process.returncode != 0:
            return SendResult(False, error=_failure(process.returncode, err, out))
        return SendResult(True, remote_id=remote_id(out[:OUTPUT_LIMIT].decode("utf-8", errors="replace")))

    return send


def _stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def _failure(code: int, err: bytes, out: bytes) -> str:
    lines = [line.strip() for line in err.decode("utf-8", errors="replace").splitlines() if line.strip()]
    if not lines:
        lines = [line.strip() for line in out.decode("utf-8", errors="replace").splitlines() if line.strip()]
    why = f"killed by signal {-code}" if code < 0 else f"exit {code}"
    return f"{why}: {lines[-1][:500]}" if lines else why


def remote_id(output: str) -> str | None:
    """The id the channel gave the message, from what the sender printed."""
    text = output.strip()
    if not text:
        return None
    try:
        answer = json.loads(text)
    except ValueError:
        first = text.splitlines()[0].strip()
        return first[:200] or None
    if isinstance(answer, dict):
        result = answer.get("result")
        if isinstance(result, dict) and result.get("message_id") is not None:
            return str(result["message_id"])
        messages = answer.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], dict) and messages[0].get("id"):
            return str(messages[0]["id"])
        for key in ("message_id", "id"):
            if answer.get(key) is not None:
                return str(answer[key])
        return None
    if isinstance(answer, (int, str)):
        return str(answer)
    return None
