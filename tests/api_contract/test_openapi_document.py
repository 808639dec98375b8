"""The OpenAPI document: short unique ids, problem+json errors, the rules the server applies."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from backend.openapi import OPERATIONS
from tests.auth import bearer, random_id
from tests.factories import UserFactory, persist

PROBLEM = {"$ref": "#/components/schemas/Problem"}
OAUTH_PATHS = {"/oauth/token", "/oauth/revoke", "/oauth/introspect"}


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


async def test_every_operation_has_a_short_id_from_the_table(document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in _operations(document)]
    listed = {operation.id for operation in OPERATIONS.values()}

    assert len(ids) == len(set(ids)), "operation ids must be unique"
    assert set(ids) - listed == set(), "list every route in backend/openapi.py OPERATIONS"
    assert {"projects-create", "tasks-list", "oauth-token"} <= set(ids)


async def test_every_error_answer_is_a_documented_problem(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            if not status.startswith(("4", "5")):
                continue
            content = response["content"]
            if path in OAUTH_PATHS and status != "503":
                assert content["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/OAuthError"
                }
            else:
                assert content == {"application/problem+json": {"schema": PROBLEM}}, (
                    f"{method} {path} {status}"
                )


async def test_errors_follow_from_the_operations_shape(document: dict[str, Any]) -> None:
    def statuses(path: str, method: str) -> set[str]:
        return set(document["paths"][path][method]["responses"])

    assert {"401", "403", "404", "422", "503"} <= statuses(
        "/api/v1/tenants/{tenant_id}/projects/{project_id}", "patch"
    )
    assert {"400", "401", "409", "422"} <= statuses("/api/v1/tenants", "post")
    assert "400" in statuses("/api/v1/tenants/{tenant_id}/members", "get")  # a cursor
    assert {"403", "409", "429"} <= statuses("/api/v1/users", "post")
    assert "401" not in statuses("/api/v1/users", "post")
    assert statuses("/health/live", "get") == {"200"}
    assert (
        "Retry-After" in document["paths"]["/api/v1/users"]["post"]["responses"]["429"]["headers"]
    )


# The creates of issue 13 (and API keys): each honours Idempotency-Key.
IDEMPOTENT_CREATES = {
    "tenants-create",
    "projects-create",
    "tasks-create",
    "invitations-create",
    "project-invitations-create",
    "service-clients-create",
    "api-keys-create",
    "webhooks-create",
}


async def test_every_idempotent_create_documents_its_headers_and_answers(
    document: dict[str, Any],
) -> None:
    idempotent = set()
    for method, path, operation in _operations(document):
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        if "Idempotency-Key" not in headers:
            continue
        idempotent.add(operation["operationId"])
        responses = operation["responses"]
        assert method == "POST", path
        assert "still being processed" in responses["409"]["description"], path
        assert "different request" in responses["422"]["description"], path
        successes = [r for status, r in responses.items() if status.startswith("2")]
        assert successes, path
        for success in successes:
            assert "Idempotent-Replayed" in success["headers"], path

    assert idempotent >= IDEMPOTENT_CREATES
    other_409 = document["paths"]["/api/v1/tenants/{tenant_id}"]["patch"]["responses"]["409"]
    assert "Idempotency-Key" not in other_409["description"]


async def test_problem_and_token_bodies_are_schemas(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]

    assert schemas["Problem"]["required"] == ["title", "status"]
    assert "HTTPValidationError" not in schemas
    token = document["paths"]["/oauth/token"]["post"]["responses"]["200"]
    assert token["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TokenResponse"
    }
    assert set(schemas["TokenResponse"]["required"]) == {"access_token", "token_type", "expires_in"}


async def test_the_server_rules_are_in_the_schema(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    password = schemas["SignUp"]["properties"]["password"]
    assert (password["minLength"], password["maxLength"]) == (10, 1024)
    assert schemas["PasswordChange"]["properties"]["new_password"]["minLength"] == 10
    name = schemas["TenantCreate"]["properties"]["name"]
    assert (name["minLength"], name["maxLength"]) == (1, 200)
    assert "pattern" in name
    token = document["paths"]["/api/v1/invitations/{token}"]["get"]["parameters"][0]
    assert token["schema"]["pattern"].startswith("^[0-9a-f]{32}")
    grant_type = document["paths"]["/oauth/token"]["post"]["requestBody"]["content"][
        "application/x-www-form-urlencoded"
    ]["schema"]["properties"]["grant_type"]
    assert grant_type["enum"] == ["password", "refresh_token", "client_credentials"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/v1/users/me", "DELETE, GET, PATCH"),
        ("OPTIONS", "/api/v1/tenants/{id}", "DELETE, GET, PATCH"),
        ("POST", "/api/v1/tenants/{id}/projects/{id}/tasks/{id}", "DELETE, GET, PATCH"),
        ("GET", "/api/v1/invitations/accept", "POST"),
        ("DELETE", "/api/v1/tenants", "GET, POST"),
    ],
)
async def test_405_lists_every_method_of_the_path(
    client: httpx.AsyncClient, method: str, path: str, allowed: str
) -> None:
    response = await client.request(method, path.replace("{id}", random_id()))

    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.headers["content-type"] == "application/problem+json"


async def test_names_are_measured_as_sent_and_stored_stripped(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    headers = bearer(app, await persist(db, UserFactory()))

    def create(name: str, slug: str) -> Any:
        return client.post("/api/v1/tenants", json={"name": name, "slug": slug}, headers=headers)

    assert (await create(" " + "a" * 200, "too-long")).status_code == 422
    assert (await create("   ", "blank")).status_code == 422
    assert (await create("Ac\x00me", "control")).status_code == 422
    created = await create("  Acme  ", "acme")
    assert created.status_code == 201
    assert created.json()["name"] == "Acme"


async def test_a_short_password_is_refused_by_its_schema_length(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/users", json={"email": "ada@example.com", "password": "short"}
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "password"]
