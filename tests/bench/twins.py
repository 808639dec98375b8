"""The two hand-written twins the service is measured against, on the service's own routes.

- **bare**: FastAPI, asyncpg and orjson running the service's data SQL, with no authentication
  and no isolation (a superuser connection: row-level security does not apply).
- **floor**: every step isolation costs, by hand: ES256 verification with joserfc; `BEGIN` and
  `SET LOCAL app.tenant_id` in one simple-protocol round trip; one access query for the active,
  unrevoked user, membership, tenant, project and project role; the data query; `COMMIT`; as the
  app role, under row-level security.

Run one with `python -m tests.bench.twins bare|floor` and the environment `BENCH_DSN`,
`BENCH_PORT`, and for the floor `BENCH_JWKS` (the public key set) and `BENCH_ISSUER`.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import uvicorn
from fastapi import FastAPI, Request, Response
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

POOL_SIZE = 20
PAGE = 50

# The service's data SQL, as SQLAlchemy renders it (the ORM filter adds the tenant_id term). The
# list selects the columns the API shows; one task is loaded whole.
LISTED_COLUMNS = (
    "tasks.id, tasks.project_id, tasks.title, tasks.description, tasks.status, "
    "tasks.assignee_id, tasks.created_by, tasks.created_at, tasks.updated_at"
)
TASK_COLUMNS = f"tasks.tenant_id, {LISTED_COLUMNS}"
LIST_TASKS = (
    f"SELECT {LISTED_COLUMNS} FROM tasks WHERE tasks.project_id = $1 AND tasks.tenant_id = $2 "
    "ORDER BY tasks.created_at, tasks.id LIMIT $3"
)
GET_TASK = (
    f"SELECT {TASK_COLUMNS} FROM tasks WHERE tasks.project_id = $1 AND tasks.id = $2 "
    "AND tasks.tenant_id = $3"
)
INSERT_TASK = (
    "INSERT INTO tasks (tenant_id, id, created_at, project_id, title, description, status, "
    "assignee_id, created_by, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
    f"RETURNING {TASK_COLUMNS}"
)
USER = (
    "SELECT users.id, users.email, users.full_name, users.is_superuser, "
    "users.email_verified_at, users.created_at FROM users WHERE users.id = $1"
)
MEMBERSHIPS = (
    "SELECT memberships.tenant_id, tenants.name AS tenant_name, memberships.role FROM memberships "
    "JOIN tenants ON tenants.id = memberships.tenant_id WHERE memberships.user_id = $1 "
    "ORDER BY tenants.name, tenants.id"
)

# The floor's access decision in one query: no row means a dead token or a stranger.
_PRINCIPAL_IS_LIVE = (
    "users.id = $1 AND users.is_active "
    "AND (users.tokens_valid_after IS NULL OR users.tokens_valid_after <= $2) "
    "AND NOT EXISTS (SELECT 1 FROM revoked_access_tokens WHERE revoked_access_tokens.jti = $3) "
    "AND NOT EXISTS (SELECT 1 FROM refresh_tokens WHERE refresh_tokens.family_id = $4 "
    "AND refresh_tokens.revoked_at IS NOT NULL)"
)
PROJECT_ACCESS = (
    "SELECT memberships.role, tenants.status, projects.id AS project_id, "
    "project_members.role AS project_role FROM users "
    "JOIN memberships ON memberships.user_id = users.id AND memberships.tenant_id = $5 "
    "JOIN tenants ON tenants.id = memberships.tenant_id "
    "LEFT JOIN projects ON projects.tenant_id = tenants.id AND projects.id = $6 "
    "LEFT JOIN project_members ON project_members.tenant_id = projects.tenant_id "
    "AND project_members.project_id = projects.id AND project_members.user_id = users.id "
    f"WHERE {_PRINCIPAL_IS_LIVE}"
)
USER_ACCESS = (
    "SELECT users.id, users.email, users.full_name, users.is_superuser, "
    f"users.email_verified_at, users.created_at FROM users WHERE {_PRINCIPAL_IS_LIVE}"
)
PROJECT_WRITERS = {"owner", "editor"}
TENANT_ROLES_SEEING_ALL = {"owner", "admin"}


def _json(content: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(content, default=str), status_code=status, media_type="application/json"
    )


def _problem(status: int) -> Response:
    return _json({"status": status}, status)


def _task(row: asyncpg.Record) -> dict[str, Any]:
    """A task as the service answers it (its tenant is implied by the path)."""
    task = dict(row)
    task.pop("tenant_id", None)
    return task


def _page(rows: list[asyncpg.Record]) -> dict[str, Any]:
    items = [_task(row) for row in rows[:PAGE]]
    next_cursor = None
    if len(rows) > PAGE:
        last = items[-1]
        raw = orjson.dumps([last["created_at"].isoformat(), str(last["id"])])
        next_cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return {"items": items, "next_cursor": next_cursor}


def _unverified_subject(request: Request) -> uuid.UUID | None:
    """No authentication: the bare twin reads the token's subject without checking anything."""
    parts = request.headers.get("authorization", "").split(".")
    if len(parts) != 3:
        return None
    payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
    return uuid.UUID(orjson.loads(payload)["sub"])


