"""Row-level security over idempotency keys and the app role's new rights (PostgreSQL): a
session sees the keys of its tenant and of no tenant; erasure deletes ordinary accounts only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, create_async_engine

from tenants.roles import TenantRole
from tests.conftest import DatabaseUrls
from tests.factories import IdempotencyKeyFactory, UserFactory, persist
from tests.world import build_tenant

pytestmark = pytest.mark.postgres_only


@pytest.fixture
async def app_role(migrated: DatabaseUrls) -> AsyncIterator[AsyncConnection]:
    engine = create_async_engine(migrated.app)
    async with engine.connect() as connection:
        yield connection
    await engine.dispose()


async def test_a_session_sees_its_tenants_keys_and_the_keys_of_no_tenant(
    db: AsyncSession, harness_db: AsyncSession, app_role: AsyncConnection
) -> None:
    acme = await build_tenant(db, "acme", {"ada": TenantRole.OWNER})
    globex = await build_tenant(db, "globex", {"gus": TenantRole.OWNER})
    for scope in (acme.id, globex.id, None):
        harness_db.add(IdempotencyKeyFactory.build(scope_tenant_id=scope))
    await harness_db.commit()

    async with app_role.begin():
        await app_role.execute(text(f"SET LOCAL app.tenant_id = '{acme.id}'"))
        seen = set(await app_role.scalars(text("SELECT scope_tenant_id FROM idempotency_keys")))
        moved = await app_role.execute(
            text("UPDATE idempotency_keys SET state = 'running' WHERE scope_tenant_id = :g"),
            {"g": globex.id},
        )
    assert seen == {acme.id, None}
    assert moved.rowcount == 0
    async with app_role.begin():
        await app_role.execute(text("SET LOCAL app.tenant_id = ''"))
        seen = set(await app_role.scalars(text("SELECT scope_tenant_id FROM idempotency_keys")))
    assert seen == {None}


async def test_the_app_role_deletes_ordinary_accounts_never_a_superuser(
    db: AsyncSession, owner_db: AsyncSession, app_role: AsyncConnection
) -> None:
    admin = await persist(owner_db, UserFactory(is_superuser=True))
    person = await persist(db, UserFactory())
    async with app_role.begin():
        kept = await app_role.execute(text("DELETE FROM users WHERE id = :id"), {"id": admin.id})
        gone = await app_role.execute(text("DELETE FROM users WHERE id = :id"), {"id": person.id})
    assert (kept.rowcount, gone.rowcount) == (0, 1)
