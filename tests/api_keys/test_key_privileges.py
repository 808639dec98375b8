"""What the app role may do to `api_keys`, as raw SQL: read, create, note a use and revoke; never
rewrite a key's hash, owner, tenant, role or expiry, nor delete one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, create_async_engine

from tenants.roles import TenantRole
from tests.conftest import DatabaseUrls
from tests.tenancy.test_least_privilege import refused
from tests.world import TenantWorld, build_tenant

pytestmark = pytest.mark.postgres_only


@pytest.fixture
async def app_role(migrated: DatabaseUrls) -> AsyncIterator[AsyncConnection]:
    """A plain connection as the app role: what a bug anywhere in the app could at most do."""
    engine = create_async_engine(migrated.app)
    async with engine.connect() as connection:
        yield connection
    await engine.dispose()


@pytest.fixture
async def acme(db: AsyncSession) -> TenantWorld:
    world = await build_tenant(db, "acme", members={"ada": TenantRole.MEMBER})
    await world.add_api_key(db, "ada", TenantRole.MEMBER)
    return world


@pytest.mark.parametrize(
    "change",
    [
        "key_hash = 'planted'",
        "role = 'owner'",
        "expires_at = now() + interval '10 years'",
        "user_id = user_id",
        "scope_tenant_id = scope_tenant_id",
    ],
)
async def test_the_app_role_cannot_rewrite_a_key(
    app_role: AsyncConnection, acme: TenantWorld, change: str
) -> None:
    assert "permission denied" in await refused(app_role, f"UPDATE api_keys SET {change}")


async def test_the_app_role_cannot_delete_a_key(
    app_role: AsyncConnection, acme: TenantWorld
) -> None:
    assert "permission denied" in await refused(app_role, "DELETE FROM api_keys")


async def test_the_app_role_notes_uses_and_revokes(
    app_role: AsyncConnection, acme: TenantWorld
) -> None:
    noted = await app_role.execute(
        text("UPDATE api_keys SET last_used_at = now(), revoked_at = now()")
    )
    assert noted.rowcount == 1
    await app_role.rollback()
