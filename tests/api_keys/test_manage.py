"""Managing personal API keys: created for one tenant with at most the creator's role, shown
once, listed without secrets, revoked at once; every step in the tenant's audit log."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.database import utcnow
from backend.core.logging import JsonFormatter
from backend.core.secrets import hash_token
from backend.identity.api_keys import is_well_formed
from backend.identity.models import ApiKey, ClientRole
from tenants.models import AuditEvent
from tenants.roles import TenantRole
from tests.auth import random_id
from tests.cross_tenant import cross_tenant
from tests.world import TenantWorld, build_tenant

KEYS = "/api/v1/users/me/api-keys"


@pytest.fixture
async def acme(db: AsyncSession) -> TenantWorld:
    world = await build_tenant(
        db, "acme", members={"ada": TenantRole.ADMIN, "mia": TenantRole.MEMBER}
    )
    await world.add_project(db, "Launch")
    return world


def _body(world: TenantWorld, role: str = "member", days: int = 30) -> dict[str, object]:
    return {"name": "CI", "tenant_id": str(world.id), "role": role, "expires_in_days": days}


async def _create(
    app: FastAPI, client: httpx.AsyncClient, world: TenantWorld, who: str, **body: object
) -> httpx.Response:
    return await client.post(KEYS, json={**_body(world), **body}, headers=world.headers(app, who))


async def test_a_new_key_is_shown_once_and_lists_the_tenants_projects(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    created = await _create(app, client, acme, "ada", role="admin", expires_in_days=90)
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    body = created.json()
    assert set(body) == {"id", "name", "prefix", "key", "tenant_id", "role", "expires_at"}
    assert (body["name"], body["tenant_id"], body["role"]) == ("CI", str(acme.id), "admin")
    assert is_well_formed(body["key"])
    assert body["key"].startswith(body["prefix"])
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert abs(expires_at - (utcnow() + timedelta(days=90))) < timedelta(minutes=1)

    stored = await db.scalar(select(ApiKey).where(ApiKey.id == uuid.UUID(body["id"])))
    assert stored is not None
    assert stored.key_hash == hash_token(body["key"])

    listed = await client.get(KEYS, headers=acme.headers(app, "ada"))
    assert listed.status_code == 200
    [item] = listed.json()["items"]
    assert item["id"] == body["id"]
    assert item["prefix"] == body["prefix"]
    assert item["last_used_at"] is None
    assert body["key"] not in listed.text
    assert "key_hash" not in item

    with_key = {"Authorization": f"Bearer {body['key']}"}
    projects = await client.get(f"{acme.url}/projects", headers=with_key)
    assert [p["name"] for p in projects.json()["items"]] == ["acme Launch"]
    listed = await client.get(KEYS, headers=acme.headers(app, "ada"))
    assert listed.json()["items"][0]["last_used_at"] is not None


@pytest.mark.parametrize(("who", "role"), [("mia", "admin"), ("mia", "owner"), ("ada", "owner")])
async def test_a_key_above_the_callers_role_is_422(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: AsyncSession,
    acme: TenantWorld,
    who: str,
    role: str,
) -> None:
    response = await _create(app, client, acme, who, role=role)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "role"]
    assert await db.scalar(select(ApiKey.id)) is None


@pytest.mark.parametrize("role", ["member", "viewer"])
async def test_a_key_at_or_below_the_callers_role_is_created(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld, role: str
) -> None:
    assert (await _create(app, client, acme, "mia", role=role)).status_code == 201


@pytest.mark.parametrize("days", [0, 366, -1])
async def test_a_key_lives_one_to_365_days(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld, days: int
) -> None:
    assert (await _create(app, client, acme, "ada", expires_in_days=days)).status_code == 422


async def test_a_key_for_a_tenant_the_caller_is_not_in_is_404(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    globex = await build_tenant(db, "globex", members={"gus": TenantRole.OWNER})
    stranger = await _create(app, client, acme, "ada", tenant_id=str(globex.id))
    assert stranger.status_code == 404
    unknown = await _create(app, client, acme, "ada", tenant_id=random_id())
    assert unknown.status_code == 404
    assert await db.scalar(select(ApiKey.id)) is None


async def test_service_clients_make_no_keys(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    await acme.add_client(db, "robot", ClientRole.ADMIN)
    assert (await _create(app, client, acme, "robot")).status_code == 403
    listed = await client.get(KEYS, headers=acme.headers(app, "robot"))
    assert listed.status_code == 403


async def test_a_key_makes_no_keys(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    headers = await acme.add_api_key(db, "ada", TenantRole.ADMIN)
    created = await client.post(KEYS, json=_body(acme), headers=headers)
    assert created.status_code == 403


async def test_revoking_a_key_ends_it_at_once_and_every_step_is_audited(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    body = (await _create(app, client, acme, "ada")).json()
    with_key = {"Authorization": f"Bearer {body['key']}"}
    assert (await client.get(acme.url, headers=with_key)).status_code == 200

    # Someone else's key is not theirs to see or revoke.
    mias = await client.delete(f"{KEYS}/{body['id']}", headers=acme.headers(app, "mia"))
    assert mias.status_code == 404
    assert (await client.get(KEYS, headers=acme.headers(app, "mia"))).json()["items"] == []

    revoked = await client.delete(f"{KEYS}/{body['id']}", headers=acme.headers(app, "ada"))
    assert revoked.status_code == 204
    assert (await client.get(acme.url, headers=with_key)).status_code == 401
    assert (await client.get(KEYS, headers=acme.headers(app, "ada"))).json()["items"] == []
    again = await client.delete(f"{KEYS}/{body['id']}", headers=acme.headers(app, "ada"))
    assert again.status_code == 404

    events = await client.get(f"{acme.url}/audit-events", headers=acme.headers(app, "ada"))
    logged = [(e["action"], e["target_id"], e["actor_user_id"]) for e in events.json()["items"]]
    ada = str(acme.users["ada"].id)
    assert logged[:2] == [
        ("api_key.revoked", body["id"], ada),
        ("api_key.created", body["id"], ada),
    ]


async def test_a_user_revokes_a_key_after_leaving_its_tenant(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    body = (await _create(app, client, acme, "mia")).json()
    left = await client.delete(
        f"{acme.url}/members/{acme.users['mia'].id}", headers=acme.headers(app, "ada")
    )
    assert left.status_code == 204
    revoked = await client.delete(f"{KEYS}/{body['id']}", headers=acme.headers(app, "mia"))
    assert revoked.status_code == 204
    async with cross_tenant(db, "the audit log of a tenant the user has left"):
        actions = list(
            await db.scalars(select(AuditEvent.action).where(AuditEvent.target_id == body["id"]))
        )
    assert sorted(actions) == ["api_key.created", "api_key.revoked"]


def test_the_openapi_names_the_key_operations_and_their_answers(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    create, listed = paths[KEYS]["post"], paths[KEYS]["get"]
    revoke = paths[KEYS + "/{key_id}"]["delete"]
    assert (create["operationId"], listed["operationId"], revoke["operationId"]) == (
        "api-keys-create",
        "api-keys-list",
        "api-keys-revoke",
    )
    assert {"201", "401", "403", "404", "422"} <= set(create["responses"])
    assert {"204", "401", "403", "404"} <= set(revoke["responses"])
    body = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = app.openapi()["components"]["schemas"][body.rsplit("/", 1)[-1]]
    assert set(schema["required"]) == {"name", "tenant_id", "role", "expires_in_days"}
    assert schema["properties"]["expires_in_days"]["maximum"] == 365


async def test_a_key_never_reaches_the_logs(
    app: FastAPI,
    client: httpx.AsyncClient,
    acme: TenantWorld,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    body = (await _create(app, client, acme, "ada")).json()
    with_key = {"Authorization": f"Bearer {body['key']}"}
    await client.get(f"{acme.url}/projects", headers=with_key)
    await client.get("/api/v1/users/me", headers=with_key)
    await client.delete(f"{KEYS}/{body['id']}", headers=acme.headers(app, "ada"))
    await client.get(f"{acme.url}/projects", headers=with_key)
    logging.getLogger("tenantdesk.test").warning("a script failed with %s", body["key"])

    logged = "\n".join(JsonFormatter().format(record) for record in caplog.records)
    assert "a script failed with [redacted]" in logged
    assert body["key"] not in logged
    assert body["key"][12:] not in logged
