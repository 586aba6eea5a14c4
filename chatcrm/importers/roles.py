"""Who is the employee in an export, and authors' names as people read them: shared by
the chat-app importers."""

from __future__ import annotations

from functools import lru_cache

from chatcrm.errors import InvalidInput
from chatcrm.importers.limits import excerpt

# Invisible marks the apps wrap names and numbers in: LRM/RLM, the bidi embeddings and
# overrides (U+202A–U+202E) and isolates (U+2066–U+2069), the byte order mark.
_BIDI = dict.fromkeys(map(ord, "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"))
_SPACES = {0x00A0: " ", 0x202F: " ", 0x2007: " "}


@lru_cache(maxsize=4096)
def clean_name(name: str) -> str:
    """An author's name as stored: no bidi marks, no-break spaces as spaces, one space
    between words, and without the `~` WhatsApp puts before a name it does not have in
    the phone's contacts (`~ Ana`)."""
    name = " ".join(name.translate(_BIDI).translate(_SPACES).split())
    if name.startswith("~") and len(name) > 1:
        name = name[1:].lstrip()
    return name


def normalise(name: str) -> str:
    """The form names are matched in: clean and case-insensitive."""
    return clean_name(name).casefold()


class Roles:
    """Decides each author's direction in one chat.

    `agents` are the names given with --agent. `client` and `agent_ids` are what the export
    itself says (a Telegram personal chat's partner, the account owner). Without either,
    the chat cannot be imported: `unresolved()` names the authors found.
    """

    def __init__(self, agents: tuple[str, ...] = (), *, client_ids: set[str] | None = None,
                 agent_ids: set[str] | None = None):
        self.agents = {normalise(a) for a in agents}
        self.client_ids = client_ids or set()
        self.agent_ids = agent_ids or set()
        self.authors: dict[str, int] = {}

    @property
    def known(self) -> bool:
        return bool(self.agents or self.client_ids or self.agent_ids)

    def direction(self, author: str, author_id: str | None = None) -> str:
        """--agent names and the account owner are employees; everyone else is a client.
        Without either, a personal chat's partner is the client and the other the employee."""
        self.authors[author] = self.authors.get(author, 0) + 1
        if normalise(author) in self.agents or (author_id is not None and author_id in self.agent_ids):
            return "agent"
        if self.agents or self.agent_ids or author_id is None or not self.client_ids:
            return "client"
        return "client" if author_id in self.client_ids else "agent"

    def unresolved(self, source: str, chat: str) -> InvalidInput:
        return unresolved(source, chat, self.authors)


def authors_text(authors) -> str:
    """The authors found, for an error line: sorted, each short, at most twenty."""
    names = sorted({clean_name(a) for a in authors if a})
    shown = ", ".join(excerpt(n) for n in names[:20]) or "none"
    return shown + (f" and {len(names) - 20} more" if len(names) > 20 else "")


def unresolved(source: str, chat: str, authors) -> InvalidInput:
    """The error for a chat in which nobody can be identified as an employee."""
    which = f"chat {excerpt(chat)!r}" if chat else "this chat"
    return InvalidInput(
        f"{source}: cannot tell which authors of {which} are employees; "
        f"authors found: {authors_text(authors)}; name the employees with --agent NAME"
    )


class AgentCheck:
    """Every `--agent` name must be an author somewhere in one import (all its files).

    `watch` passes a source's events through and notes its authors; `finish` refuses the
    import, naming the authors found, when a name matched nobody."""

    CHAT_FORMATS = ("telegram", "whatsapp", "messenger", "telegram-bot")

    def __init__(self, agents: tuple[str, ...]):
        self.agents = {normalise(a): a for a in agents if a.strip()}
        self.authors: set[str] = set()
        self.chat_sources = 0

    def watch(self, fmt: str, events):
        if not self.agents or fmt not in self.CHAT_FORMATS:
            yield from events
            return
        self.chat_sources += 1
        authors = self.authors
        for event in events:
            author = getattr(event, "author", None)
            if author and getattr(event, "type", None) == "message":
                authors.add(author)
            yield event

    def finish(self) -> None:
        if not self.agents or not self.chat_sources:
            return
        found = {normalise(a) for a in self.authors}
        missing = [name for key, name in self.agents.items() if key not in found]
        if missing:
            names = ", ".join(repr(excerpt(clean_name(n))) for n in missing)
            raise InvalidInput(
                f"--agent {names} matches no author in the files imported; authors found: "
                f"{authors_text(self.authors)}; nothing was imported"
            )
