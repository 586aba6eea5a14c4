"""A spreadsheet cell never opens as a formula (OWASP "CSV injection").

Every CSV chatcrm writes passes each cell through `neutral`: a cell that starts with `=`,
`+`, `-`, `@`, a tab or a carriage return — also after any number of single quotes — gets
one single quote in front, which spreadsheets show as text. chatcrm's CSV reader applies
`restored`, which takes exactly that quote off again, so an export imports back exactly:

    =SUM(A1)  →  '=SUM(A1)   →  =SUM(A1)
    '=SUM(A1) →  ''=SUM(A1)  →  '=SUM(A1)
    'hello    →  'hello      →  'hello       (no formula: left as it is)
"""

from __future__ import annotations

import re

FORMULA_STARTS = "=+-@\t\r"
QUOTE = "'"
# Any run of quotes, then a character that starts a formula.
_OPENS_AS_FORMULA = re.compile(r"'*[=+\-@\t\r]")
_QUOTED = re.compile(r"'+[=+\-@\t\r]")


def neutral(cell: str) -> str:
    """The cell as written to a CSV file: prefixed with a quote if it could open as a formula."""
    return QUOTE + cell if _OPENS_AS_FORMULA.match(cell) else cell


def restored(cell: str) -> str:
    """A CSV cell as chatcrm wrote it, back to its text (`neutral` undone)."""
    return cell[1:] if _QUOTED.match(cell) else cell
