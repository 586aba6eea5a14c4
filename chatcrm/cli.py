"""The command line: arguments in, one service call, the renderer out.

Heavy modules (the store, importers, tabulate) are imported inside the commands, so
`chatcrm --help` starts as fast as typer itself.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from typing import Annotated, List, Optional

import typer

from chatcrm.errors import ChatcrmError

app = typer.Typer(
    name="chatcrm",
    help="Open-channel chats in a CRM: the deals whose clients wait come first.",
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

Db = Annotated[
    Optional[str],
    typer.Option(
        "--db",
        metavar="PATH",
        help="The database (default: $CHATCRM_DB, else ~/.local/share/chatcrm/chatcrm.db).",
        show_default=False,
    ),
]
Tz = Annotated[
    Optional[str],
    typer.Option(
        "--tz",
        metavar="ZONE",
        help="Zone for times without an offset, and for tables (default: $CHATCRM_TZ, else UTC for "
        "input and the local zone for tables).",
    ),
]
At = Annotated[
    Optional[str],
    typer.Option("--at", metavar="TIME", help="Record at this time (ISO 8601) instead of now ($CHATCRM_NOW)."),
]
Deal = Annotated[str, typer.Argument(metavar="DEAL", help="The deal's id or key.")]
Format = Annotated[
    Optional[str],
    typer.Option(
        "--format",
        "-f",
        metavar="FORMAT",
        help="json, jsonl, csv, or a table style (simple, github, grid, plain, …).",
    ),
]


def _complete_status(incomplete: str) -> list[str]:
    return [status for status in ("unread", "green", "grey") if status.startswith(incomplete)]


def _complete_employee(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion of --agent: the employees in the database (never creates one)."""
    from chatcrm.store import EMPLOYEES_SQL, resolve_path

    path = resolve_path(ctx.params.get("db"))
    if not path.exists():
        return []
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
        try:
            names = [row[0] for row in conn.execute(EMPLOYEES_SQL)]
        finally:
            conn.close()
    except sqlite3.Error:
        return []
    return [name for name in names if name.casefold().startswith(incomplete.casefold())]


def _tz_name(tz: str | None) -> str | None:
    return tz or os.environ.get("CHATCRM_TZ") or None


def _input_zone(tz: str | None):
    from chatcrm import times

    return times.zone(_tz_name(tz))


def _display_zone(tz: str | None):
    from chatcrm import times

    name = _tz_name(tz)
    return times.zone(name) if name else None


def _now(at: str | None, tz: str | None) -> str:
    from chatcrm import service

    return service.parse_at(at, _input_zone(tz))


def _store(db: str | None):
    from chatcrm.store import open_store

    return open_store(db, on_upgrade=lambda note: typer.echo(note, err=True))


def _say(message: str) -> None:
    typer.echo(message)


@app.command()
def ingest(
    files: Annotated[List[str], typer.Argument(metavar="FILE…", help="Files to import; - reads stdin.")],
    fmt: Annotated[
        Optional[str],
        typer.Option("--format", metavar="FORMAT", help="jsonl, csv, telegram, whatsapp or messenger (default: detected)."),
    ] = None,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Import the valid records, report the rest.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Parse and report; write nothing.")] = False,
    agent: Annotated[
        Optional[List[str]], typer.Option("--agent", metavar="NAME", help="An employee's name in the export (repeatable).")
    ] = None,
    chat: Annotated[
        Optional[str], typer.Option("--chat", metavar="KEY", help="Chat key for exports that do not name one (WhatsApp).")
    ] = None,
    year: Annotated[
        Optional[int],
        typer.Option("--year", metavar="YYYY", min=1970, max=2100,
                     help="The year of WhatsApp dates written without one (old Android: `Mar 5, 8:11 PM`)."),
    ] = None,
    tz: Tz = None,
    db: Db = None,
) -> None:
    """Import events: chatcrm JSON Lines or CSV, Telegram, WhatsApp or Messenger exports."""
    from chatcrm import importers, render, service

    options = importers.ImportOptions(tz=_input_zone(tz), agents=tuple(agent or ()), chat=chat, year=year)
    if fmt is not None:
        importers.reader(fmt)  # an unknown format is a usage error before anything is read
    store = _store(db)

    def sources():
        for path in files:
            with render.progress_bar(importers.source_name(path), importers.source_size(path)) as progress:
                yield from importers.read_sources(path, fmt, options, progress)

    report = service.ingest(store, importers.checked(sources(), options), skip_invalid=skip_invalid, dry_run=dry_run)
    for invalid in report.invalid:
        typer.echo(f"skipped {invalid}", err=True)
    what = "would add" if dry_run else "added"
    names = ", ".join(f"{name} ({fmt_})" for name, fmt_ in report.formats.items())
    typer.echo(
        f"{what} {report.messages_added} message(s) and {report.events_added} other event(s); "
        f"{report.present} already present; {len(report.invalid)} invalid — {names}",
        err=True,
    )


