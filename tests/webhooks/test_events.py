"""Every event type reaches a subscriber, signed, with the object as the API shows it; a change
that rolls back sends nothing."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.projects import service as projects
from backend.projects.access import project_caller
from tenants.caller import TenantCaller
from tenants.isolation import enter_tenant
from tenants.models import Tenant
from tenants.outbox import EVENT_TYPES, OutboxEvent
from tenants.roles import TenantRole
from tests.auth import bearer
from tests.cross_tenant import cross_tenant
from tests.factories import UserFactory, persist
from tests.harness.receiver import Receiver
from tests.harness.smtp import Mailbox
from tests.invitations.helpers import invite, mailed_token
from tests.webhooks.conftest import MakeDispatcher, register, run_until
from tests.world import TenantWorld


async def _every_change(
    client: httpx.AsyncClient, app: FastAPI, db: AsyncSession, acme: TenantWorld, mailbox: Mailbox
) -> dict[str, dict]:
    """One API call per event type, as olive (and grace, who accepts an invitation); the API's
    answer for each, where it shows the object."""
    olive = acme.headers(app, "olive")
    base = f"/api/v1/tenants/{acme.id}"
    shown: dict[str, dict] = {}
    project = await client.post(f"{base}/projects", json={"name": "Hermes"}, headers=olive)
    shown["project.created"] = project.json()
    projects_url = f"{base}/projects/{project.json()['id']}"
    updated = await client.patch(projects_url, json={"description": "fast"}, headers=olive)
    shown["project.updated"] = updated.json()
    task = await client.post(f"{projects_url}/tasks", json={"title": "Fuel"}, headers=olive)
    shown["task.created"] = task.json()
    task_url = f"{projects_url}/tasks/{task.json()['id']}"
    shown["task.updated"] = (
        await client.patch(task_url, json={"status": "done"}, headers=olive)
    ).json()
    assert (await client.delete(task_url, headers=olive)).status_code == 204
    assert (await client.delete(projects_url, headers=olive)).status_code == 204

    grace = await persist(db, UserFactory(email="grace@example.com"))
    invited = await invite(client, app, acme, "olive", "grace@example.com")
    shown["invitation.created"] = invited.json()
    token = await mailed_token(mailbox, "grace@example.com")
    accepted = await client.post(
        "/api/v1/invitations/accept", json={"token": token}, headers=bearer(app, grace)
    )
    assert accepted.status_code == 200, accepted.text
    member_url = f"{base}/members/{grace.id}"
    changed = await client.patch(member_url, json={"role": "viewer"}, headers=olive)
    shown["member.role_changed"] = changed.json()
    assert (await client.delete(member_url, headers=olive)).status_code == 204
    return shown


async def test_every_event_type_arrives_signed_with_the_object_the_api_shows(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: AsyncSession,
    acme: TenantWorld,
    mailbox: Mailbox,
    receiver: Receiver,
    make_dispatcher: MakeDispatcher,
) -> None:
    endpoint = await register(client, app, acme, receiver.url)
    shown = await _every_change(client, app, db, acme, mailbox)
    dispatcher = make_dispatcher()

    await run_until(dispatcher, lambda: len(receiver.received) >= len(EVENT_TYPES))

    payloads = [request.verified(endpoint["secret"]) for request in receiver.received]
    by_type = {payload["type"]: payload for payload in payloads}
    assert set(by_type) == set(EVENT_TYPES)
    assert len(payloads) == len(EVENT_TYPES)  # one call each
    for payload in payloads:
        assert payload["tenant_id"] == str(acme.id)
        assert set(payload) == {"id", "type", "tenant_id", "occurred_at", "data"}
    for event_type, answer in shown.items():
        data = by_type[event_type]["data"]
        if event_type.startswith("project."):  # less the caller's own role on it
            answer = {k: v for k, v in answer.items() if k != "role"}
        assert data == answer, event_type
    assert by_type["task.deleted"]["data"]["id"] == shown["task.created"]["id"]
    assert by_type["project.deleted"]["data"]["description"] == "fast"
    assert by_type["member.removed"]["data"]["role"] == "viewer"
    assert by_type["invitation.accepted"]["data"]["status"] == "accepted"
    # The webhook-id is the event id, the same on every retry.
    assert {r.message_id for r in receiver.received} == {p["id"] for p in payloads}


async def test_a_change_that_rolls_back_sends_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: AsyncSession,
    acme: TenantWorld,
    receiver: Receiver,
    make_dispatcher: MakeDispatcher,
) -> None:
    await register(client, app, acme, receiver.url)
    async with app.state.database.session_factory() as session:
        await enter_tenant(session, acme.id)
        tenant = await session.get(Tenant, acme.id)
        olive = await session.get(type(acme.users["olive"]), acme.users["olive"].id)
        assert tenant is not None
        assert olive is not None
        caller = TenantCaller(tenant=tenant, role=TenantRole.OWNER, user=olive)
        on_apollo = await project_caller(session, caller, acme.projects["Apollo"].id)
        await projects.update_project(session, on_apollo, name="Apollo 13", description=None)
        await session.flush()  # written, then undone
        await session.rollback()

    dispatcher = make_dispatcher()
    await dispatcher.run_once()
    await dispatcher.drain()

    async with cross_tenant(db, "test assertion"):
        assert await db.scalar(select(func.count()).select_from(OutboxEvent)) == 0
    assert receiver.received == []


@pytest.mark.parametrize("subscribed", [["task.created"], ["project.created", "task.deleted"]])
async def test_only_the_subscribed_types_are_sent(
    app: FastAPI,
    client: httpx.AsyncClient,
    acme: TenantWorld,
    receiver: Receiver,
    make_dispatcher: MakeDispatcher,
    subscribed: list[str],
) -> None:
    endpoint = await register(client, app, acme, receiver.url, events=subscribed)
    olive = acme.headers(app, "olive")
    projects_url = f"/api/v1/tenants/{acme.id}/projects/{acme.projects['Apollo'].id}"
    await client.post(f"{projects_url}/tasks", json={"title": "Fuel"}, headers=olive)
    await client.patch(projects_url, json={"name": "Apollo 11"}, headers=olive)
    dispatcher = make_dispatcher()

    for _ in range(2):  # hand out, then send
        await dispatcher.run_once()
        await dispatcher.drain()

    types = [r.verified(endpoint["secret"])["type"] for r in receiver.received]
    assert types == [t for t in ("task.created",) if t in subscribed]
