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
import threading
import time
from dataclasses import dataclass

OUTPUT_LIMIT = 1 << 20  # bytes of a sender's stdout kept (its answer); the rest is read and dropped
ERROR_TAIL = 1 << 16  # bytes of the end of its stderr kept (its last line words a failure)
MAX_REMOTE_ID = 200  # characters of a remote id


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
        try:
            env = {**os.environ, **environment(entry)}
            process = subprocess.Popen(
                command, shell=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=env, start_new_session=True,
            )
        except (OSError, ValueError) as error:  # ValueError: a NUL in a value the environment cannot carry
            return SendResult(False, error=f"cannot run the sender: {getattr(error, 'strerror', None) or error}")
        code, out, err = _run(process, payload, timeout)
        if code is None:
            return SendResult(False, error=f"the sender took longer than {timeout:g} s and was stopped")
        if code != 0:
            return SendResult(False, error=_failure(code, err, out))
        return SendResult(True, remote_id=remote_id(out.decode("utf-8", errors="replace")))

    return send


def _run(process: subprocess.Popen, payload: bytes, timeout: float) -> tuple[int | None, bytes, bytes]:
    """Feed `payload` to the process and wait for it, keeping the first OUTPUT_LIMIT bytes
    of its stdout and the last ERROR_TAIL of its stderr, the rest read and dropped: a
    sender that prints without end costs time, never memory. None: it was stopped."""
    out, err = bytearray(), bytearray()

    def feed() -> None:
        try:
            process.stdin.write(payload)
            process.stdin.close()
        except OSError:  # it exited, or closed its stdin, without reading it all
            pass

    def keep_head(stream, kept: bytearray) -> None:
        while chunk := stream.read1(1 << 16):
            if len(kept) < OUTPUT_LIMIT:
                kept += chunk[: OUTPUT_LIMIT - len(kept)]

    def keep_tail(stream, kept: bytearray) -> None:
        while chunk := stream.read1(1 << 16):
            kept += chunk
            del kept[:-ERROR_TAIL]

    threads = [threading.Thread(target=feed, daemon=True),
               threading.Thread(target=keep_head, args=(process.stdout, out), daemon=True),
               threading.Thread(target=keep_tail, args=(process.stderr, err), daemon=True)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    try:
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        code = None
    for thread in threads:  # what it left running (`cmd &`) may hold the pipes open
        thread.join(max(0.0, deadline - time.monotonic()))
    if code is None or any(thread.is_alive() for thread in threads):
        _stop(process)
        for thread in threads:
            thread.join(5)
    for stream in (process.stdout, process.stderr):
        stream.close()
    return code, bytes(out), bytes(err)


def _stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.wait(timeout=5)
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
        return _id_or_none(first)
    if isinstance(answer, dict):
        result = answer.get("result")
        if isinstance(result, dict) and result.get("message_id") is not None:
            return _id_or_none(result["message_id"])
        messages = answer.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], dict) and messages[0].get("id"):
            return _id_or_none(messages[0]["id"])
        for key in ("message_id", "id"):
            if answer.get(key) is not None:
                return _id_or_none(answer[key])
        return None
    return _id_or_none(answer)


def _id_or_none(value) -> str | None:
    """A remote id as the channels give them: a number or a short printable token (a
    wamid is some 60 characters). Anything else — a long text, control characters, a
    structure — says the sender printed something other than an id: none is kept."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    text = str(value).strip()
    if not text or len(text) > MAX_REMOTE_ID or not text.isprintable():
        return None
    return text
