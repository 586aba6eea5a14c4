"""Who is the employee in an export: shared by the chat-app importers."""

from __future__ import annotations

from chatcrm.errors import InvalidInput


def normalise(name: str) -> str:
    return " ".join(name.replace("\u200e", "").replace("\u200f", "").split()).casefold()


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


def unresolved(source: str, chat: str, authors) -> InvalidInput:
    """The error for a chat in which nobody can be identified as an employee."""
    found = ", ".join(sorted(authors)) or "none"
    return InvalidInput(
        f"{source}: cannot tell which authors of chat {chat!r} are employees; authors found: {found}; "
        "name the employees with --agent NAME"
    )
