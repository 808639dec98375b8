"""JSON request bodies refuse unknown fields (422 naming each); the OAuth2 endpoints ignore
unknown parameters, as RFC 6749 §3.2 requires."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.schemas import RequestBody
from tenants.roles import ProjectRole, TenantRole
from tests.factories import DEFAULT_PASSWORD, UserFactory, persist
from tests.world import TenantWorld, build_tenant


def _subclasses(base: type) -> set[str]:
    names: set[str] = set()
    for sub in base.__subclasses__():
        names |= {sub.__name__, *_subclasses(sub)}
    return names


def test_every_json_body_of_the_api_is_a_strict_request_body(app: FastAPI) -> None:
    schema = app.openapi()
    request_bodies = _subclasses(RequestBody)
    bodies = {
        f"{method.upper()} {path}": operation["requestBody"]["content"]["application/json"]
        for path, operations in schema["paths"].items()
        if path.startswith("/api/v1/")
        for method, operation in operations.items()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    }
    names = {route: body["schema"]["$ref"].rsplit("/", 1)[-1] for route, body in bodies.items()}

    assert len(names) >= 15, names
    assert {route: name for route, name in names.items() if name not in request_bodies} == {}
    components = schema["components"]["schemas"]
    assert {
        name: components[name].get("additionalProperties") for name in names.values()
    } == dict.fromkeys(names.values(), False)


@pytest.fixture
async def acme(db: AsyncSession) -> TenantWorld:
    world = await build_tenant(db, "acme", members={"olga": TenantRole.OWNER})
    await world.add_project(db, "Launch", members={"olga": ProjectRole.OWNER})
    await world.add_task(db, "Launch")
    return world


# (method, path under the tenant or absolute, a valid body, the unknown field sent with it)
UNKNOWN_FIELDS = {
    "rename tenant": ("PATCH", "", {"name": "Renamed"}, "colour"),
    "create project": ("POST", "/projects", {"name": "New"}, "owner_id"),
    "rename project": ("PATCH", "/projects/{Launch}", {"name": "Renamed"}, "created_by"),
    "edit task": ("PATCH", "/projects/{Launch}/tasks/{task}", {"title": "Renamed"}, "priority"),
    "create task": ("POST", "/projects/{Launch}/tasks", {"title": "New"}, "tenant_id"),
    "member role": ("PATCH", "/members/{olga}", {"role": "owner"}, "since"),
    "create client": ("POST", "/clients", {"name": "bot", "role": "viewer"}, "secret"),
    "invite": ("POST", "/invitations", {"email": "x@example.com", "role": "member"}, "message"),
    "create tenant": ("POST", "/api/v1/tenants", {"name": "New", "slug": "new-co"}, "plan"),
    "edit me": ("PATCH", "/api/v1/users/me", {"full_name": "Olga"}, "email"),
}


@pytest.mark.parametrize(
    ("method", "path", "body", "unknown"), UNKNOWN_FIELDS.values(), ids=list(UNKNOWN_FIELDS)
)
async def test_an_unknown_field_is_422_naming_it_and_changes_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    acme: TenantWorld,
    method: str,
    path: str,
    body: dict[str, Any],
    unknown: str,
) -> None:
    ids = {
        "Launch": acme.projects["Launch"].id,
        "task": acme.tasks[0].id,
        "olga": acme.users["olga"].id,
    }
    url = path if path.startswith("/api/") else acme.url + path.format(**ids)
    headers = acme.headers(app, "olga")
    before = await client.get(acme.url + "/audit-events", headers=headers)

    response = await client.request(method, url, json={**body, unknown: "x"}, headers=headers)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [(e["loc"], e["type"]) for e in response.json()["errors"]] == [
        (["body", unknown], "extra_forbidden")
    ]
    after = await client.get(acme.url + "/audit-events", headers=headers)
    assert after.json() == before.json()


async def test_the_same_body_without_the_unknown_field_goes_through(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    response = await client.patch(
        acme.url, json={"name": "Renamed"}, headers=acme.headers(app, "olga")
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Renamed"


async def test_the_token_and_revocation_endpoints_ignore_unknown_parameters(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    user = await persist(db, UserFactory())
    form = {"grant_type": "password", "username": user.email, "password": DEFAULT_PASSWORD}
    unknown = {"client_id": "web", "colour": "red", "audience": "anything"}

    signed_in = await client.post("/oauth/token", data={**form, **unknown})
    assert signed_in.status_code == 200, signed_in.text
    refresh_token = signed_in.json()["refresh_token"]
    refresh = {"grant_type": "refresh_token", "refresh_token": refresh_token, **unknown}
    refreshed = await client.post("/oauth/token", data=refresh)
    assert refreshed.status_code == 200, refreshed.text
    revoke = {"token": refreshed.json()["refresh_token"], **unknown}
    revoked = await client.post("/oauth/revoke", data=revoke)
    assert revoked.status_code == 200, revoked.text
