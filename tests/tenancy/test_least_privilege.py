"""Least privilege for the app role, as raw SQL with no application code: what one injected
statement could at most do.

- no setting the app role can flip lifts row-level security;
- it cannot make a superuser, nor rewrite an OAuth client, nor touch the audit logs' past;
- reading across tenants is a SECURITY DEFINER function owned by the schema owner, with a fixed
  search_path, that it may only execute;
- a table added later grants it nothing until its migration says so.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine

import backend.models  # noqa: F401  (every table, and every cross-tenant read)
from backend.identity.models import PlatformAuditEvent, User
from backend.models import metadata
from tenants.isolation import CROSS_TENANT_READS, is_tenant_table
from tenants.roles import ProjectRole, TenantRole
from tests.conftest import DatabaseUrls
from tests.cross_tenant import cross_tenant
from tests.factories import IdempotencyKeyFactory, UserFactory, persist
from tests.test_cli import run_cli
from tests.world import TenantWorld, build_tenant

pytestmark = pytest.mark.postgres_only

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent

TENANT_TABLES = [table.name for table in metadata.sorted_tables if is_tenant_table(table)]


async def _connect(url: str) -> AsyncIterator[AsyncConnection]:
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        yield connection
    await engine.dispose()


@pytest.fixture
async def app_role(migrated: DatabaseUrls) -> AsyncIterator[AsyncConnection]:
    """A plain connection as the app role: what a bug anywhere in the app could at most do."""
    async for connection in _connect(migrated.app):
        yield connection


@pytest.fixture
async def owner(migrated: DatabaseUrls) -> AsyncIterator[AsyncConnection]:
    async for connection in _connect(migrated.owner):
        yield connection


@pytest.fixture
async def two_tenants(db: AsyncSession) -> tuple[TenantWorld, TenantWorld]:
    acme = await build_tenant(db, "acme", members={"ada": TenantRole.OWNER})
    globex = await build_tenant(db, "globex", members={"gus": TenantRole.OWNER})
    await globex.add_member(db, "ada", TenantRole.VIEWER, user=acme.users["ada"])
    for world in (acme, globex):
        owner = next(iter(world.users))
        await world.add_project(db, "Launch", members={owner: ProjectRole.OWNER})
        await world.add_task(db, "Launch", assignee=owner)
    return acme, globex


async def refused(connection: AsyncConnection, sql: str, **params: object) -> str:
    """The database's refusal of `sql`, rolled back."""
    with pytest.raises(DBAPIError) as refusal:
        await connection.execute(text(sql), params)
    await connection.rollback()
    return str(refusal.value.orig)


async def test_the_old_bypass_setting_lifts_nothing(
    app_role: AsyncConnection, two_tenants: tuple[TenantWorld, TenantWorld]
) -> None:
    await app_role.execute(text("SET LOCAL app.bypass_rls = 'on'"))
    for table in TENANT_TABLES:
        assert await app_role.scalar(text(f"SELECT count(*) FROM {table}")) == 0, table


async def test_no_setting_at_all_is_read_but_the_tenant(
    superuser_engine: AsyncEngine, two_tenants: tuple[TenantWorld, TenantWorld]
) -> None:
    async with superuser_engine.connect() as connection:
        policies = await connection.execute(
            text(
                "SELECT tablename, policyname, roles::text, qual FROM pg_policies "
                "WHERE schemaname = 'public' AND tablename = ANY(:tables)"
            ),
            {"tables": TENANT_TABLES},
        )
        for table, name, roles, qual in policies:
            settings = {word for word in qual.split("'") if word.startswith("app.")}
            if name == "tenant_isolation":
                assert settings == {"app.tenant_id"}, (table, qual)
                assert "NULLIF" in qual, (table, qual)
            else:
                # The schema owner's own: reading every tenant, and (the SECURITY DEFINER
                # erase_audit_actor, migrations 0006 and 0010) rewriting what names an erased
                # account in audit and outbox events.
                erased_in = ("audit_events", "outbox_events")
                owners = {"owner_reads"} | ({"owner_erases"} if table in erased_in else set())
                assert name in owners, table
                assert (roles, qual) == ("{app_owner}", "true"), table


async def test_the_app_role_cannot_make_a_superuser(
    app_role: AsyncConnection, two_tenants: tuple[TenantWorld, TenantWorld]
) -> None:
    ada = two_tenants[0].users["ada"]
    promote = "UPDATE users SET is_superuser = true WHERE id = :id"
    assert "permission denied" in await refused(app_role, promote, id=ada.id)
    plant = (
        "INSERT INTO users (id, email, full_name, is_active, is_superuser, created_at) "
        "VALUES (:id, 'root@evil.example', 'Root', true, true, now())"
    )
    assert "row-level security" in await refused(app_role, plant, id=uuid.uuid4())
    # What the request path needs still works: a sign-up, a profile change.
    await app_role.execute(
        text(
            "INSERT INTO users (id, email, full_name, is_active, is_superuser, created_at) "
            "VALUES (:id, 'new@example.com', 'New', true, false, now())"
        ),
        {"id": uuid.uuid4()},
    )
    renamed = await app_role.execute(
        text("UPDATE users SET full_name = 'Ada L.' WHERE id = :id"), {"id": ada.id}
    )
    assert renamed.rowcount == 1
    await app_role.rollback()


