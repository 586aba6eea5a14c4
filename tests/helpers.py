import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from chatcrm import actions, service
from chatcrm.events import Event
from chatcrm.importers.native import event_from_record
from chatcrm.store import open_store
from chatcrm.times import UTC
from chatcrm.store import queries

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SHARED_EXPORTS = ROOT.parent / "shared" / "exports"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


class Terminal(io.StringIO):
    """Captured output that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def run(*args, input: str | bytes | None = None, tty: bool = False) -> Result:
    """Run the console script in-process; returns exit code, stdout and stderr (both
    seen by chatcrm as terminals when `tty`)."""
    from chatcrm.cli import main

    data = input.encode() if isinstance(input, str) else (input or b"")
    out, err = (Terminal(), Terminal()) if tty else (io.StringIO(), io.StringIO())
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
    sys.stdout, sys.stderr = out, err
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
    return Result(code, out.getvalue(), err.getvalue())


def msg(chat, at, frm="client", text="hello", **extra) -> dict:
    return {"type": "message", "chat": chat, "from": frm, "text": text, "at": at, **extra}


def close_(chat, at, **extra) -> dict:
    return {"type": "close", "chat": chat, "at": at, **extra}


def complete_(chat, at, **extra) -> dict:
    return {"type": "complete", "chat": chat, "at": at, **extra}


def events(records, source="test.jsonl") -> list[Event]:
    out = []
    for line, record in enumerate(records, start=1):
        event = event_from_record(record, source, line, UTC)
        assert isinstance(event, Event), event
        out.append(event)
    return out


def ingest(store, records, source="test.jsonl", **kwargs):
    return service.ingest(store, [(source, "jsonl", events(records, source))], **kwargs)


def write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def deal(store, ref):
    return actions.find_deal(store, str(ref))


def said(outcome) -> str:
    """A command's outcome as the CLI words it (times in UTC)."""
    from chatcrm import render

    return render.outcome_line(outcome, UTC)


def chats(store, ref):
    return queries.deal_chats(store, deal(store, ref)["deal_id"])


def nothing_written() -> bool:
    """After a refused command on a new database: no database was created (or, where one
    was there, its queue is still empty)."""
    import os

    db = Path(os.environ["CHATCRM_DB"])
    return not db.exists() or run("list", "-f", "json").json() == []


def read_export(path, **options) -> list[Event]:
    """Every event an export gives (read as `ingest` reads it, options checked as it checks
    them); a test fails if any record is invalid."""
    from chatcrm import importers
    from chatcrm.importers import ImportOptions

    options = ImportOptions(**options)
    out = []
    for _, _, events in importers.checked(importers.read_sources(str(path), None, options), options):
        out.extend(events)
    assert all(isinstance(e, Event) for e in out), out
    return out


def checked_after(db: Path, *statements: str) -> Result:
    """`chatcrm check` of `db` after `statements` changed it behind chatcrm's back (each
    run and committed by a plain sqlite3 connection)."""
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()
    return run("check", "--db", db)
