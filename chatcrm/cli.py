"""The command line: arguments in, one call of actions or service, the renderer out.

This is the edge of the program: the only module that reads the clock, the environment
and the terminal, and the one place where errors become a line on stderr and an exit
code. Heavy modules (the store, the importers, tabulate) are imported inside the commands
that use them, so that `chatcrm --help` starts as fast as typer itself.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from chatcrm.errors import ChatcrmError
from chatcrm.launch import io_failure, quiet_stdout

app = typer.Typer(
    name="chatcrm",
    help="Open-channel chats in a CRM, from the shell: the deals whose clients wait come first.\n\n"
    "Import your chat exports, see who is waiting, answer, close and complete. "
    "Run 'chatcrm COMMAND --help' for a command's options and examples.",
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

STATUSES = ("unread", "due", "green", "pending", "grey")  # rules/statuses.py; a test checks they agree

Db = Annotated[
    Optional[str],
    typer.Option(
        "--db",
        metavar="PATH",
        help="The database (default: $CHATCRM_DB, else the settings file's db, else ~/.local/share/chatcrm/chatcrm.db).",
        show_default=False,
    ),
]
# --tz, worded for what each command does with a zone.
TzWrite = Annotated[
    Optional[str],
    typer.Option(
        "--tz",
        metavar="ZONE",
        help="Zone of an --at time without an offset (default: $CHATCRM_TZ, else the settings file, else UTC), and of the time "
        "this command prints (default: $CHATCRM_TZ, else the settings file, else the local zone). Europe/Madrid, +03:00, UTC.",
    ),
]
TzImport = Annotated[
    Optional[str],
    typer.Option(
        "--tz",
        metavar="ZONE",
        help="Zone of the export's times that carry no offset, as on the phone that wrote it "
        "(default: $CHATCRM_TZ, else the settings file, else UTC). Europe/Madrid, +03:00, UTC.",
    ),
]
TzShow = Annotated[
    Optional[str],
    typer.Option(
        "--tz",
        metavar="ZONE",
        help="Zone of the times shown (default: $CHATCRM_TZ, else the settings file, else the local zone). Europe/Madrid, +03:00, UTC.",
    ),
]
TzPeriod = Annotated[
    Optional[str],
    typer.Option(
        "--tz",
        metavar="ZONE",
        help="Zone of the times shown and of --since/--until dates (default: $CHATCRM_TZ, else the settings file, else the local "
        "zone for display and UTC for dates).",
    ),
]
At = Annotated[
    Optional[str],
    typer.Option("--at", metavar="TIME", help="Record at this time (ISO 8601) instead of now ($CHATCRM_NOW)."),
]
Deal = Annotated[str, typer.Argument(metavar="DEAL", help="The deal's id (as `chatcrm list` shows it) or its key.")]
ChatOfDeal = Annotated[
    Optional[str], typer.Option("--chat", metavar="ID", help="The chat, where the deal has several open.")
]
ActivityOfDeal = Annotated[
    Optional[str], typer.Option("--activity", metavar="ID", help="The activity, where the deal has several active.")
]
Format = Annotated[
    Optional[str],
    typer.Option(
        "--format",
        "-f",
        metavar="FORMAT",
        help="json, jsonl, csv, or a table style (simple, github, grid, plain, …).",
    ),
]


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"chatcrm {version('chatcrm')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            from chatcrm import __version__

            typer.echo(f"chatcrm {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", help="Print chatcrm's version and exit.", callback=_version, is_eager=True),
    ] = False,
) -> None:
    pass


def _examples(*lines: str) -> str:
    """A command's examples, shown at the end of its help."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def _complete_status(incomplete: str) -> list[str]:
    return [status for status in STATUSES if status.startswith(incomplete)]


