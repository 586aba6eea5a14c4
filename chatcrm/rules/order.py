"""The order of facts within one instant (rules R1, R5, R7 in docs/rules.md).

Times are kept to the second, so several facts of one chat key can share an instant. They
then apply in this order: messages (in the order of their file), then a close, then a
completion, then an assignment, then a reminder (a follow-up, rules/follow_ups.py). So a message at the same instant as a close still belongs
to the session it closes, a close and a completion at one instant close first, and a
reminder at the instant of its activity's completion comes too late to set anything.
"""

from __future__ import annotations

FACT_RANK = {"message": 0, "close": 1, "complete": 2, "assign": 3, "remind": 4}


def rank_sql(kind_column: str) -> str:
    """`FACT_RANK` as a SQL expression over a column holding the fact's kind."""
    cases = " ".join(f"WHEN '{kind}' THEN {rank}" for kind, rank in FACT_RANK.items())
    return f"CASE {kind_column} {cases} END"
