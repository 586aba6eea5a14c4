"""Importers: pure functions from an export's bytes to chatcrm events.

Each format module offers `read(stream, source, options)`, which yields `Event`s, and
`Invalid` records for entries it cannot use; a file that is broken as a whole (cut off,
not the format at all) raises `InvalidInput` naming the file and the place. No database,
no clock: the service decides what to do with what they yield.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import Callable, Iterator

from chatcrm.errors import UsageError
from chatcrm.times import UTC

FORMATS = ("jsonl", "csv", "telegram", "whatsapp", "messenger", "telegram-bot", "whatsapp-cloud")


@dataclass
class ImportOptions:
    tz: tzinfo = UTC
    agents: tuple[str, ...] = ()
    chat: str | None = None  # the chat key, for formats whose file does not name one
    year: int | None = None  # the year of WhatsApp dates written without one (`Mar 5, 8:11 PM`)
    dates: str | None = None  # WhatsApp's day/month order, `dmy` or `mdy`, where the file cannot tell it


Progress = Callable[[int], None]


def reader(fmt: str):
    """The `read` function of a format."""
    if fmt in ("jsonl", "csv"):
        from chatcrm.importers import native

        return native.read_jsonl if fmt == "jsonl" else native.read_csv
    if fmt == "telegram":
        from chatcrm.importers import telegram

        return telegram.read
    if fmt == "whatsapp":
        from chatcrm.importers import whatsapp

        return whatsapp.read
    if fmt == "messenger":
        from chatcrm.importers import messenger

        return messenger.read
    if fmt in ("telegram-bot", "whatsapp-cloud"):
        from chatcrm.importers import telegram_bot, whatsapp_cloud

        return telegram_bot.read if fmt == "telegram-bot" else whatsapp_cloud.read
    raise UsageError(f"unknown format {fmt!r} (use one of: {', '.join(FORMATS)})")


from chatcrm.importers.sources import (  # noqa: E402  (the opening of files, in front of the importers)
    detect,
    open_source,
    read_source,
    read_sources,
    source_name,
    source_size,
)


def checked(sources: Iterator, options: ImportOptions) -> Iterator:
    """The sources of one `ingest`, refused as a whole (nothing written: the import's one
    transaction is still open) when an `--agent` name matches no author in any of them."""
    from chatcrm.importers.roles import AgentCheck

    check = AgentCheck(options.agents)
    for name, fmt, events in sources:
        yield name, fmt, check.watch(fmt, events)
    check.finish()
