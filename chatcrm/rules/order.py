"""The order of facts within one instant (rules R1, R5, R7 in docs/rules.md).

Times are kept to the second, so several facts of one chat key can share an instant. They
then apply in this order: messages (in the order of their file), then a close, then a
completion, then an assignment. So a message at the same instant as a close still belongs
to the session it closes, and a close and a completion at one instant close first.
"""

from __future__ import annotations

FACT_RANK = {"message": 0, "close": 1, "complete": 2, "assign": 3}


def rank_sql(kind_column: str) -> str:
    """`FACT_RANK` as a SQL expression over a column holding the fact's kind."""
    cases = " ".join(f"WHEN '{kind}' THEN {rank}" for kind, rank in FACT_RANK.items())
    return f"CASE {kind_column} {cases} END"
