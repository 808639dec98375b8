"""Idempotency-Key on every create: a retry replays the first answer and creates nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, UOWTransaction
from sqlalchemy.util import await_

from backend.core.database import AppSession, utcnow
from backend.identity.models import OAuthClient
from backend.invitations.models import Invitation
from backend.projects.models import Project, Task
from tenants.idempotency import (
    IdempotencyKey,
    KeyScope,
    claim_key,
    purge_idempotency_keys,
    request_digest,
)
from tenants.isolation import enter_tenant
from tenants.models import Tenant
from tenants.roles import ProjectRole, TenantRole
from tests.auth import bearer
from tests.cross_tenant import cross_tenant
from tests.world import TenantWorld, build_tenant

KEY = "Idempotency-Key"


@dataclass(frozen=True)
class Create:
    name: str
    path: Callable[[TenantWorld], str]
    body: dict[str, Any]
    other_body: dict[str, Any]


CREATES = [
    Create(
        "tenant",
        lambda w: "/api/v1/tenants",
        {"name": "New", "slug": "new-co"},
        {"name": "B", "slug": "b-co"},
    ),
    Create("project", lambda w: f"{w.url}/projects", {"name": "Hermes"}, {"name": "Zeus"}),
    Create(
        "task", lambda w: f"{w.project_url('Apollo')}/tasks", {"title": "Fuel"}, {"title": "Oil"}
    ),
    Create(
        "invitation",
        lambda w: f"{w.url}/invitations",
        {"email": "nina@example.com", "role": "member"},
        {"email": "nora@example.com", "role": "member"},
    ),
    Create(
        "project invitation",
        lambda w: f"{w.project_url('Apollo')}/invitations",
        {"email": "nina@example.com", "role": "viewer"},
        {"email": "nora@example.com", "role": "viewer"},
    ),
    Create(
        "service client",
        lambda w: f"{w.url}/clients",
        {"name": "ci", "role": "member"},
        {"name": "cd", "role": "member"},
    ),
]


async def _acme(db: AsyncSession) -> TenantWorld:
    world = await build_tenant(db, "acme", {"olive": TenantRole.OWNER, "adam": TenantRole.OWNER})
    await world.add_project(db, "Apollo", {"olive": ProjectRole.OWNER})
    return world


def _headers(app: FastAPI, world: TenantWorld, key: str, who: str = "olive") -> dict[str, str]:
    return {**world.headers(app, who), KEY: key}


@pytest.mark.parametrize("create", CREATES, ids=[c.name for c in CREATES])
async def test_a_retry_replays_the_first_answer_and_creates_nothing(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, create: Create
) -> None:
    acme = await _acme(db)
    url, headers = create.path(acme), _headers(app, acme, "retry-1")

    first = await client.post(url, json=create.body, headers=headers)
    rows_after_first = await _row_counts(db)
    again = await client.post(url, json=create.body, headers=headers)

    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    assert again.status_code == 201, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["content-type"] == "application/json"
    expected = first.json()
    if "client_secret" in expected:  # shown once: never stored for a replay
        assert expected["client_secret"]
        expected["client_secret"] = None
    assert again.json() == expected
    assert await _row_counts(db) == rows_after_first

    other = await client.post(url, json=create.other_body, headers=headers)
    assert other.status_code == 422, other.text
    assert "different request" in other.json()["detail"]
    assert await _row_counts(db) == rows_after_first


async def _row_counts(db: AsyncSession) -> dict[str, int]:
    models = (Tenant, Project, Task, Invitation, OAuthClient)
    async with cross_tenant(db, "counting what the creates made, in every tenant"):
        counted = {
            model.__name__: await db.scalar(select(func.count()).select_from(model)) or 0
            for model in models
        }
    await db.rollback()
    return counted


async def test_the_same_key_while_the_first_runs_is_409(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    acme = await _acme(db)
    user_id = acme.users["olive"].id
    url, body = f"{acme.url}/projects", {"name": "Hermes"}
    # What the first request claimed, in its own committed transaction, before its work.
    async with app.state.database.session_factory() as session, session.begin():
        await enter_tenant(session, acme.id)
        scope = KeyScope(f"user:{user_id}", acme.id, "busy")
        digest = request_digest("POST", url, b'{"name": "Hermes"}')
        assert await claim_key(session, scope, digest) is None

    answer = await client.post(url, json=body, headers=_headers(app, acme, "busy"))

    assert answer.status_code == 409, answer.text
    assert "still being processed" in answer.json()["detail"]
    # Once its lease has passed (the first request died), a retry runs.
    later = await client.post(url, json=body, headers=_headers(app, acme, "busy"))
    assert later.status_code == 409
    async with app.state.database.session_factory() as session, session.begin():
        await enter_tenant(session, acme.id)
        row = await session.get(IdempotencyKey, scope.scope_key)
        assert row is not None
        row.locked_until = utcnow() - timedelta(seconds=1)
    taken_over = await client.post(url, json=body, headers=_headers(app, acme, "busy"))
    assert taken_over.status_code == 201, taken_over.text


async def test_a_retry_while_the_first_request_is_still_running_is_409(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    """Two real requests: the first is held after it has written its project (on SQLite it then
    holds the write lock), and the retry arrives meanwhile."""
    acme = await _acme(db)
    url, body, headers = f"{acme.url}/projects", {"name": "Hermes"}, _headers(app, acme, "slow")
    written, go_on = asyncio.Event(), asyncio.Event()

    def hold_the_first(session: Session, _flush: UOWTransaction) -> None:
        if not written.is_set() and any(isinstance(row, Project) for row in session.new):
            written.set()
            await_(go_on.wait())

    event.listen(AppSession, "after_flush", hold_the_first)
    try:
        first = asyncio.create_task(client.post(url, json=body, headers=headers))
        await asyncio.wait_for(written.wait(), timeout=30)
        retry = await client.post(url, json=body, headers=headers)
        go_on.set()
        done = await asyncio.wait_for(first, timeout=30)
    finally:
        go_on.set()
        event.remove(AppSession, "after_flush", hold_the_first)

    assert retry.status_code == 409, retry.text
    assert "still being processed" in retry.json()["detail"]
    assert done.status_code == 201, done.text
    replayed = await client.post(url, json=body, headers=headers)
    assert replayed.status_code == 201, replayed.text
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json() == done.json()
    assert (await _row_counts(db))["Project"] == 2  # Apollo and the one Hermes


async def test_a_personal_api_key_create_replays_without_the_key(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    acme = await _acme(db)
    url = "/api/v1/users/me/api-keys"
    body = {"name": "ci", "tenant_id": str(acme.id), "role": "member", "expires_in_days": 30}
    headers = _headers(app, acme, "api-key-1")

    first = await client.post(url, json=body, headers=headers)
    again = await client.post(url, json=body, headers=headers)
    other = await client.post(url, json={**body, "name": "cd"}, headers=headers)

    assert first.status_code == 201, first.text
    assert first.json()["key"].startswith("tdk_")
    assert again.status_code == 201, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == {**first.json(), "key": None}
    assert other.status_code == 422, other.text
    listed = await client.get(url, headers=acme.headers(app, "olive"))
    assert [key["id"] for key in listed.json()["items"]] == [first.json()["id"]]
    stored = await db.scalar(
        select(IdempotencyKey.response_body).where(
            IdempotencyKey.principal == f"user:{acme.users['olive'].id}"
        )
    )
    await db.rollback()
    assert stored is not None
    assert first.json()["key"] not in stored


async def test_keys_are_scoped_to_the_caller_and_the_tenant(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    acme = await _acme(db)
    globex = await build_tenant(db, "globex")
    await globex.add_member(db, "olive", TenantRole.OWNER, user=acme.users["olive"])
    tasks, body = f"{acme.project_url('Apollo')}/tasks", {"title": "Fuel"}

    by_olive = await client.post(tasks, json=body, headers=_headers(app, acme, "k"))
    by_adam = await client.post(tasks, json=body, headers=_headers(app, acme, "k", who="adam"))
    in_acme = await client.post(
        f"{acme.url}/projects", json={"name": "Hermes"}, headers=_headers(app, acme, "p")
    )
    in_globex = await client.post(
        f"{globex.url}/projects", json={"name": "Hermes"}, headers=_headers(app, globex, "p")
    )

    for answer in (by_olive, by_adam, in_acme, in_globex):
        assert answer.status_code == 201, answer.text
        assert "Idempotent-Replayed" not in answer.headers
    assert by_adam.json()["id"] != by_olive.json()["id"]
    assert in_globex.json()["id"] != in_acme.json()["id"]


async def test_a_failed_create_releases_its_key(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    await build_tenant(db, "taken", {"olive": TenantRole.OWNER})
    acme = await _acme(db)
    headers = _headers(app, acme, "slug")

    refused = await client.post(
        "/api/v1/tenants", json={"name": "T", "slug": "taken"}, headers=headers
    )
    assert refused.status_code == 409, refused.text
    retried = await client.post(
        "/api/v1/tenants", json={"name": "T", "slug": "free"}, headers=headers
    )
    assert retried.status_code == 201, retried.text


async def test_a_key_is_a_short_printable_string(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    acme = await _acme(db)
    for bad in ["", "x" * 256, "with space"]:
        answer = await client.post(
            f"{acme.url}/projects", json={"name": "H"}, headers=_headers(app, acme, bad)
        )
        assert answer.status_code == 422, (bad, answer.text)


async def test_keys_older_than_a_day_are_purged(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    acme = await _acme(db)
    tasks = f"{acme.project_url('Apollo')}/tasks"
    for key in ("old", "new"):
        answer = await client.post(tasks, json={"title": key}, headers=_headers(app, acme, key))
        assert answer.status_code == 201
    answer = await client.post(
        "/api/v1/tenants", json={"name": "N", "slug": "n-co"}, headers=_headers(app, acme, "t")
    )
    assert answer.status_code == 201

    async with app.state.database.session_factory() as session, session.begin():
        purged = await purge_idempotency_keys(session, now=utcnow() + timedelta(hours=25))
    assert purged == 3
    async with app.state.database.session_factory() as session, session.begin():
        await enter_tenant(session, acme.id)
        assert await session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0
    again = await client.post(tasks, json={"title": "old"}, headers=_headers(app, acme, "old"))
    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again.headers


async def test_without_the_header_every_post_creates(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    acme = await _acme(db)
    tasks = f"{acme.project_url('Apollo')}/tasks"
    for _ in range(2):
        answer = await client.post(
            tasks, json={"title": "Same"}, headers=bearer(app, acme.users["olive"])
        )
        assert answer.status_code == 201
    assert (await _row_counts(db))["Task"] == 2


async def test_a_personal_api_key_retries_safely_too(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    acme = await _acme(db)
    headers = {**await acme.add_api_key(db, "olive", TenantRole.OWNER), KEY: "by-key"}
    url = f"{acme.url}/projects"

    first = await client.post(url, json={"name": "Hermes"}, headers=headers)
    again = await client.post(url, json={"name": "Hermes"}, headers=headers)

    assert first.status_code == 201, first.text
    assert again.status_code == 201, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()


async def test_the_purge_run_purges_old_keys(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.projects import purge
    from tenants import idempotency

    acme = await _acme(db)
    answer = await client.post(
        f"{acme.url}/projects", json={"name": "H"}, headers=_headers(app, acme, "old")
    )
    assert answer.status_code == 201
    monkeypatch.setattr(idempotency, "RETENTION", timedelta(0))

    report = await purge.run_purge(app.state.database, app.state.settings)

    assert report is not None
    assert report.idempotency_keys == 1