def _complete_employee(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion of --agent: the employees in the database (never creates one)."""
    from chatcrm.store.connection import employee_names_read_only

    try:
        names = employee_names_read_only(_db_path(ctx.params.get("db")))
    except ChatcrmError:  # a broken settings file: nothing to complete
        return []
    return [name for name in names if name.casefold().startswith(incomplete.casefold())]


# ------------------------------------------------------------------ the edge: environment and clock


_loaded_settings: list = []  # the settings file, read once per command (chatcrm.settings)


def _settings():
    if not _loaded_settings:
        from chatcrm import settings

        _loaded_settings.append(settings.load(os.environ, _check_setting))
    return _loaded_settings[0]


def _check_setting(key: str, value: str, view: bool = False) -> None:
    """A value of the settings file is one the option would take (ValueError if not); a
    view's format may be `ids`, as `list --format ids`."""
    from chatcrm import render, times
    from chatcrm.errors import UsageError
    from chatcrm.rules import statuses

    try:
        if key == "tz":
            times.zone(value)
        elif key == "sla":
            times.parse_duration(value)
        elif key == "format":
            render.check_format(value, ids=view)
        elif key == "status":
            statuses.parse(value)
    except UsageError as error:
        raise ValueError(str(error).replace("unknown --format", "unknown format"))


def _default_db() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return str(Path(base) / "chatcrm" / "chatcrm.db")


def _db_setting(db: str | None):
    """`--db`, else `$CHATCRM_DB`, else the settings file's `db`, else
    `$XDG_DATA_HOME/chatcrm/chatcrm.db` (that is, `~/.local/share/chatcrm/chatcrm.db`)."""
    setting = _settings().value("db", db or None, os.environ, _default_db())
    if setting.source not in ("option", "default") and not setting.source.startswith("environment"):
        return type(setting)(os.path.expanduser(setting.value), setting.source)  # the file's `~/…`
    return setting


def _db_path(db: str | None) -> Path:
    return Path(_db_setting(db).value)


def _tz_name(tz: str | None) -> str | None:
    return _settings().value("tz", tz or None, os.environ).value or None


def _output_format(fmt: str | None, view: dict | None = None) -> str | None:
    """`--format`, else the view's, else the settings file's (else the renderer's table)."""
    if fmt is None and view and "format" in view:
        return view["format"].value
    return _settings().value("format", fmt, {}).value


def _input_zone(tz: str | None):
    from chatcrm import times

    return times.zone(_tz_name(tz))


_shown_zone: list = []  # the zone the command shows times in, once known (for its errors too)


def _display_zone(tz: str | None):
    from chatcrm import times

    name = _tz_name(tz)
    zone = times.zone(name) if name else None
    _shown_zone[:] = [zone]
    return zone


def _clock() -> str:
    """The current time: `$CHATCRM_NOW` when set (reproducible fixture builds), else the clock."""
    from chatcrm import times
    from chatcrm.errors import UsageError

    fixed = os.environ.get("CHATCRM_NOW")
    if fixed:
        try:
            return times.parse(fixed)
        except ValueError as error:
            raise UsageError(f"CHATCRM_NOW: {error}")
    return times.current()


def _now(at: str | None, tz: str | None) -> str:
    """`--at TIME` (read in the input zone when it has no offset), else the current time."""
    from chatcrm import times
    from chatcrm.errors import UsageError

    if at is None:
        return _clock()
    try:
        return times.parse(at, _input_zone(tz))
    except ValueError as error:
        raise UsageError(f"--at: {error}")


def _color(stream=None) -> bool:
    """Colours only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    from chatcrm import render

    return render.use_color(stream or sys.stdout, no_color=bool(os.environ.get("NO_COLOR")))


def _terminal(stream=None) -> bool:
    """Whether output goes to a terminal: text from clients and files is then shown with
    its control characters escaped, CSV included."""
    isatty = getattr(stream or sys.stdout, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def _store(db: str | None, *, read_only: bool = False, create: bool = False):
    """The database: read-only commands never create or change it; only `ingest` creates one."""
    from chatcrm.store import open_store

    store = open_store(_db_path(db), on_upgrade=lambda note: typer.echo(note, err=True), read_only=read_only,
                       create=create)
    _opened.append(store)
    return store


_opened: list = []  # the stores this command opened, closed when it ends (main)


def _hint_if_empty(store) -> None:
    """On an empty database, say once on stderr how to begin; stdout is left as it is."""
    from chatcrm.store import queries

    if queries.is_empty(store):
        typer.echo(
            "hint: the database is empty; import a chat export with `chatcrm ingest FILE` "
            "(the README's sample day: chatcrm ingest fixtures/support-day.jsonl)",
            err=True,
        )


def _say(outcome, zone) -> None:
    from chatcrm import render

    typer.echo(render.outcome_line(outcome, zone))


# ------------------------------------------------------------------ commands


@app.command(epilog=_examples('chatcrm ingest fixtures/support-day.jsonl', 'chatcrm ingest --agent "Tienda Sol" --tz Europe/Madrid "WhatsApp Chat with Marta.txt"', 'some-script | chatcrm ingest -', 'chatcrm ingest fixtures/live/telegram-getupdates.json'))
def ingest(
    files: Annotated[List[str], typer.Argument(metavar="FILE...", help="Files to import; - reads stdin.")],
    fmt: Annotated[
        Optional[str],
        typer.Option("--format", "-f", metavar="FORMAT",
                     help="jsonl, csv, telegram, whatsapp, messenger, telegram-bot or whatsapp-cloud "
                     "(default: detected from the content)."),
    ] = None,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Import the valid records, report the rest.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Read and report; write nothing.")] = False,
    agent: Annotated[
        Optional[List[str]],
        typer.Option("--agent", metavar="NAME", help="An employee's name as the export writes it (repeatable)."),
    ] = None,
    chat: Annotated[
        Optional[str], typer.Option("--chat", metavar="KEY", help="The chat key, for an export that does not say it.")
    ] = None,
    year: Annotated[
        Optional[int],
        typer.Option("--year", metavar="YYYY", min=1970, max=2100,
                     help="The year of WhatsApp dates written without one (old Android: `Mar 5, 8:11 PM`)."),
    ] = None,
    dates: Annotated[
        Optional[str],
        typer.Option("--dates", metavar="ORDER",
                     help="The day/month order of WhatsApp dates, dmy or mdy (default: inferred from the file)."),
    ] = None,
    tz: TzImport = None,
    db: Db = None,
) -> None:
    """Import chat exports or chatcrm events into the database.

    Reads chatcrm's own JSON Lines or CSV, the exports of Telegram Desktop, WhatsApp
    and Messenger/Instagram, and what the Telegram Bot API and the WhatsApp Cloud API
    deliver (updates, webhooks), telling them apart by their content. Everything named is
    imported in one transaction: all or nothing. Importing a file again adds only what is
    new. A summary goes to stderr.
    """
    from chatcrm import importers, render, service

    if dates is not None and dates not in ("dmy", "mdy"):
        raise typer.BadParameter(f"{dates!r} is not dmy or mdy", param_hint="'--dates'")
    options = importers.ImportOptions(tz=_input_zone(tz), agents=tuple(agent or ()), chat=chat, year=year,
                                      dates=dates)
    if files.count("-") > 1:
        from chatcrm.errors import UsageError

        raise UsageError("- reads stdin, which can be read once: give - once")
    if "-" in files:
        _stdin("ingest -")
    if fmt is not None:
        importers.reader(fmt)  # an unknown format is a usage error before anything is read
    now = _clock()
    identified = [service.ImportedFile(importers.source_name(path)) for path in files]
    input_of: list[int] = []  # for each source read, the input it came from
    digests: list = []  # and the SHA-256 of its bytes, taken as it is read
    if dry_run and not _db_path(db).exists():
        import tempfile

        # Nothing is written by a dry run, not even a new database: it runs on a scratch one.
        scratch = tempfile.TemporaryDirectory(prefix="chatcrm-dry-run-")
        store = _store(os.path.join(scratch.name, "chatcrm.db"), create=True)
    else:
        new = not _db_path(db).exists()
        try:
            store = _store(db, create=True)
        except BaseException:  # stopped while the new database was being made: none is left
            if new:
                from chatcrm.store.connection import remove_database

                remove_database(_db_path(db))
            raise

    def sources():
        for index, path in enumerate(files):
            with render.progress_bar(importers.source_name(path), importers.source_size(path)) as progress:
                for source in importers.read_sources(path, fmt, options, progress, digests):
                    input_of.append(index)
                    yield source

    try:
        report = service.ingest(store, importers.checked(sources(), options), skip_invalid=skip_invalid,
                                dry_run=dry_run, now=now, files=identified, input_of=input_of, digest_of=digests,
                                tz=_tz_name(tz) or "UTC", agents=agent or (), chat=chat)
    except BaseException:  # refused, interrupted (Ctrl-C) or stopped (kill): rolled back
        if not dry_run and new:
            from chatcrm.store.connection import discard_if_empty

            discard_if_empty(store)  # an import that did not happen into a new database leaves no database
        raise
    for invalid in report.invalid:
        typer.echo(render.skipped_line(invalid), err=True)
    for reimport in report.reimports:
        typer.echo(render.reimport_line(reimport), err=True)
    typer.echo(render.ingest_summary(report, dry_run), err=True)


Deals = Annotated[
    List[str],
    typer.Argument(metavar="DEAL...", help="Deals by id or key; - alone reads them from stdin, one per line.",
                   show_default=False),
]
SkipRefused = Annotated[
    bool,
    typer.Option("--skip-refused", help="With several deals: apply the others when a rule refuses some, and list "
                 "what was skipped (default: change nothing)."),
]


def _deal_refs(args: list[str]) -> list[str]:
    """The deals a command names: its arguments, or with `-` alone the lines of stdin
    (blank lines ignored)."""
    from chatcrm.errors import UsageError

    if "-" not in args:
        return args
    if len(args) > 1:
        raise UsageError("- reads the deals from stdin: give it alone, without other deals")
    text = _stdin_text("-", limit=_DEALS_ON_STDIN, what_for="deals")
    return [line.strip() for line in text.splitlines() if line.strip()]


_DEALS_ON_STDIN = 64 << 20  # bytes: some millions of deal ids
_REPLY_ON_STDIN = 4 << 20  # bytes: a reply's text, as long as an imported message may be (1 Mi characters)


def _on_deals(store, refs: list[str], one, act, skip_refused: bool, zone, options: dict | None = None) -> None:
    """Run a command on one deal (`one(ref)`, exactly as it always did) or on several
    (`act` on each, in one transaction: actions.on_many); each outcome is one line on
    stdout, each refusal or skipped deal one line on stderr."""
    from chatcrm import actions, render
    from chatcrm.errors import UsageError

    if not refs:
        typer.echo("no deals given on stdin; nothing to do", err=True)
        return
    if len(refs) == 1 and not skip_refused:
        _say(one(refs[0]), zone)
        return
    named = [name for name, value in (options or {}).items() if value is not None]
    if named and len(refs) > 1:
        raise UsageError(f"{named[0]} names a chat or activity of one deal: give one deal with it")
    try:
        many = actions.on_many(store, refs, act, skip_refused=skip_refused)
    except actions.ManyRefused as refused:
        for refusal in refused.refusals:
            typer.echo(render.refusal_line(refusal.deal_id, _worded(refusal.error)), err=True)
        raise
    for outcome in many.outcomes:
        _say(outcome, zone)
    for refusal in many.skipped:
        typer.echo(render.skipped_deal_line(refusal.deal_id, _worded(refusal.error)), err=True)


@app.command(epilog=_examples('chatcrm reply 3 "Hola Marta, tu pedido sale hoy."', 'chatcrm reply --author Elena D-1042 "Te reenvío la factura ahora."', 'chatcrm reply 3 -- "-10 % en tu próximo pedido"', 'echo "Texto largo" | chatcrm reply 3 -', 'chatcrm reply 3 6 8 "Hoy cerramos a las 18:00."', 'chatcrm list --status unread --format ids | chatcrm reply - "Enseguida te atendemos."'))
def reply(
    deals: Annotated[
        List[str],
        typer.Argument(metavar="DEAL... TEXT", help="The deals (by id or key; - alone reads them from stdin), then "
                       "the reply (- reads it from stdin).", show_default=False),
    ],
    template: Annotated[
        Optional[str],
        typer.Option("--template", "-t", metavar="NAME",
                     help="A canned reply of the settings file ([replies.NAME]); then every argument is a deal."),
    ] = None,
    author: Annotated[
        Optional[str],
        typer.Option("--author", metavar="NAME", help="Who replies (default: $CHATCRM_AGENT, else the settings file's author, else your login name)."),
    ] = None,
    chat: Annotated[Optional[str], typer.Option("--chat", metavar="ID", help="The open chat, where the deal has several.")] = None,
    skip_refused: SkipRefused = False,
    at: At = None,
    tz: TzWrite = None,
    db: Db = None,
) -> None:
    """Answer the client on the deal's open chat.

    Records your reply as an employee's message: the chat is read again, and the deal
    keeps its green counter until its activity is completed. A text that starts with
    '-' goes after '--'. The last argument is the text; - as the text reads it from
    stdin, - as the only deal reads the deals from stdin (not both).
    """
    from chatcrm import actions
    from chatcrm.errors import UsageError

    if template is not None:
        canned, deal_args, text = _settings().reply(template), list(deals), None
    else:
        if len(deals) < 2:
            raise UsageError("give the deal(s) and then the text of the reply: chatcrm reply DEAL... TEXT "
                             "(or --template NAME)")
        canned = None
        *deal_args, text = deals
    if text == "-":
        if deal_args == ["-"]:
            raise UsageError("the deals and the text cannot both come from stdin: give one of them as arguments")
        text = _stdin_text().rstrip("\n")
    refs = _deal_refs(deal_args)
    now, zone = _now(at, tz), _display_zone(tz)
    store = _store(db)
    name = _author(author).value
    _on_deals(store, refs, lambda ref: actions.reply(store, ref, text, now=now, author=name, chat=chat, template=canned),
              lambda ref: actions.reply(store, ref, text, now=now, author=name, template=canned), skip_refused, zone, {"--chat": chat})


def _stdin(what: str):
    """stdin's bytes, or a usage error where there is no stdin (closed: `<&-`)."""
    from chatcrm.errors import UsageError

    stream = getattr(sys.stdin, "buffer", None)
    if stream is None or stream.closed:
        raise UsageError(f"{what} reads stdin, but stdin is closed")
    return stream


def _stdin_text(what: str = "reply -", *, limit: int | None = None, what_for: str = "text") -> str:
    """stdin as UTF-8 text, refused (exit 5) when it is not, or longer than `limit` bytes."""
    from chatcrm.errors import InvalidInput

    limit = limit if limit is not None else _REPLY_ON_STDIN
    data = _stdin(what).read(limit + 1)
    if len(data) > limit:
        raise InvalidInput(f"<stdin>: more than {limit >> 20} MiB of {what_for}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInput(f"<stdin>: not UTF-8 text (byte {error.start + 1})")


def _login_name() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "agent"


def _author(author: str | None):
    """`--author`, else `$CHATCRM_AGENT`, else the settings file's `author`, else the login name."""
    setting = _settings().value("author", author, os.environ)
    return setting if setting.value else type(setting)(_login_name(), "default (your login name)")


@app.command(epilog=_examples('chatcrm close 3', 'chatcrm close 3 --complete', 'chatcrm close 6 --chat 11 --force', 'chatcrm close 3 4 7', 'chatcrm close --idle 24h --complete', 'chatcrm close --idle 2h --dry-run'))
def close(
    deals: Annotated[
        Optional[List[str]],
        typer.Argument(metavar="[DEAL...]", help="Deals by id or key; - alone reads them from stdin, one per line.",
                       show_default=False),
    ] = None,
    chat: ChatOfDeal = None,
    force: Annotated[bool, typer.Option("--force", help="Close even though the client is waiting for an answer.")] = False,
    complete: Annotated[bool, typer.Option("--complete", help="Also complete the chat's activity.")] = False,
    idle: Annotated[
        Optional[str],
        typer.Option("--idle", metavar="DURATION", help="Instead of deals: close every open chat whose client has not "
                     "written since an employee's last message, that long ago (24h, 30m)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="With --idle: show what would be closed; change nothing.")] = False,
    skip_refused: SkipRefused = False,
    at: At = None,
    tz: TzWrite = None,
    db: Db = None,
) -> None:
    """Close the deal's open chat; its activity stays active.

    A client who writes after the close opens a new chat on the same deal. A chat whose
    client is waiting for an answer is not closed unless --force is given. --idle closes
    the chats that went quiet after an answer (safe to run from cron).
    """
    from chatcrm import actions, render
    from chatcrm.errors import UsageError

    if idle is not None:
        from chatcrm import service

        if deals:
            raise UsageError("--idle closes every idle chat: give no deals with it")
        if force or chat is not None or skip_refused:
            raise UsageError("--idle never closes a chat whose client waits: --force, --chat and --skip-refused do not apply")
        seconds = _duration(idle, "--idle")
        if seconds <= 0:
            raise UsageError("--idle: give a duration longer than zero (24h, 30m)")
        now, zone = _now(at, tz), _display_zone(tz)
        report = service.close_idle(_store(db), idle_seconds=seconds, now=now, complete=complete, dry_run=dry_run)
        for closing in report.closed:
            typer.echo(render.idle_line(closing, report, zone))
        typer.echo(render.idle_summary(report), err=True)
        return
    if dry_run:
        raise UsageError("--dry-run goes with --idle")
    if not deals:
        raise UsageError("give the deal(s) to close, or --idle DURATION")
    refs = _deal_refs(deals)
    now, zone = _now(at, tz), _display_zone(tz)
    store = _store(db)
    _on_deals(store, refs, lambda ref: actions.close(store, ref, now=now, chat=chat, force=force, complete=complete),
              lambda ref: actions.close(store, ref, now=now, force=force, complete=complete), skip_refused, zone,
              {"--chat": chat})


@app.command(epilog=_examples('chatcrm complete 3', 'chatcrm complete 6 --activity 11', 'chatcrm complete 8 --force', 'chatcrm list --status green --format ids | chatcrm complete - --skip-refused'))
def complete(
    deals: Deals,
    activity: ActivityOfDeal = None,
    force: Annotated[bool, typer.Option("--force", help="Complete even though the client is waiting for an answer.")] = False,
    skip_refused: SkipRefused = False,
    at: At = None,
    tz: TzWrite = None,
    db: Db = None,
) -> None:
    """Complete the deal's activity; its open chat closes.

    The activity turns from yellow (active) to white (completed), and the deal's counter
    turns grey when no other activity is active. A chat whose client is waiting for an
    answer is not completed unless --force is given.
    """
    from chatcrm import actions

    refs = _deal_refs(deals)
    now, zone = _now(at, tz), _display_zone(tz)
    store = _store(db)
    _on_deals(store, refs, lambda ref: actions.complete(store, ref, now=now, activity=activity, force=force),
              lambda ref: actions.complete(store, ref, now=now, force=force), skip_refused, zone,
              {"--activity": activity})


@app.command(epilog=_examples('chatcrm assign 8 Elena', 'chatcrm assign 6 Luis --chat 11', 'chatcrm assign 3 8 Elena', 'chatcrm search talla --format ids | chatcrm assign - Elena'))
def assign(
    deals: Annotated[
        List[str],
        typer.Argument(metavar="DEAL... NAME", help="The deals (by id or key; - alone reads them from stdin), then "
                       "the employee who becomes responsible.", show_default=False),
    ],
    chat: ChatOfDeal = None,
    skip_refused: SkipRefused = False,
    at: At = None,
    tz: TzWrite = None,
    db: Db = None,
) -> None:
    """Make an employee responsible for the deal's open chat.

    The deal then shows in that employee's queue (`chatcrm list --agent NAME`). A deal
    with no open chat is assigned through its latest chat. The last argument is the
    employee's name.
    """
    from chatcrm import actions
    from chatcrm.errors import UsageError

    if len(deals) < 2:
        raise UsageError("give the deal(s) and then the employee's name: chatcrm assign DEAL... NAME")
    *deal_args, name = deals
    refs = _deal_refs(deal_args)
    now, zone = _now(at, tz), _display_zone(tz)
    store = _store(db)
    _on_deals(store, refs, lambda ref: actions.assign(store, ref, name, now=now, chat=chat),
              lambda ref: actions.assign(store, ref, name, now=now), skip_refused, zone, {"--chat": chat})


OVERDUE_EXIT = 7  # list --exit-status: a deal listed has a client waiting past the SLA (README)


@app.command(epilog=_examples('chatcrm remind 3 5m --note "Dice que contesta en cinco minutos"', 'chatcrm remind 6 2026-11-25T09:00 --activity 11', 'chatcrm remind 3 --clear'))
def remind(
    deal: Deal,
    when: Annotated[
        Optional[str],
        typer.Argument(metavar="WHEN", help="How long from now (5m, 2h, 1d) or a time (2026-11-25T09:00)."),
    ] = None,
    note: Annotated[Optional[str], typer.Option("--note", metavar="TEXT", help="What to follow up on.")] = None,
    activity: ActivityOfDeal = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the activity's follow-up.")] = False,
    at: At = None,
    tz: TzWrite = None,
    db: Db = None,
) -> None:
    """Set a follow-up on the deal's active activity.

    Until then the deal waits at the end of the active ones (pending, when every active
    activity has one); from then on it is due (red) and comes right after the unread
    deals. A later reminder replaces it; a client who writes makes the deal unread as
    always; completing the activity ends it.
    """
    from chatcrm import actions, times
    from chatcrm.errors import UsageError

    now, zone = _now(at, tz), _display_zone(tz)
    if clear == (when is not None):
        raise UsageError("give WHEN (5m, 2h, 1d or a time), or --clear" if not clear
                         else "give WHEN or --clear, not both")
    if clear and note is not None:
        raise UsageError("--note goes with a WHEN, not with --clear")
    due_at = None
    if when is not None:
        try:
            seconds = times.parse_duration(when)
        except ValueError:
            seconds = None
        if seconds is not None:
            due = times.epoch(now) + seconds
            if due > times.epoch(times.LATEST):
                raise UsageError(f"WHEN: {when} from now is after {times.LATEST}, the latest time chatcrm keeps")
            due_at = times.from_epoch(due)
        else:
            try:
                due_at = times.parse(when, _input_zone(tz))
            except ValueError:
                raise UsageError(f"WHEN: unreadable {when!r} (use a duration such as 5m, 2h, 1d, or a time "
                                 "such as 2026-11-25T09:00)")
    _say(actions.remind(_store(db), deal, now=now, due_at=due_at, note=note or "", activity=activity), zone)


def _duration(value: str | None, option: str) -> int | None:
    if value is None:
        return None
    from chatcrm import times
    from chatcrm.errors import UsageError

    try:
        return times.parse_duration(value)
    except ValueError as error:
        raise UsageError(f"{option}: {error}")


@app.command("list", epilog=_examples('chatcrm list', 'chatcrm list --agent Luis --sla 15m', 'chatcrm list --status unread -f json', 'chatcrm list --sla 15m --agent Luis --exit-status || notify-send "a client waits"', 'chatcrm list --status grey --format ids | chatcrm complete -', 'chatcrm list --view mine'))
def list_(
    status: Annotated[
        Optional[str],
        typer.Option("--status", metavar="STATUS", help="Only unread, due, green, pending or grey deals.",
                     autocompletion=_complete_status),
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
            help="Mark deals whose client has waited longer than this (15m, 1h30m; default: $CHATCRM_SLA, "
            "else the settings file's sla).",
        ),
    ] = None,
    view: Annotated[
        Optional[str],
        typer.Option("--view", metavar="NAME", help="A saved view of the settings file ([views.NAME]); options win over it."),
    ] = None,
    exit_status: Annotated[
        bool,
        typer.Option("--exit-status", help=f"Exit with {OVERDUE_EXIT} when a deal listed has a client waiting longer "
                     "than --sla, else 0 (for monitors)."),
    ] = False,
    watch: Annotated[bool, typer.Option("--watch", help="On a terminal: redraw every --interval until Ctrl-C.")] = False,
    interval: Annotated[str, typer.Option("--interval", metavar="DURATION", help="Time between redraws.")] = "5s",
    fmt: Annotated[
        Optional[str],
        typer.Option("--format", "-f", metavar="FORMAT",
                     help="json, jsonl, csv, ids (deal ids, one per line), or a table style (simple, github, …)."),
    ] = None,
    tz: TzShow = None,
    db: Db = None,
) -> None:
    """Show the queue: the deals whose clients wait come first.

    Unread deals first, longest waiting first; then deals whose follow-up has come (due,
    red), earliest first; then deals with an active activity (green counter), oldest
    first; then deals waiting for their follow-ups (pending), soonest first; then the rest
    (grey), most recent first. A summary line counts each group.
    """
    from chatcrm import listing, render
    from chatcrm.settings import Setting

    _NONE = Setting(None, "default")
    saved = _settings().view(view) if view is not None else {}
    status = status if status is not None else saved.get("status", _NONE).value
    agent = agent if agent is not None else saved.get("agent", _NONE).value
    limit = limit if limit is not None else saved.get("limit", _NONE).value
    sla = sla if sla is not None else saved.get("sla", _NONE).value
    from chatcrm.errors import UsageError

    fmt = render.check_format(_output_format(fmt, saved), ids=True)
    display = _display_zone(tz)
    sla_seconds = _duration(_settings().value("sla", sla, os.environ).value, "--sla")
    every = _duration(interval, "--interval")
    if exit_status and sla_seconds is None:
        raise UsageError("--exit-status needs an SLA: give --sla DURATION (or set $CHATCRM_SLA)")
    if exit_status and watch:
        raise UsageError("--exit-status and --watch do not go together: --watch runs until Ctrl-C")
    if every > 86400:
        raise UsageError(f"--interval: {interval!r} is too long (at most 1d)")
    store = _store(db, read_only=True)
    _hint_if_empty(store)

    def draw():
        queue = listing.queue(store, now=_clock(), status=status, limit=limit, agent=agent, sla_seconds=sla_seconds)
        return render.queue_output(queue, fmt, display, _color(), _terminal()), queue

    if watch:
        _watch(lambda: draw()[0], every)
        return
    text, queue = draw()
    sys.stdout.write(text)
    if exit_status and queue.any_overdue_listed:
        raise typer.Exit(OVERDUE_EXIT)


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


SEARCH_STATUS_HELP = "Only deals with this status: unread, due, green, pending or grey (at the current time)."


@app.command(epilog=_examples('chatcrm search factura', 'chatcrm search \'"talla M" OR pedi*\' --since 7d', 'chatcrm search 47110 --agent Elena -f json', 'chatcrm search envío --status grey --format ids | chatcrm complete -'))
def search(
    query: Annotated[str, typer.Argument(metavar="QUERY", help="Words to find (FTS5 syntax: \"exact phrase\", OR, NOT, prefix*).")],
    deal: Annotated[Optional[str], typer.Option("--deal", metavar="DEAL", help="Only this deal (its id or key).")] = None,
    channel: Annotated[Optional[str], typer.Option("--channel", metavar="NAME", help="Only chats of this channel (telegram, whatsapp, …).")] = None,
    agent: Annotated[
        Optional[str],
        typer.Option("--agent", metavar="NAME", help="Only the deals this employee is responsible for.",
                     autocompletion=_complete_employee),
    ] = None,
    author: Annotated[Optional[str], typer.Option("--author", metavar="NAME", help="Only messages by this author (a deal: its contact).")] = None,
    status: Annotated[
        Optional[str], typer.Option("--status", metavar="STATUS", help=SEARCH_STATUS_HELP, autocompletion=_complete_status)
    ] = None,
    since: Annotated[
        Optional[str], typer.Option("--since", metavar="WHEN", help="From this time or date (2026-11-24), or this long ago (7d).")
    ] = None,
    until: Annotated[
        Optional[str], typer.Option("--until", metavar="WHEN", help="Until this time or date (not included), or this long ago.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", metavar="N", help="Show at most N matches.")] = 20,
    sort: Annotated[str, typer.Option("--sort", metavar="ORDER", help="time (newest first) or rank (best match first).")] = "time",
    fmt: Annotated[
        Optional[str],
        typer.Option("--format", "-f", metavar="FORMAT",
                     help="json, jsonl, csv, ids (deal ids, one per line), or a table style (simple, github, …)."),
    ] = None,
    tz: TzPeriod = None,
    db: Db = None,
) -> None:
    """Find messages, authors, deal titles and contacts by their words.

    Case and accents do not matter (factura finds Factura and facturá), in any script.
    Each match shows its deal and status, time, direction, author and a snippet with the
    match marked (highlighted on a terminal, between [ ] when piped).
    """
    from chatcrm import render, service

    fmt = render.check_format(fmt, ids=True)
    display = _display_zone(tz)
    store = _store(db, read_only=True)
    _hint_if_empty(store)
    result = service.search(
        store, query, now=_clock(), limit=limit, sort=sort, deal=deal, channel=channel, agent=agent,
        author=author, status=status, since=since, until=until, tz=_input_zone(tz),
    )
    sys.stdout.write(render.search_output(result, fmt, display, _color(), _terminal()))


@app.command(epilog=_examples('chatcrm timeline 2', 'chatcrm timeline D-1042 -f json'))
def timeline(deal: Deal, fmt: Format = None, tz: TzShow = None, db: Db = None) -> None:
    """Show a deal's history, in time order.

    Each chat's opening and close, each activity as it was at each moment (created
    active, or Unread while a client waited; completed white), and every message with
    its direction, author and time. The header gives the deal's state today.
    """
    from chatcrm import render, service

    fmt = render.check_format(_output_format(fmt))
    display = _display_zone(tz)
    card, entries = service.timeline(_store(db, read_only=True), deal, now=_clock())
    sys.stdout.write(render.timeline_output(card, entries, fmt, display, _color(), _terminal()))


@app.command(epilog=_examples('chatcrm stats --since 7d', 'chatcrm stats --since 2026-11-24 --until 2026-11-25 -f json'))
def stats(
    since: Annotated[
        Optional[str],
        typer.Option("--since", metavar="WHEN", help="From this time or date (2026-11-24), or this long ago (7d)."),
    ] = None,
    until: Annotated[
        Optional[str], typer.Option("--until", metavar="WHEN", help="Until this time or date (not included), or this long ago.")
    ] = None,
    fmt: Format = None,
    tz: TzPeriod = None,
    db: Db = None,
) -> None:
    """Show response times: first response, waits and time to close.

    For everyone, per channel and per employee: how many, the median, the 90th
    percentile and the worst, for the whole database or a period.
    """
    from chatcrm import render, stats as stats_

    fmt = render.check_format(_output_format(fmt))
    now = _clock()
    start, end = stats_.period(since, until, _input_zone(tz), now)
    store = _store(db, read_only=True)
    _hint_if_empty(store)
    report = stats_.compute(store, now=now, since=start, until=end).as_dict()
    sys.stdout.write(render.stats_output(report, fmt, _display_zone(tz), _terminal()))


@app.command(epilog=_examples('chatcrm export -o backup.jsonl', 'chatcrm export --deal 5'))
def export(
    output: Annotated[
        Optional[str], typer.Option("--output", "-o", metavar="FILE", help="Write to FILE instead of stdout.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", metavar="FORMAT", help="jsonl or csv.")] = "jsonl",
    deal: Annotated[Optional[str], typer.Option("--deal", metavar="DEAL", help="Only this deal's facts.")] = None,
    db: Db = None,
) -> None:
    """Write every stored fact as chatcrm events.

    Messages, closes, completions, assignments and reminders in time order, then edits,
    as JSON Lines (or CSV); a live chat's first message says where its replies go.
    Importing them into a new database gives the same queue, timelines and stats, ids
    included: a backup, a diff between two databases, or a case to hand over.
    """
    from chatcrm import render, service
    from chatcrm.errors import UsageError

    if fmt not in ("jsonl", "csv"):
        raise UsageError(f"unknown --format {fmt!r} for export (use jsonl or csv)")
    store = _store(db, read_only=True)
    _hint_if_empty(store)
    with store.read():
        records = service.export(store, deal)
        if output is None or output == "-":
            count = render.write_events(records, fmt, sys.stdout, _terminal())
        else:
            from chatcrm.output import write_to

            count = write_to(output, lambda stream: render.write_events(records, fmt, stream, _terminal(stream)),
                             database=_db_path(db))
    where = "stdout" if output in (None, "-") else render.safe(output, single_line=True)
    typer.echo(f"exported {count} event(s) to {where}", err=True)


@app.command(epilog=_examples('chatcrm changes', 'chatcrm changes --limit 5', 'chatcrm changes -f json'))
def changes(
    limit: Annotated[Optional[int], typer.Option("--limit", "-n", metavar="N", help="Show the N latest changes.")] = None,
    fmt: Format = None,
    tz: TzShow = None,
    db: Db = None,
) -> None:
    """Show the change log, newest first.

    Every import and command that wrote is a change: its number, time, what it was (the command and its arguments; for an import
    each file with its SHA-256, format and options), what it added, and whether it was
    undone. `chatcrm undo CHANGE` takes one back.
    """
    from chatcrm import render, service

    fmt = render.check_format(fmt)
    display = _display_zone(tz)
    rows = service.change_log(_store(db, read_only=True), limit)
    sys.stdout.write(render.changes_output(rows, fmt, display, _terminal()))


@app.command(epilog=_examples('chatcrm undo 2', 'chatcrm changes --limit 1 && chatcrm undo 7'))
def undo(
    change: Annotated[str, typer.Argument(metavar="CHANGE", help="The change's number, as `chatcrm changes` shows it.")],
    db: Db = None,
) -> None:
    """Take a change back.

    An import, a reply, a close, a completion or an assignment. Removes exactly the facts only that change brought (a message another import also
    brought stays), gives back the directions it changed, and every state follows: deals
    and chats left with nothing disappear. The undo is recorded as a change too.
    """
    from chatcrm import render, service

    typer.echo(render.undo_line(service.undo(_store(db), change, now=_clock())))


@app.command("config", epilog=_examples('chatcrm config', 'chatcrm config -f json', 'chatcrm config -f csv'))
def config_(fmt: Format = None) -> None:
    """Show every effective setting and where it came from.

    A value comes from the command's option, else the environment, else the settings
    file ($CHATCRM_CONFIG, else $XDG_CONFIG_HOME/chatcrm/config.toml, else
    ~/.config/chatcrm/config.toml), else the built-in default. Saved views and canned
    replies are listed with their lines.
    """
    from chatcrm import render
    from chatcrm.settings import Setting

    settings = _settings()
    fmt = render.check_format(fmt)
    rows = [("file", str(settings.path), "found" if settings.exists else "not found (built-in defaults)")]
    rows.append(("db", *_db_setting(None).__dict__.values()))
    tz = settings.value("tz", None, os.environ, None)
    rows.append(("tz", tz.value or "UTC for times without an offset; tables in the local zone", tz.source))
    rows.append(("author", *_author(None).__dict__.values()))
    sla = settings.value("sla", None, os.environ, None)
    rows.append(("sla", sla.value or "none", sla.source))
    output = settings.value("format", None, {}, None)
    rows.append(("format", output.value or "simple (a table)", output.source))
    for name, values in sorted(settings.views.items()):
        for key, setting in values.items():
            rows.append((f"views.{name}.{key}", str(setting.value), setting.source))
    for name, text in sorted(settings.replies.items()):
        rows.append((f"replies.{name}.text", text.value, text.source))
    sys.stdout.write(render.settings_output([Setting(*r[1:]) for r in rows], [r[0] for r in rows], fmt, _terminal()))


@app.command(epilog=_examples('chatcrm check', 'chatcrm check --db fixture.db'))
def check(db: Db = None) -> None:
    """Verify the database against its facts.

    Recomputes every chat, activity and deal from the messages, closes, completions and
    assignments, and compares; counts the deals of each status against the queue's
    summary. Prints each problem (exit 6), or one `ok:` line.
    """
    from chatcrm import render
    from chatcrm.errors import PROBLEMS_FOUND
    from chatcrm.store import verify

    store = _store(db, read_only=True)
    problems = verify.check(store)
    if problems:
        listing, error = render.check_problems(store.path, problems)
        sys.stdout.write(listing)
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(PROBLEMS_FOUND)
    typer.echo(render.check_ok(store.path, verify.counts(store)))


@app.command(epilog=_examples('chatcrm outbox', 'chatcrm outbox --all -f json', 'chatcrm outbox -f jsonl | head -1'))
def outbox(
    everything: Annotated[bool, typer.Option("--all", help="Also the replies already delivered.")] = False,
    limit: Annotated[Optional[int], typer.Option("--limit", "-n", metavar="N", help="Show at most N replies.")] = None,
    fmt: Format = None,
    tz: TzShow = None,
    db: Db = None,
) -> None:
    """Show the replies waiting for a live channel, and those given up.

    A reply on a chat that came from a Telegram bot, a Telegram Business account or the
    WhatsApp Cloud API waits here until `chatcrm deliver` hands it to a sender; in
    delivery order, with its state, its tries and the last error.
    """
    from chatcrm import render, service

    fmt = render.check_format(fmt)
    display = _display_zone(tz)
    entries = service.outbox(_store(db, read_only=True), now=_clock(), everything=everything, limit=limit)
    sys.stdout.write(render.outbox_output(entries, fmt, display, _color(), _terminal()))


@app.command(epilog=_examples('chatcrm deliver --command examples/send-telegram.sh',
                              'chatcrm deliver --command "examples/send-whatsapp.sh" --timeout 20s',
                              'chatcrm deliver --command examples/send-channel.sh --limit 10'))
def deliver(
    command: Annotated[
        str, typer.Option("--command", metavar="CMD", help="Run through the shell once per reply, the reply as JSON on stdin.")
    ],
    timeout: Annotated[
        str, typer.Option("--timeout", metavar="DURATION", help="Stop a sender that runs longer than this (a failure).")
    ] = "30s",
    limit: Annotated[Optional[int], typer.Option("--limit", "-n", metavar="N", help="Try at most N replies.")] = None,
    db: Db = None,
) -> None:
    """Hand the waiting replies to a sender command; record the result.

    Exit status 0 of CMD is delivered (the message id it prints is kept); anything else
    is a failure, tried again on a later run after a back-off, and given up after 5
    tries. Replies of one chat go in order. Safe to run from cron while other runs and
    commands go on: no reply is handed to two runs at once.
    """
    import secrets
    import socket

    from chatcrm import render, service
    from chatcrm.errors import UsageError
    from chatcrm.sender import command_sender

    seconds = _duration(timeout, "--timeout")
    if not command.strip():
        raise UsageError("--command is empty")
    owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    store = _store(db)
    report = service.deliver(store, command_sender(command, seconds), clock=_clock, owner=owner,
                             timeout=seconds, limit=limit, tried=lambda entry: typer.echo(render.delivery_line(entry)))
    typer.echo(render.delivery_summary(report), err=True)


# ------------------------------------------------------------------ running a command


def main(argv: list[str] | None = None) -> None:
    """The console script: runs a command; errors become one line on stderr and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        args = ["--help"]
    command = _click_group(args)
    _plain_usage(command)
    _shown_zone[:] = []
    _loaded_settings[:] = []
    stopped = _stop_on_sigterm()
    try:
        _run(command, args)
    finally:
        _close_stores()
        if stopped is not None:
            import signal

            signal.signal(signal.SIGTERM, stopped)


class _Terminated(BaseException):
    """SIGTERM (`kill`, a cron timeout): unwinds like Ctrl-C, so that what is half-done is
    rolled back and cleaned up on the way out."""


def _stop_on_sigterm():
    """Make SIGTERM unwind the command; returns the handler it replaced (None: not the
    main thread, where no handler can be set)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def terminated(signum, frame):
        raise _Terminated()

    return signal.signal(signal.SIGTERM, terminated)


def _close_stores() -> None:
    """Close what the command opened: a process that runs several commands (tests, a
    script importing chatcrm) leaves no connection, and no -wal or -shm file, behind."""
    while _opened:
        try:
            _opened.pop().close()
        except Exception:  # noqa: BLE001 - closing is best effort on the way out
            pass


def _run(command, args: list[str]) -> None:
    try:
        _check_utf8(args)
        code = command.main(args=args, prog_name="chatcrm", standalone_mode=False)
        if code == 130:  # typer's word for Ctrl-C, after the command cleaned up
            _fail("interrupted", 130)
    except ChatcrmError as error:
        _fail(_worded(error), error.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except _Terminated:
        _fail("stopped (SIGTERM)", 143)
    except BrokenPipeError:
        quiet_stdout()
        sys.exit(1)
    except OSError as error:  # stdout or stderr cannot be written: a full disk, a closed terminal
        quiet_stdout()
        _fail(io_failure(error), 1)
    except typer.Abort:
        _fail("interrupted", 130)
    except Exception as error:  # noqa: BLE001 - the edge of the program
        sqlite3 = sys.modules.get("sqlite3")  # loaded by whatever opened a database, and only then
        if sqlite3 is not None and isinstance(error, sqlite3.Error):
            _fail(f"database error: {error}", 1)
        if _is_usage_error(error):
            _fail(f"{error.format_message()}{_dash_hint(error)} (see '{_usage_hint(command, args)} --help')", 2)
        if os.environ.get("CHATCRM_DEBUG", "") not in ("", "0"):
            raise
        _fail(f"internal error: {type(error).__name__}: {error} (set CHATCRM_DEBUG=1 for details)", 1)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        quiet_stdout()
        sys.exit(1)
    except OSError as error:
        quiet_stdout()
        _fail(io_failure(error), 1)
    sys.exit(code if isinstance(code, int) else 0)


def _click_group(args: list[str]):
    """The click group for these arguments, with only the command they invoke built whole.

    Building a command reads its signature and evaluates its type hints, about a
    millisecond each; the group's own help and its errors need only the others' names
    and summaries, so those stand in as commands without options. Shell completion, which
    may ask about any command, gets them all.
    """
    import copy

    from typer.main import get_command

    name = _invoked_name(args)
    if f"_{app.info.name.upper()}_COMPLETE" in os.environ:
        return get_command(app)
    light = copy.copy(app)
    light.registered_commands = [info for info in app.registered_commands if _command_name(info) == name]
    group = get_command(light)
    built = group.commands
    group.commands = {_command_name(info): built.get(_command_name(info)) or _stand_in(info)
                      for info in app.registered_commands}  # in the order they were written
    return group


def _command_name(info) -> str:
    return info.name or info.callback.__name__.replace("_", "-")


def _stand_in(info):
    """A command that is not run, as the group's help lists it: its name, summary, help
    and epilog, without options (never invoked: its name is not the one given)."""
    import inspect

    from typer.core import TyperCommand

    text = inspect.cleandoc(info.help) if info.help is not None else inspect.getdoc(info.callback)
    return TyperCommand(name=_command_name(info), help=text, epilog=info.epilog, short_help=info.short_help,
                        hidden=info.hidden, deprecated=info.deprecated, context_settings=info.context_settings,
                        rich_markup_mode=app.rich_markup_mode)


def _check_utf8(args: list[str]) -> None:
    """Arguments are UTF-8 text, but for the name of a file or folder that exists: the
    shell passes bytes as they are, and only a file name may hold bytes that are not text."""
    for number, arg in enumerate(args, start=1):
        if "\x00" in arg:  # no shell passes one; a program calling main() might
            from chatcrm.errors import InvalidInput

            raise InvalidInput(f"argument {number} holds a NUL character")
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError as error:
            if os.path.lexists(arg):
                continue
            from chatcrm.errors import InvalidInput, clipped

            shown = os.fsencode(arg).decode("utf-8", "backslashreplace")
            raise InvalidInput(f"argument {number} ('{clipped(shown)}') is not UTF-8 text (byte {error.start + 1})")


def _worded(error: ChatcrmError) -> str:
    """The error's message, its times in the zone the command shows times in."""
    if not _shown_zone:
        return str(error)
    from chatcrm import times

    return error.worded(lambda value: times.sentence(value, _shown_zone[0]))


def _plain_usage(group) -> None:
    """Usage lines name arguments as `DEAL TEXT`, not `{DEAL} {TEXT}`."""
    for command in group.commands.values():
        for param in command.params:
            if param.param_type_name == "argument" and param.metavar:
                param.get_usage_pieces = lambda ctx, p=param: [p.metavar]


def _dash_hint(error: Exception) -> str:
    """A text that starts with '-' reads as an option: say how to pass it."""
    name = getattr(error, "option_name", None) or ""
    if type(error).__name__ == "NoSuchOption" and name.startswith("-") and not name.startswith("--"):
        return f"; a text that starts with '-' goes after '--' (chatcrm reply DEAL -- '{name}…')"
    return ""


def _is_usage_error(error: Exception) -> bool:
    return hasattr(error, "format_message") and hasattr(error, "exit_code")


def _usage_hint(group, args: list[str]) -> str:
    name = _invoked_name(args)
    return f"chatcrm {name}" if name in group.commands else "chatcrm"


def _invoked_name(args: list[str]) -> str | None:
    """The command the arguments name: the first that is not an option (chatcrm's own
    options take no value)."""
    return next((arg for arg in args if not arg.startswith("-")), None)


def _fail(message: str, code: int) -> None:
    from chatcrm.render import safe  # a message may quote what a client or a file wrote

    sys.stderr.write(f"Error: {safe(message, single_line=True)}\n")
    sys.exit(code)
