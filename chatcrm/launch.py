"""The console script's first step: `chatcrm`, `chatcrm --help` and `chatcrm -h` print the
group's help as written below, without loading typer (whose import alone is most of a
command's start-up); every other command line goes to `chatcrm.cli.main`.

`HELP` is exactly what typer renders for the group at any terminal 80 columns wide or
wider, and into a pipe or a file (click wraps help to the terminal's width, at most 78
characters). A narrower terminal, shell completion (which asks through the environment)
and `python -OO` (which strips the docstrings typer takes the commands' summaries from)
are left to typer.
tests/test_startup.py compares `HELP` with typer's rendering; after a change to a command's
summary or to the group, write it again from:

    COLUMNS=80 python -c 'from chatcrm.cli import main; main(["--help"])'
"""

from __future__ import annotations

import os
import sys

HELP = """\
Usage: chatcrm [OPTIONS] COMMAND [ARGS]...

  Open-channel chats in a CRM, from the shell: the deals whose clients wait
  come first.

  Import your chat exports, see who is waiting, answer, close and complete.
  Run 'chatcrm COMMAND --help' for a command's options and examples.

Options:
  -V, --version         Print chatcrm's version and exit.
  --install-completion  Install completion for the current shell.
  --show-completion     Show completion for the current shell, to copy it or
                        customize the installation.
  -h, --help            Show this message and exit.

Commands:
  ingest    Import chat exports or chatcrm events into the database.
  reply     Answer the client on the deal's open chat.
  close     Close the deal's open chat; its activity stays active.
  complete  Complete the deal's activity; its open chat closes.
  assign    Make an employee responsible for the deal's open chat.
  remind    Set a follow-up on the deal's active activity.
  list      Show the queue: the deals whose clients wait come first.
  search    Find messages, authors, deal titles and contacts by their words.
  timeline  Show a deal's history, in time order.
  stats     Show response times: first response, waits and time to close.
  export    Write every stored fact as chatcrm events.
  changes   Show the change log, newest first.
  undo      Take a change back.
  config    Show every effective setting and where it came from.
  check     Verify the database against its facts.
  outbox    Show the replies waiting for a live channel, and those given up.
  deliver   Hand the waiting replies to a sender command; record the result.
"""

HELP_ARGS = ([], ["--help"], ["-h"])
COMPLETION = "_CHATCRM_COMPLETE"  # typer's shell completion names the program in it
WIDE = 80  # from this many columns on, the help is the same whatever the width


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if sys.stdout is None:  # started with its standard output closed (`>&-`)
        closed_stdout()
    if args in HELP_ARGS and COMPLETION not in os.environ and sys.flags.optimize < 2 and terminal_columns() >= WIDE:
        print_help()
    from chatcrm.cli import main as run

    run(argv)


def terminal_columns() -> int:
    """The terminal's width as `shutil.get_terminal_size` gives it (COLUMNS first, then the
    terminal behind stdout, else 80), without importing shutil and what it brings."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def print_help() -> None:
    """Write `HELP` and exit 0; an output that cannot be written ends as every command's."""
    try:
        sys.stdout.write(HELP)
        sys.stdout.flush()
    except OSError as error:
        quiet_stdout()
        if not isinstance(error, BrokenPipeError):  # a reader that stopped reading: nothing to say
            sys.stderr.write(f"Error: {io_failure(error)}\n")
        sys.exit(1)
    sys.exit(0)


def closed_stdout() -> None:
    """No standard output to write results to: say so before doing anything, exit 1."""
    if sys.stderr is not None:
        sys.stderr.write("Error: cannot write the output: standard output is closed\n")
    sys.exit(1)


def io_failure(error: OSError) -> str:
    """An output or input that failed, in a sentence."""
    import errno

    reason = error.strerror or str(error)
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return f"cannot write the output: {reason}"
    where = f" ({error.filename})" if error.filename else ""
    return f"input/output failed{where}: {reason}"


def quiet_stdout() -> None:
    """Stdout to /dev/null, so that nothing tries to write it again on the way out."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (tests), or already closed
        pass
