"""The dispatcher: in the service process within 2 s, several at once without double sends,
and pending work resumed after a restart or a lost lease."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from backend.core.config import Settings
from backend.core.database import utcnow
from backend.main import create_app
from backend.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery
from backend.webhooks.signing import generate_secret
from tenants.isolation import enter_tenant
from tenants.outbox import OutboxEvent
from tests.conftest import BASE_URL
from tests.factories import (
    OutboxEventFactory,
    WebhookDeliveryFactory,
    WebhookEndpointFactory,
    persist,
)
from tests.harness.receiver import Receiver
from tests.webhooks.conftest import (
    MakeDispatcher,
    create_task,
    delivery_rows,
    register,
    run_until,
)
from tests.world import TenantWorld, build_tenant


async def test_the_service_process_delivers_a_new_task_within_two_seconds(
    app: FastAPI, settings: Settings, acme: TenantWorld, receiver: Receiver
) -> None:
    """The README's first session: the dispatcher runs in the service by default."""
    served = create_app(settings.model_copy(update={"webhook_dispatcher_in_process": True}))
    async with served.router.lifespan_context(served):
        transport = httpx.ASGITransport(app=served)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            endpoint = await register(client, served, acme, receiver.url, events=["task.created"])
            project = acme.projects["Apollo"].id
            created = await client.post(
                f"/api/v1/tenants/{acme.id}/projects/{project}/tasks",
                json={"title": "Fuel"},
                headers=acme.headers(served, "olive"),
            )
            committed = time.monotonic()
            [arrived] = await receiver.wait_for(1, timeout=5.0)

    assert arrived.at - committed < 2.0
    payload = arrived.verified(endpoint["secret"])
    assert payload["type"] == "task.created"
    assert payload["data"] == created.json()


async def test_two_dispatchers_never_send_one_delivery_twice(
    db: AsyncSession, acme: TenantWorld, receiver: Receiver, make_dispatcher: MakeDispatcher
) -> None:
    secret = generate_secret()
    endpoint = WebhookEndpointFactory(tenant_id=acme.id, url=receiver.url, secret=secret)
    events = [OutboxEventFactory(tenant_id=acme.id) for _ in range(40)]
    await persist(db, endpoint, *events)
    receiver.answer_delay = 0.05  # sends overlap the other dispatcher's passes
    # No retries: a second copy of a message could only be a delivery sent twice at once.
    first, second = (make_dispatcher(webhook_retry_schedule_seconds=[]) for _ in range(2))

    first.start()
    second.start()
    await receiver.wait_for(40, timeout=20.0)
    await asyncio.sleep(0.3)  # anything sent twice would have come by now
    await first.stop(2.0)
    await second.stop(2.0)

    counts = Counter(request.message_id for request in receiver.received)
    assert set(counts) == {str(event.id) for event in events}
    assert set(counts.values()) == {1}
    for request in receiver.received:
        request.verified(secret)


async def test_a_restart_in_the_middle_of_a_retry_resumes_it(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: AsyncSession,
    acme: TenantWorld,
    receiver: Receiver,
    make_dispatcher: MakeDispatcher,
) -> None:
    endpoint = await register(client, app, acme, receiver.url)
    receiver.plan = [500]
    await create_task(client, app, acme)
    before = make_dispatcher(webhook_retry_schedule_seconds=[1.0])
    before.start()
    await receiver.wait_for(1)
    await asyncio.sleep(0.2)  # the failed attempt is recorded
    await before.stop(2.0)
    [waiting] = await delivery_rows(db, acme)
    assert (waiting.status, waiting.attempts) == (DeliveryStatus.PENDING, 1)
    assert waiting.next_attempt_at is not None

    after = make_dispatcher()  # a new process: nothing but the database carries over
    after.start()
    await receiver.wait_for(2, timeout=10.0)
    await after.stop(2.0)

    first, second = receiver.received
    assert first.message_id == second.message_id
    assert second.verified(endpoint["secret"])["type"] == "task.created"
    [done] = await delivery_rows(db, acme)
    assert (done.status, done.attempts) == (DeliveryStatus.SUCCEEDED, 2)


async def test_a_delivery_whose_dispatcher_died_is_sent_once_its_lease_has_passed(
    db: AsyncSession, acme: TenantWorld, receiver: Receiver, make_dispatcher: MakeDispatcher
) -> None:
    endpoint = WebhookEndpointFactory(tenant_id=acme.id, url=receiver.url)
    leased = WebhookDeliveryFactory(
        tenant_id=acme.id,
        endpoint=endpoint,
        claimed_until=utcnow() + timedelta(seconds=1),
        claim_token=uuid.uuid4(),
    )
    await persist(db, leased)
    dispatcher = make_dispatcher()

    await dispatcher.run_once()
    await dispatcher.drain()
    assert receiver.received == []  # leased to another dispatcher, which may still send it

    await run_until(dispatcher, lambda: len(receiver.received) == 1)
    assert receiver.received[0].message_id == str(leased.event_id)
    await enter_tenant(db, acme.id)
    attempts = list(await db.scalars(select(WebhookAttempt)))
    await db.commit()
    assert [(a.attempt, a.status_code) for a in attempts] == [(1, 200)]


async def test_a_pass_for_one_tenant_touches_no_other_tenants_rows(
    db: AsyncSession,
    acme: TenantWorld,
    superuser_engine: AsyncEngine,
    make_dispatcher: MakeDispatcher,
) -> None:
    """Handing out events and leasing deliveries are UPDATEs of a batch picked in a subquery:
    both stay inside the tenant being worked on (the ORM filter on SQLite, and RLS besides on
    PostgreSQL), so a pass never claims, or touches, another tenant's work."""
    globex = await build_tenant(db, "globex")
    for world in (acme, globex):
        endpoint = WebhookEndpointFactory(tenant_id=world.id)
        delivery = WebhookDeliveryFactory(tenant_id=world.id, endpoint=endpoint)
        await persist(db, OutboxEventFactory(tenant_id=world.id), delivery)
    dispatcher = make_dispatcher()
    before = await _work_rows(superuser_engine, globex.id)

    await dispatcher._hand_out_events(acme.id, utcnow())
    leased = await dispatcher._claim_due(acme.id, utcnow())

    assert {claimed.tenant_id for claimed in leased} == {acme.id}
    assert await _work_rows(superuser_engine, globex.id) == before
    acme_rows = await _work_rows(superuser_engine, acme.id)
    assert all(row.dispatch_after is None for row in acme_rows[OutboxEvent.__tablename__])


async def _work_rows(engine: AsyncEngine, tenant_id: uuid.UUID) -> dict[str, list[Any]]:
    """A tenant's events and deliveries, read past RLS."""
    found = {}
    async with engine.connect() as connection:
        for table in (OutboxEvent.__table__, WebhookDelivery.__table__):
            rows = await connection.execute(select(table).where(table.c.tenant_id == tenant_id))
            found[table.name] = sorted(rows.all(), key=lambda row: str(row.id))
    return found
