"""Isolation layer 3 alone: raw SQL as the app role, with no ORM and no application code.

Without a tenant setting the app role sees no tenant rows; with tenant A it sees only A's; it
can neither write a row into tenant B nor move one of A's rows there, nor touch B's rows.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, create_async_engine

from tenants.roles import ProjectRole, TenantRole
from tests.conftest import DatabaseUrls
from tests.world import TenantWorld, build_tenant

pytestmark = pytest.mark.postgres_only

TENANT_TABLES = ("memberships", "projects", "project_members", "tasks", "audit_events")


@pytest.fixture
async def app_role(migrated: DatabaseUrls) -> AsyncIterator[AsyncConnection]:
    """A plain connection as the app role: what a bug anywhere in the app could at most do."""
    engine = create_async_engine(migrated.app)
    async with engine.connect() as connection:
        yield connection
    await engine.dispose()


@pytest.fixture
async def two_tenants(db: AsyncSession) -> tuple[TenantWorld, TenantWorld]:
    worlds = []
    for slug in ("acme", "globex"):
        world = await build_tenant(db, slug, members={"owner": TenantRole.OWNER})
        await world.add_project(db, "Launch", members={"owner": ProjectRole.OWNER})
        await world.add_task(db, "Launch", assignee="owner")
        worlds.append(world)
    return worlds[0], worlds[1]


async def enter(connection: AsyncConnection, tenant_id: uuid.UUID) -> None:
    await connection.execute(text(f"SET LOCAL app.tenant_id = '{tenant_id}'"))


async def test_the_app_role_owns_nothing_and_cannot_bypass_rls(app_role: AsyncConnection) -> None:
    role = await app_role.execute(
        text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
    )
    assert role.one() == (False, False)
    owned = text("SELECT count(*) FROM pg_tables WHERE tableowner = current_user")
    assert await app_role.scalar(owned) == 0


async def test_without_a_tenant_the_app_role_sees_no_tenant_rows(
    app_role: AsyncConnection, two_tenants: tuple[TenantWorld, TenantWorld]
) -> None:
    for table in TENANT_TABLES:
        assert await app_role.scalar(text(f"SELECT count(*) FROM {table}")) == 0, table


async def test_with_tenant_a_the_app_role_sees_only_as_rows(
    app_role: AsyncConnection, two_tenants: tuple[TenantWorld, TenantWorld]
) -> None:
    acme, _ = two_tenants
    await enter(app_role, acme.id)
    for table in ("memberships", "projects", "project_members", "tasks"):
        rows = await app_role.execute(text(f"SELECT DISTINCT tenant_id FROM {table}"))
        assert rows.scalars().all() == [acme.id], table


async def test_a_row_cannot_be_written_into_another_tenant(
    app_role: AsyncConnection, two_tenants: tuple[TenantWorld, TenantWorld]
) -> None:
    acme, globex = two_tenants
    await enter(app_role, acme.id)
    insert = text(
        "INSERT INTO projects (tenant_id, id, name, description, updated_at, created_at) "
        "VALUES (:tenant_id, :id, 'planted', '', now(), now())"
    )
    with pytest.raises(DBAPIError, match="row-level security"):
        await app_role.execute(insert, {"tenant_id": globex.id, "id": uuid.uuid4()})


async def test_a_row_cannot_be_moved_to_another_tenant(
    app_role: AsyncConnection, two_tenants: tuple[TenantWorld, TenantWorld]
) -> None:
    acme, globex = two_tenants
    await enter(app_role, acme.id)
    move = text("UPDATE tasks SET tenant_id = :other WHERE tenant_id = :mine")
    # The column grants refuse it first (no UPDATE on tenant_id); the policy would too.
    with pytest.raises(DBAPIError, match=r"permission denied|row-level security"):
        await app_role.execute(move, {"other": globex.id, "mine": acme.id})


async def test_another_tenants_rows_cannot_be_changed_or_deleted(
    app_role: AsyncConnection, two_tenants: tuple[TenantWorld, TenantWorld]
) -> None:
    acme, globex = two_tenants
    await enter(app_role, acme.id)
    target = {"other": globex.id}
    renamed = await app_role.execute(
        text("UPDATE projects SET name = 'taken' WHERE tenant_id = :other"), target
    )
    deleted = await app_role.execute(text("DELETE FROM tasks WHERE tenant_id = :other"), target)
    assert (renamed.rowcount, deleted.rowcount) == (0, 0)
    await app_role.rollback()
    await enter(app_role, globex.id)
    names = await app_role.execute(text("SELECT name FROM projects"))
    assert names.scalars().all() == ["globex Launch"]
    assert await app_role.scalar(text("SELECT count(*) FROM tasks")) == 1
