"""Tenant deletion with a grace period: 202, closed while pending (but for the routes that stay
open), restored by its owner, purged with every row it holds once the grace period is over."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from backend.core.database import utcnow
from backend.identity.models import ClientRole, OAuthClient, PlatformAuditEvent
from backend.invitations.tokens import issue_token
from backend.models import metadata
from backend.projects.purge import run_purge
from tenants.isolation import is_tenant_table
from tenants.lifecycle import OPEN_WHILE_PENDING_DELETION, open_while_pending_deletion
from tenants.models import Tenant
from tenants.roles import ProjectRole, TenantRole
from tests.factories import InvitationFactory, persist
from tests.world import TenantWorld, build_tenant


@pytest.fixture
async def acme(db: AsyncSession) -> TenantWorld:
    world = await build_tenant(
        db, "acme", members={"ada": TenantRole.OWNER, "adam": TenantRole.ADMIN}
    )
    await world.add_project(db, "Launch", members={"ada": ProjectRole.OWNER})
    await world.add_task(db, "Launch", assignee="ada")
    await world.add_client(db, "robot", ClientRole.ADMIN)
    return world


async def test_the_owner_schedules_the_deletion_with_a_grace_period(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    before = utcnow()
    admin = await client.delete(acme.url, headers=acme.headers(app, "adam"))
    robot = await client.delete(acme.url, headers=acme.headers(app, "robot"))
    deleted = await client.delete(acme.url, headers=acme.headers(app, "ada"))

    assert (admin.status_code, robot.status_code, deleted.status_code) == (403, 403, 202)
    assert deleted.json()["status"] == "pending_deletion"
    purge_after = datetime.fromisoformat(deleted.json()["purge_after"])
    grace = timedelta(days=app.state.settings.tenant_deletion_grace_days)
    assert before + grace <= purge_after <= utcnow() + grace
    shown = await client.get(acme.url, headers=acme.headers(app, "adam"))
    assert shown.status_code == 200
    assert shown.json()["status"] == "pending_deletion"
    assert datetime.fromisoformat(shown.json()["purge_after"]) == purge_after


async def test_while_pending_every_tenant_route_but_the_open_ones_answers_403(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    headers = acme.headers(app, "ada")
    assert (await client.delete(acme.url, headers=headers)).status_code == 202
    ids = {
        "tenant_id": acme.id,
        "project_id": acme.projects["Launch"].id,
        "task_id": acme.tasks[0].id,
        "user_id": acme.users["ada"].id,
        "invitation_id": acme.tasks[0].id,
        "client_id": acme.clients["robot"].client_id,
        "webhook_id": acme.tasks[0].id,
        "delivery_id": acme.tasks[0].id,
    }
    checked = 0
    for path, operations in app.openapi()["paths"].items():
        if not path.startswith("/api/v1/tenants/{tenant_id}"):
            continue
        for method in operations:
            if open_while_pending_deletion(method.upper(), path):
                continue
            url = path.format(**{k: str(v) for k, v in ids.items()})
            response = await client.request(method.upper(), url, headers=headers, json={})
            assert response.status_code == 403, (method, path)
            assert response.headers["content-type"] == "application/problem+json"
            assert "scheduled for deletion" in response.json()["detail"], (method, path)
            checked += 1
    assert checked >= 25
    assert ("GET", "/api/v1/tenants/{tenant_id}/export") in OPEN_WHILE_PENDING_DELETION
    # A service client's token is refused the same way.
    robot = await client.get(f"{acme.url}/members", headers=acme.headers(app, "robot"))
    assert robot.status_code == 403


async def test_the_owner_restores_the_tenant_before_the_purge(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    ada = acme.headers(app, "ada")
    early = await client.post(f"{acme.url}/restore", headers=ada)
    await client.delete(acme.url, headers=ada)

    refused = await client.post(f"{acme.url}/restore", headers=acme.headers(app, "adam"))
    restored = await client.post(f"{acme.url}/restore", headers=ada)

    assert (early.status_code, refused.status_code, restored.status_code) == (409, 403, 200)
    assert restored.json()["status"] == "active"
    assert restored.json()["purge_after"] is None
    assert (await client.get(f"{acme.url}/projects", headers=ada)).status_code == 200
    log = await client.get(f"{acme.url}/audit-events", headers=ada)
    actions = [event["action"] for event in log.json()["items"]]
    assert actions[:2] == ["tenant.restored", "tenant.deletion_scheduled"]


async def test_a_stale_if_match_does_not_schedule_the_deletion(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    ada = acme.headers(app, "ada")
    tag = (await client.get(acme.url, headers=ada)).headers["ETag"]
    await client.patch(acme.url, json={"name": "Acme Ltd"}, headers=ada)

    stale = await client.delete(acme.url, headers={**ada, "If-Match": tag})
    fresh_tag = (await client.get(acme.url, headers=ada)).headers["ETag"]
    fresh = await client.delete(acme.url, headers={**ada, "If-Match": fresh_tag})

    assert (stale.status_code, fresh.status_code) == (412, 202)


async def _grace_over(engine: AsyncEngine, tenant: TenantWorld) -> None:
    async with engine.begin() as connection:
        then = utcnow() - timedelta(seconds=1)
        await connection.execute(
            update(Tenant).where(Tenant.id == tenant.id).values(purge_after=then)
        )


async def test_after_the_grace_period_the_purge_removes_every_row_of_the_tenant(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: AsyncSession,
    acme: TenantWorld,
    superuser_engine: AsyncEngine,
) -> None:
    globex = await build_tenant(db, "globex", members={"gus": TenantRole.OWNER})
    await globex.add_project(db, "Launch", members={"gus": ProjectRole.OWNER})
    await globex.add_task(db, "Launch", assignee="gus")
    await globex.add_client(db, "robot", ClientRole.MEMBER)
    await client.delete(f"{globex.url}", headers=globex.headers(app, "gus"))  # not yet due
    await client.delete(acme.url, headers=acme.headers(app, "ada"))
    await _grace_over(superuser_engine, acme)

    report = await run_purge(app.state.database, app.state.settings)

    assert report is not None
    assert report.tenants == 1
    async with superuser_engine.connect() as connection:
        for table in (t for t in metadata.sorted_tables if is_tenant_table(t)):
            rows = await connection.execute(select(table.c.tenant_id))
            assert {row.tenant_id for row in rows} <= {globex.id}, table.name
        assert set(await connection.scalars(select(Tenant.id))) == {globex.id}
        clients = await connection.execute(select(OAuthClient.owner_tenant_id))
        assert {row.owner_tenant_id for row in clients} == {None, globex.id}
        log = await connection.execute(
            select(
                PlatformAuditEvent.action,
                PlatformAuditEvent.target_id,
                PlatformAuditEvent.actor_user_id,
            )
        )
        assert log.all() == [("tenant.purged", str(acme.id), None)]
    assert (await client.get(acme.url, headers=acme.headers(app, "ada"))).status_code == 404
    globex_now = await client.get(globex.url, headers=globex.headers(app, "gus"))
    assert globex_now.json()["status"] == "pending_deletion"


async def test_an_invitation_into_a_tenant_pending_deletion_is_refused(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    token = issue_token(acme.id)
    inviter = acme.users["ada"]
    invitation = InvitationFactory(token=token, tenant=acme.tenant, inviter=inviter)
    await persist(db, invitation)
    before = await client.get(f"/api/v1/invitations/{token.value}")
    await client.delete(acme.url, headers=acme.headers(app, "ada"))

    after = await client.get(f"/api/v1/invitations/{token.value}")

    assert (before.status_code, after.status_code) == (200, 403)
    assert "scheduled for deletion" in after.json()["detail"]