@pytest.mark.parametrize(
    "change",
    [
        'grant_types = \'["password", "client_credentials"]\'',
        "role = 'admin'",
        "client_secret_hash = 'planted'",
        "owner_tenant_id = NULL",
    ],
)
async def test_the_app_role_cannot_rewrite_an_oauth_client(
    app: FastAPI, app_role: AsyncConnection, change: str
) -> None:
    rewrite = f"UPDATE oauth_clients SET {change} WHERE client_id = 'web'"
    assert "permission denied" in await refused(app_role, rewrite)
    revoked = await app_role.execute(
        text("UPDATE oauth_clients SET revoked_at = now() WHERE client_id = 'web'")
    )
    assert revoked.rowcount == 1
    await app_role.rollback()


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_events SET action = 'nothing'",
        "DELETE FROM audit_events",
        "SELECT count(*) FROM platform_audit_events",
        "DELETE FROM platform_audit_events",
        "UPDATE alembic_version SET version_num = '0001'",
    ],
)
async def test_the_audit_logs_past_is_out_of_the_app_roles_reach(
    app_role: AsyncConnection, sql: str
) -> None:
    assert "permission denied" in await refused(app_role, sql)


async def test_a_users_own_tenants_come_from_a_definer_function(
    app_role: AsyncConnection, two_tenants: tuple[TenantWorld, TenantWorld]
) -> None:
    acme, globex = two_tenants
    ada = acme.users["ada"]
    rows = await app_role.execute(
        text("SELECT tenant_id, role FROM user_tenants(:id) ORDER BY role"), {"id": ada.id}
    )
    assert set(rows) == {(acme.id, "owner"), (globex.id, "viewer")}
    assert await app_role.scalar(text("SELECT count(*) FROM memberships")) == 0
    assert "permission denied" in await refused(app_role, "SET ROLE app_owner")


async def test_every_cross_tenant_read_is_a_locked_down_definer_function(
    superuser_engine: AsyncEngine, migrated: DatabaseUrls
) -> None:
    owner = make_url(migrated.owner).username
    async with superuser_engine.connect() as connection:
        for name in CROSS_TENANT_READS:
            row = (
                await connection.execute(
                    text(
                        "SELECT p.prosecdef, r.rolname, p.proconfig, "
                        "has_function_privilege('app_user', p.oid, 'EXECUTE'), "
                        "has_function_privilege('public', p.oid, 'EXECUTE') "
                        "FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner "
                        "WHERE p.proname = :name"
                    ),
                    {"name": name},
                )
            ).one()
            assert tuple(row) == (True, owner, ["search_path=pg_catalog, pg_temp"], True, False)


async def test_the_owner_reads_every_tenant_and_the_app_role_none(
    owner: AsyncConnection,
    app_role: AsyncConnection,
    two_tenants: tuple[TenantWorld, TenantWorld],
) -> None:
    assert await owner.scalar(text("SELECT count(DISTINCT tenant_id) FROM projects")) == 2
    assert await app_role.scalar(text("SELECT count(*) FROM projects")) == 0


async def test_a_table_added_later_grants_the_app_role_nothing(owner: AsyncConnection) -> None:
    await owner.execute(text("CREATE TABLE later_addition (id int)"))
    granted = text("SELECT has_table_privilege('app_user', 'later_addition', 'SELECT')")
    assert await owner.scalar(granted) is False
    await owner.rollback()


def _cli(migrated: DatabaseUrls, *args: str) -> subprocess.CompletedProcess[str]:
    urls = {"DATABASE_URL": migrated.app, "MIGRATIONS_DATABASE_URL": migrated.owner}
    return run_cli(*args, cwd=PROJECT_ROOT, environment=urls)


async def test_superusers_are_made_on_the_command_line_as_the_schema_owner(
    migrated: DatabaseUrls, db: AsyncSession, two_tenants: tuple[TenantWorld, TenantWorld]
) -> None:
    created = await asyncio.to_thread(
        _cli, migrated, "create-superuser", "--email", "root@example.com", "--password", "p" * 16
    )
    assert "Superuser created." in created.stdout, created.stderr
    gus = two_tenants[1].users["gus"]
    promoted = await asyncio.to_thread(_cli, migrated, "set-superuser", "--email", gus.email)
    assert "Now a superuser." in promoted.stdout, promoted.stderr
    superusers = select(User.email).where(User.is_superuser.is_(True)).order_by(User.email)
    assert list(await db.scalars(superusers)) == [gus.email, "root@example.com"]
    events = select(PlatformAuditEvent.action, PlatformAuditEvent.target_id)
    async with cross_tenant(db, "test assertion"):
        assert (await db.execute(events)).all() == [("user.superuser_granted", str(gus.id))]


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