def _new_task(tenant_id: uuid.UUID, project_id: uuid.UUID, body: Any) -> tuple[Any, ...] | None:
    if not isinstance(body, dict) or not isinstance(body.get("title"), str):
        return None
    now = datetime.now(UTC)
    return (
        tenant_id,
        uuid.uuid4(),
        now,
        project_id,
        body["title"],
        str(body.get("description", "")),
        "todo",
        None,
        None,
        now,
    )


async def _no_reset(_connection: asyncpg.Connection) -> None:
    """Every handler closes its transaction, so a returned connection needs no reset query."""


def _app(lifespan: Callable[[FastAPI], Any]) -> FastAPI:
    return FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)


def _pool_lifespan(dsn: str) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(
            dsn, min_size=POOL_SIZE, max_size=POOL_SIZE, reset=_no_reset
        )
        yield
        await app.state.pool.close()

    return lifespan


def bare_app(dsn: str) -> FastAPI:
    app = _app(_pool_lifespan(dsn))
    base = "/api/v1/tenants/{tenant_id}/projects/{project_id}"

    @app.get(base + "/tasks")
    async def list_tasks(tenant_id: uuid.UUID, project_id: uuid.UUID) -> Response:
        rows = await app.state.pool.fetch(LIST_TASKS, project_id, tenant_id, PAGE + 1)
        return _json(_page(rows))

    @app.get(base + "/tasks/{task_id}")
    async def get_task(tenant_id: uuid.UUID, project_id: uuid.UUID, task_id: uuid.UUID) -> Response:
        row = await app.state.pool.fetchrow(GET_TASK, project_id, task_id, tenant_id)
        return _json(_task(row)) if row is not None else _problem(404)

    @app.post(base + "/tasks")
    async def create_task(
        tenant_id: uuid.UUID, project_id: uuid.UUID, request: Request
    ) -> Response:
        values = _new_task(tenant_id, project_id, orjson.loads(await request.body()))
        if values is None:
            return _problem(422)
        async with app.state.pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(INSERT_TASK, *values)
        return _json(_task(row), 201)

    @app.get("/api/v1/users/me")
    async def me(request: Request) -> Response:
        user_id = _unverified_subject(request)
        if user_id is None:
            return _problem(401)
        async with app.state.pool.acquire() as connection:
            user = await connection.fetchrow(USER, user_id)
            memberships = await connection.fetch(MEMBERSHIPS, user_id)
        return _json({**dict(user), "memberships": [dict(m) for m in memberships]})

    return app


class _Verifier:
    """ES256 access tokens, checked as the service checks them: type, issuer, audience, times."""

    def __init__(self, jwks: dict[str, Any], issuer: str) -> None:
        self.keys = KeySet.import_key_set(jwks)
        self.registry = JWTClaimsRegistry(
            leeway=30,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": issuer},
            exp={"essential": True},
            iat={"essential": True},
            sub={"essential": True},
            jti={"essential": True},
            client_id={"essential": True},
        )

    def claims(self, request: Request) -> dict[str, Any] | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        try:
            decoded = jwt.decode(token, self.keys, algorithms=["ES256"])
            if decoded.header.get("typ") != "at+jwt":
                return None
            self.registry.validate(decoded.claims)
        except (JoseError, ValueError):
            return None
        return decoded.claims


def _principal_arguments(claims: dict[str, Any]) -> tuple[Any, ...]:
    return (
        uuid.UUID(claims["sub"]),
        datetime.fromtimestamp(claims["iat"], UTC),
        claims["jti"],
        uuid.UUID(claims["sid"]) if "sid" in claims else uuid.UUID(int=0),
    )


