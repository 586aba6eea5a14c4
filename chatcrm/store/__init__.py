"""The store: every SQL statement of chatcrm, in small modules by job.

- `connection` — opening a database (the one place; it also migrates) and transactions
- `queries` — what the commands read (always through an index)
- `facts` — the stored facts as streams (export, re-deriving, stats)
- `batch` — recording an import's events
- `projection` — deriving sessions, activities and deals from the facts
- `verify` — `chatcrm check`
- `schema` — the migrations (sqlite-utils), loaded only to create or upgrade a database
"""

from chatcrm.store.connection import Store, open_store

__all__ = ["Store", "open_store"]
