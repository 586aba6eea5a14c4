"""Who is an employee (docs/rules.md, "Employees").

Anyone who wrote an agent message (a reply, or an export's employee) or was assigned a
chat. A chat's responsible employee is always one of them. Names match case-insensitively
when a user names one (`list --agent luis`).
"""

from __future__ import annotations

# Where employees' names are stored: (table, column, condition).
SOURCES = (
    ("messages", "author", "direction = 'agent'"),
    ("assignments", "agent", None),
)


def names_sql() -> str:
    """Every employee's name, once each, in order."""
    parts = [f"SELECT {column} AS name FROM {table}" + (f" WHERE {cond}" if cond else "")
             for table, column, cond in SOURCES]
    return " UNION ".join(parts) + " ORDER BY 1"


def exists_sql() -> list[str]:
    """Queries that each find whether a name (the one parameter) is an employee's. The
    first asks the deals' responsible employees (always employees, and indexed), so that
    the usual case never reads the facts."""
    return [
        f"SELECT 1 FROM {table} WHERE {column} = ?" + (f" AND {cond}" if cond else "") + " LIMIT 1"
        for table, column, cond in (("deals", "responsible", None), *SOURCES)
    ]


def same(a: str, b: str) -> bool:
    return a.casefold() == b.casefold()
