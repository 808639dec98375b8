"""Substring searches (`ILIKE '%term%'`) that an index serves.

On PostgreSQL a trigram GIN index (`pg_trgm`, migration 0009) answers `ILIKE '%term%'` for terms
of three characters or more without reading the table; on SQLite the same index is a plain one
that such a search does not use (SQLite scans, which its small databases afford).
"""

from __future__ import annotations

from sqlalchemy import Index, TextClause


def trigram_index(table: str, column: str, *, where: TextClause | None = None) -> Index:
    """The index searches of `table.column` use; a GIN index has no order and serves every
    tenant's rows at once, so it is not led by `tenant_id` (tests/test_schema_rules.py).
    With `where`, a partial index of the rows every search reads (`_live`: not in the trash)."""
    return Index(
        f"ix_{table}_{column}_trgm" + ("" if where is None else "_live"),
        column,
        postgresql_using="gin",
        postgresql_ops={column: "gin_trgm_ops"},
        postgresql_where=where,
        sqlite_where=where,
    )