Work = Callable[[asyncpg.Connection, dict[str, Any]], Awaitable[Response]]


def floor_app(dsn: str, jwks: dict[str, Any], issuer: str) -> FastAPI:
    app = _app(_pool_lifespan(dsn))
    verifier = _Verifier(jwks, issuer)
    base = "/api/v1/tenants/{tenant_id}/projects/{project_id}"

    async def in_transaction(
        settings: str, work: Callable[[asyncpg.Connection], Awaitable[Response]]
    ) -> Response:
        async with app.state.pool.acquire() as connection:
            await connection.execute(f"BEGIN; {settings}")  # one simple-protocol round trip
            try:
                response = await work(connection)
            except BaseException:
                await connection.execute("ROLLBACK")
                raise
            await connection.execute("COMMIT")
            return response

    async def in_project(
        request: Request,
        tenant_id: uuid.UUID,
        project_id: uuid.UUID,
        write: bool,
        data: Callable[[asyncpg.Connection], Awaitable[Response]],
    ) -> Response:
        claims = verifier.claims(request)
        if claims is None:
            return _problem(401)

        async def work(connection: asyncpg.Connection) -> Response:
            access = await connection.fetchrow(
                PROJECT_ACCESS, *_principal_arguments(claims), tenant_id, project_id
            )
            if access is None or access["project_id"] is None:
                return _problem(404)
            if access["status"] != "active":
                return _problem(403)
            role = access["project_role"]
            if role is None and access["role"] not in TENANT_ROLES_SEEING_ALL:
                return _problem(404)
            if (
                write
                and role not in PROJECT_WRITERS
                and access["role"] not in TENANT_ROLES_SEEING_ALL
            ):
                return _problem(403)
            return await data(connection)

        # The tenant id was parsed as a UUID, so rendering it inline is safe.
        return await in_transaction(f"SET LOCAL app.tenant_id = '{tenant_id}'", work)

    @app.get(base + "/tasks")
    async def list_tasks(request: Request, tenant_id: uuid.UUID, project_id: uuid.UUID) -> Response:
        async def data(connection: asyncpg.Connection) -> Response:
            return _json(_page(await connection.fetch(LIST_TASKS, project_id, tenant_id, PAGE + 1)))

        return await in_project(request, tenant_id, project_id, False, data)

    @app.get(base + "/tasks/{task_id}")
    async def get_task(
        request: Request, tenant_id: uuid.UUID, project_id: uuid.UUID, task_id: uuid.UUID
    ) -> Response:
        async def data(connection: asyncpg.Connection) -> Response:
            row = await connection.fetchrow(GET_TASK, project_id, task_id, tenant_id)
            return _json(_task(row)) if row is not None else _problem(404)

        return await in_project(request, tenant_id, project_id, False, data)

    @app.post(base + "/tasks")
    async def create_task(
        request: Request, tenant_id: uuid.UUID, project_id: uuid.UUID
    ) -> Response:
        values = _new_task(tenant_id, project_id, orjson.loads(await request.body()))
        if values is None:
            return _problem(422)

        async def data(connection: asyncpg.Connection) -> Response:
            return _json(_task(await connection.fetchrow(INSERT_TASK, *values)), 201)

        return await in_project(request, tenant_id, project_id, True, data)

    @app.get("/api/v1/users/me")
    async def me(request: Request) -> Response:
        claims = verifier.claims(request)
        if claims is None:
            return _problem(401)

        async def work(connection: asyncpg.Connection) -> Response:
            user = await connection.fetchrow(USER_ACCESS, *_principal_arguments(claims))
            if user is None:
                return _problem(401)
            memberships = await connection.fetch(MEMBERSHIPS, user["id"])
            return _json({**dict(user), "memberships": [dict(m) for m in memberships]})

        # A user's own memberships span tenants: the one read made across them.
        return await in_transaction("SET LOCAL app.bypass_rls = 'on'", work)

    return app


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.WARNING)
    kind = argv[1]
    dsn = os.environ["BENCH_DSN"]
    if kind == "bare":
        app = bare_app(dsn)
    else:
        app = floor_app(dsn, json.loads(os.environ["BENCH_JWKS"]), os.environ["BENCH_ISSUER"])
    port = int(os.environ["BENCH_PORT"])
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)


if __name__ == "__main__":
    main(sys.argv)
