"""The ORM filter (isolation layer 2) fails closed and scopes every statement to one tenant."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.projects.models import Project
from tenants.isolation import TenantContextMissing, TenantMismatch, enter_tenant
from tests.factories import ProjectFactory, TenantFactory, persist


@pytest.fixture
async def two_tenants_with_projects(db: AsyncSession) -> tuple:
    first, second = TenantFactory(), TenantFactory()
    await persist(db, first, second)
    await persist(
        db,
        ProjectFactory(tenant_id=first.id, name="first's"),
        ProjectFactory(tenant_id=second.id, name="second's"),
    )
    return first, second


async def test_tenant_tables_refuse_queries_without_a_tenant(
    db: AsyncSession, two_tenants_with_projects: tuple
) -> None:
    with pytest.raises(TenantContextMissing):
        await db.execute(select(Project))
    with pytest.raises(TenantContextMissing):
        await db.execute(select(func.count()).select_from(Project))


async def test_every_statement_sees_only_the_context_tenant(
    db: AsyncSession, two_tenants_with_projects: tuple
) -> None:
    first, second = two_tenants_with_projects
    await enter_tenant(db, first.id)
    assert [p.name for p in await db.scalars(select(Project))] == ["first's"]
    assert await db.scalar(select(func.count()).select_from(Project)) == 1
    assert (await db.execute(update(Project).values(name="renamed"))).rowcount == 1
    assert (await db.execute(delete(Project))).rowcount == 1
    other = await db.scalar(select(Project.id).where(Project.tenant_id == second.id))
    assert other is None


async def test_new_rows_take_the_context_tenant_and_cannot_move(
    db: AsyncSession, two_tenants_with_projects: tuple
) -> None:
    first, second = two_tenants_with_projects
    second_id = second.id
    await enter_tenant(db, first.id)
    project = await persist(db, ProjectFactory(tenant_id=None))  # the context fills it in
    assert project.tenant_id == first.id
    project.tenant_id = second_id
    with pytest.raises(TenantMismatch):
        await db.flush()
    await db.rollback()
    db.add(ProjectFactory(tenant_id=second_id))
    with pytest.raises(TenantMismatch):
        await db.flush()
