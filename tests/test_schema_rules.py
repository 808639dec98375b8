"""Rules every tenant table keeps (the same rules a move to Citus needs), read from the metadata,
and, on PostgreSQL, from the catalog: row-level security enabled, forced and with a policy."""

from __future__ import annotations

import pytest
from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import RelationshipProperty

from backend.core.database import Base
from backend.models import metadata
from tenants.isolation import TENANT_COLUMN, is_tenant_table

TENANT_TABLES = sorted(t.name for t in metadata.sorted_tables if is_tenant_table(t))

# Non-unique indexes that may skip tenant_id, each with its reason. Unique ones never may.
INDEXES_NOT_LED_BY_TENANT = {
    "ix_memberships_user_id": "a user's own tenants, listed without visiting every tenant",
    **{
        f"ix_{table}_{column}_trgm": "a trigram GIN index has no order: the admin's searches"
        for table, column in [
            ("audit_events", "action"),
            ("audit_events", "target_id"),
            ("invitations", "email"),
        ]
    },
    **{
        f"ix_{table}_{column}_trgm_live": "a trigram GIN index has no order: the admin's searches"
        for table, column in [("projects", "name"), ("tasks", "title")]
    },
}


def _table(name: str) -> Table:
    return metadata.tables[name]


def test_the_tenant_tables_are_the_expected_ones() -> None:
    assert TENANT_TABLES == [
        "audit_events",
        "invitations",
        "memberships",
        "outbox_events",
        "project_members",
        "projects",
        "tasks",
        "webhook_attempts",
        "webhook_deliveries",
        "webhook_endpoints",
    ]


def test_only_tenant_tables_have_a_tenant_id_column() -> None:
    for table in metadata.sorted_tables:
        assert (TENANT_COLUMN in table.c) == (table.name in TENANT_TABLES)


@pytest.mark.parametrize("name", TENANT_TABLES)
def test_tenant_id_leads_the_primary_key(name: str) -> None:
    primary_key = [column.name for column in _table(name).primary_key.columns]
    assert primary_key[0] == TENANT_COLUMN
    assert len(primary_key) > 1


@pytest.mark.parametrize("name", TENANT_TABLES)
def test_foreign_keys_to_tenant_tables_include_tenant_id(name: str) -> None:
    for foreign_key in _table(name).foreign_key_constraints:
        if is_tenant_table(foreign_key.referred_table):
            assert TENANT_COLUMN in foreign_key.column_keys, foreign_key.name
            referred = [element.column.name for element in foreign_key.elements]
            assert referred[foreign_key.column_keys.index(TENANT_COLUMN)] == TENANT_COLUMN


@pytest.mark.parametrize("name", TENANT_TABLES)
def test_unique_constraints_and_indexes_are_led_by_tenant_id(name: str) -> None:
    table = _table(name)
    for constraint in table.constraints:
        columns = [column.name for column in getattr(constraint, "columns", [])]
        if columns and constraint.__class__.__name__ == "UniqueConstraint":
            assert columns[0] == TENANT_COLUMN, constraint.name
    for index in table.indexes:
        first = next(iter(index.expressions)).name  # type: ignore[attr-defined]
        if first != TENANT_COLUMN:
            assert not index.unique, index.name
            assert index.name in INDEXES_NOT_LED_BY_TENANT, index.name


def test_no_relationship_loads_lazily() -> None:
    for mapper in Base.registry.mappers:
        for relationship in mapper.relationships:
            assert isinstance(relationship, RelationshipProperty)
            assert relationship.lazy == "raise", f"{mapper.class_.__name__}.{relationship.key}"


@pytest.mark.postgres_only
async def test_every_tenant_table_has_forced_row_level_security_with_a_policy(
    superuser_engine: AsyncEngine,
) -> None:
    async with superuser_engine.connect() as connection:
        rows = (
            await connection.execute(
                text(
                    """
                    SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                           (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)
                    FROM pg_class c
                    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
                    JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
                    WHERE c.relkind = 'r' AND NOT a.attisdropped
                    ORDER BY c.relname
                    """
                )
            )
        ).all()
    assert [row[0] for row in rows] == TENANT_TABLES
    for name, enabled, forced, policies in rows:
        assert enabled, f"{name}: row-level security is not enabled"
        assert forced, f"{name}: row-level security is not forced"
        assert policies >= 1, f"{name}: no policy"


@pytest.mark.postgres_only
async def test_the_app_role_owns_nothing_and_cannot_bypass_rls(
    superuser_engine: AsyncEngine,
) -> None:
    async with superuser_engine.connect() as connection:
        role = (
            await connection.execute(
                text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = 'app_user'")
            )
        ).one()
        owned = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
                "WHERE r.rolname = 'app_user'"
            )
        )
        writes_schema_version = await connection.scalar(
            text("SELECT has_table_privilege('app_user', 'alembic_version', 'UPDATE')")
        )
    assert tuple(role) == (False, False)
    assert owned == 0
    assert writes_schema_version is False