@app.command()
def reply(
    deal: Deal,
    text: Annotated[str, typer.Argument(metavar="TEXT", help="The reply; - reads it from stdin.")],
    author: Annotated[
        Optional[str],
        typer.Option("--author", metavar="NAME", help="Who replies (default: $CHATCRM_AGENT, else your login name)."),
    ] = None,
    chat: Annotated[Optional[str], typer.Option("--chat", metavar="ID", help="The open chat, where the deal has several.")] = None,
    at: At = None,
    tz: Tz = None,
    db: Db = None,
) -> None:
    """Answer the client: an agent message on the deal's open chat (R3)."""
    from chatcrm import service

    if text == "-":
        text = sys.stdin.read().rstrip("\n")
    now = _now(at, tz)
    outcome = service.reply(_store(db), deal, text, now=now, author=author or _default_author(), chat=chat)
    _say(outcome.message)


def _default_author() -> str:
    name = os.environ.get("CHATCRM_AGENT")
    if name:
        return name
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "agent"


@app.command()
def close(
    deal: Deal,
    chat: Annotated[Optional[str], typer.Option("--chat", metavar="ID", help="The chat, where the deal has several open.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Close even though the client is waiting.")] = False,
    complete: Annotated[bool, typer.Option("--complete", help="Also complete the chat's activity.")] = False,
    at: At = None,
    tz: Tz = None,
    db: Db = None,
) -> None:
    """Close the deal's open chat session (R5); the activity stays active until completed."""
    from chatcrm import service

    now = _now(at, tz)
    _say(service.close(_store(db), deal, now=now, chat=chat, force=force, complete=complete).message)


@app.command()
def complete(
    deal: Deal,
    activity: Annotated[
        Optional[str], typer.Option("--activity", metavar="ID", help="The activity, where the deal has several active.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Complete even though the client is waiting.")] = False,
    at: At = None,
    tz: Tz = None,
    db: Db = None,
) -> None:
    """Complete the deal's active activity (R7); an open chat closes with it."""
    from chatcrm import service

    now = _now(at, tz)
    _say(service.complete(_store(db), deal, now=now, activity=activity, force=force).message)


@app.command()
def assign(
    deal: Deal,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The employee who becomes responsible.")],
    chat: Annotated[Optional[str], typer.Option("--chat", metavar="ID", help="The chat, where the deal has several open.")] = None,
    at: At = None,
    tz: Tz = None,
    db: Db = None,
) -> None:
    """Make an employee responsible for the deal's open chat (else its latest one)."""
    from chatcrm import service

    now = _now(at, tz)
    _say(service.assign(_store(db), deal, name, now=now, chat=chat).message)


def _duration(value: str | None, option: str) -> int | None:
    if value is None:
        return None
    from chatcrm import times
    from chatcrm.errors import UsageError

    try:
        return times.parse_duration(value)
    except ValueError as error:
        raise UsageError(f"{option}: {error}")


@app.command("list")
def list_(
    status: Annotated[
        Optional[str],
        typer.Option("--status", metavar="STATUS", help="unread, green or grey.", autocompletion=_complete_status),
    ] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", "-n", metavar="N", help="Show at most N deals.")] = None,
    agent: Annotated[
        Optional[str],
        typer.Option(
            "--agent",
            metavar="NAME",
            help="Only the deals this employee is responsible for.",
            autocompletion=_complete_employee,
        ),
    ] = None,
    sla: Annotated[
        Optional[str],
        typer.Option(
            "--sla",
            metavar="DURATION",
            help="Mark deals whose client has waited longer than this (15m, 1h30m; default: $CHATCRM_SLA).",
        ),
    ] = None,
    watch: Annotated[bool, typer.Option("--watch", help="On a terminal: redraw every --interval until Ctrl-C.")] = False,
    interval: Annotated[str, typer.Option("--interval", metavar="DURATION", help="Time between redraws.")] = "5s",
    fmt: Format = None,
    tz: Tz = None,
    db: Db = None,
) -> None:
    """The queue (R9): Unread deals, longest waiting first; then green; then grey."""
    from chatcrm import render, service, times

    fmt = render.check_format(fmt)
    display = _display_zone(tz)
    sla_seconds = _duration(sla if sla is not None else os.environ.get("CHATCRM_SLA") or None, "--sla")
    every = _duration(interval, "--interval")
    store = _store(db)

    def draw() -> str:
        queue = service.queue(store, now=times.now(), status=status, limit=limit, agent=agent, sla_seconds=sla_seconds)
        return render.queue_output(queue, fmt, display, render.use_color())

    if watch:
        _watch(draw, every)
    else:
        sys.stdout.write(draw())


def _watch(draw, every: int) -> None:
    """Redraw the screen with `draw()` every `every` seconds until interrupted."""
    import time
    from datetime import datetime

    from chatcrm.errors import UsageError

    if not sys.stdout.isatty():
        raise UsageError("--watch redraws a terminal; in scripts run `chatcrm list` in a loop instead")
    try:
        while True:
            text = draw()
            stamp = datetime.now().strftime("%H:%M:%S")
            sys.stdout.write(f"\x1b[H\x1b[2J{text}\nupdated {stamp} · every {every}s · Ctrl-C to stop\n")
            sys.stdout.flush()
            time.sleep(every)
    except KeyboardInterrupt:
        sys.stdout.write("\n")


@app.command()
def timeline(deal: Deal, fmt: Format = None, tz: Tz = None, db: Db = None) -> None:
    """The deal card's history (R10): sessions, activities and messages in time order."""
    from chatcrm import render, service

    fmt = render.check_format(fmt)
    display = _display_zone(tz)
    card, entries = service.timeline(_store(db), deal)
    sys.stdout.write(render.timeline_output(card, entries, fmt, display, render.use_color()))


@app.command()
def stats(
    since: Annotated[
        Optional[str],
        typer.Option("--since", metavar="WHEN", help="From this time or date (2026-11-24), or this long ago (7d)."),
    ] = None,
    until: Annotated[
        Optional[str], typer.Option("--until", metavar="WHEN", help="Until this time or date (not included), or this long ago.")
    ] = None,
    fmt: Format = None,
    tz: Tz = None,
    db: Db = None,
) -> None:
    """Response metrics: first response, waits, time to close — per channel and employee."""
    from chatcrm import render, stats as stats_, times

    fmt = render.check_format(fmt)
    now = times.now()
    start, end = stats_.period(since, until, _input_zone(tz), now)
    report = stats_.compute(_store(db), now=now, since=start, until=end).as_dict()
    sys.stdout.write(render.stats_output(report, fmt, _display_zone(tz)))


@app.command()
def export(
    output: Annotated[
        Optional[str], typer.Option("--output", "-o", metavar="FILE", help="Write to FILE instead of stdout.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", metavar="FORMAT", help="jsonl or csv.")] = "jsonl",
    deal: Annotated[Optional[str], typer.Option("--deal", metavar="DEAL", help="Only this deal's facts.")] = None,
    db: Db = None,
) -> None:
    """Every stored fact as chatcrm events, in time order: `ingest` rebuilds the database."""
    from chatcrm import render, service
    from chatcrm.errors import UsageError

    if fmt not in ("jsonl", "csv"):
        raise UsageError(f"unknown --format {fmt!r} for export (use jsonl or csv)")
    store = _store(db)
    with store.read():
        records = service.export(store, deal)
        if output is None or output == "-":
            count = render.write_events(records, fmt, sys.stdout)
        else:
            count = _write_atomically(output, lambda stream: render.write_events(records, fmt, stream))
    where = "stdout" if output in (None, "-") else output
    typer.echo(f"exported {count} event(s) to {where}", err=True)


def _write_atomically(path: str, write) -> int:
    """Write a file through a temporary sibling and a rename: never a half-written file."""
    import tempfile

    from chatcrm.errors import UsageError

    target = os.path.abspath(path)
    try:
        fd, temporary = tempfile.mkstemp(prefix=".chatcrm-export-", dir=os.path.dirname(target))
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as stream:
            result = write(stream)
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise
    return result


@app.command()
def check(db: Db = None) -> None:
    """Verify the database: integrity, foreign keys, and derived states against the facts."""
    store = _store(db)
    problems = store.check()
    if problems:
        for problem in problems:
            typer.echo(problem)
        typer.echo(f"Error: {len(problems)} problem(s) in {store.path}", err=True)
        raise typer.Exit(1)
    counts = store.counts()
    typer.echo(
        f"ok: {store.path}: integrity and foreign keys hold; {counts['deals']} deals, {counts['chats']} chats, "
        f"{counts['activities']} activities match what {counts['messages']} messages and "
        f"{counts['chat_events'] + counts['assignments']} other events give"
    )


def main(argv: list[str] | None = None) -> None:
    """The console script: runs a command; errors become one line on stderr and an exit code."""
    from typer.main import get_command

    command = get_command(app)
    if not (sys.argv[1:] if argv is None else argv):
        argv = ["--help"]
    try:
        code = command.main(args=argv, prog_name="chatcrm", standalone_mode=False)
    except ChatcrmError as error:
        _fail(str(error), error.exit_code)
    except sqlite3.Error as error:
        _fail(f"database error: {error}", 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except BrokenPipeError:
        _quiet_stdout()
        sys.exit(1)
    except typer.Abort:
        _fail("interrupted", 130)
    except Exception as error:  # noqa: BLE001 - the edge of the program
        if _is_usage_error(error):
            _fail(f"{error.format_message()} (see '{_usage_hint(command, argv)} --help')", 2)
        if os.environ.get("CHATCRM_DEBUG"):
            raise
        _fail(f"internal error: {type(error).__name__}: {error} (set CHATCRM_DEBUG=1 for details)", 1)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_stdout()
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def _is_usage_error(error: Exception) -> bool:
    return hasattr(error, "format_message") and hasattr(error, "exit_code")


def _usage_hint(group, argv: list[str] | None) -> str:
    args = sys.argv[1:] if argv is None else argv
    name = next((a for a in args if not a.startswith("-")), None)
    return f"chatcrm {name}" if name in group.commands else "chatcrm"


def _quiet_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _fail(message: str, code: int) -> None:
    sys.stderr.write(f"Error: {message}\n")
    sys.exit(code)
