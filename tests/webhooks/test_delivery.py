"""Delivery: retries after a 500 and after a timeout, the delivery log, giving up, disabling
the endpoint, no redirects, and secret rotation."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import WebhookVerificationError

from backend.core.database import utcnow
from backend.webhooks.models import DeliveryStatus, WebhookEndpoint
from tenants.isolation import enter_tenant
from tenants.models import AuditEvent
from tests.harness.receiver import HANG, Receiver
from tests.harness.smtp import Mailbox
from tests.webhooks.conftest import (
    MakeDispatcher,
    create_task,
    delivery_rows,
    register,
    run_until,
)
from tests.world import TenantWorld


async def _log(client: httpx.AsyncClient, app: FastAPI, world: TenantWorld, hook: str) -> list:
    response = await client.get(
        f"/api/v1/tenants/{world.id}/webhooks/{hook}/deliveries",
        headers=world.headers(app, "olive"),
    )
    assert response.status_code == 200
    return response.json()["items"]


async def test_a_500_is_retried_and_the_log_shows_each_attempt(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: AsyncSession,
    acme: TenantWorld,
    receiver: Receiver,
    make_dispatcher: MakeDispatcher,
) -> None:
    endpoint = await register(client, app, acme, receiver.url)
    receiver.plan = [500]
    task = await create_task(client, app, acme)
    dispatcher = make_dispatcher()

    await run_until(dispatcher, lambda: len(receiver.received) == 2)

    first, second = receiver.received
    assert first.message_id == second.message_id  # one message, sent twice
    assert second.verified(endpoint["secret"])["data"] == task
    newest, oldest = await _log(client, app, acme, endpoint["id"])
    assert (oldest["attempt"], oldest["status_code"], oldest["error"]) == (1, 500, "HTTP 500")
    assert oldest["response_body"] == "answered 500"
    assert oldest["next_attempt_at"] is not None
    assert oldest["event_type"] == "task.created"
    assert (newest["attempt"], newest["status_code"], newest["error"]) == (2, 200, None)
    assert newest["next_attempt_at"] is None
    assert newest["delivery_id"] == oldest["delivery_id"]
    [delivery] = await delivery_rows(db, acme)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SUCCEEDED, 2)


async def test_no_answer_in_time_is_retried(
    app: FastAPI,
    client: httpx.AsyncClient,
    acme: TenantWorld,
    receiver: Receiver,
    make_dispatcher: MakeDispatcher,
) -> None:
    endpoint = await register(client, app, acme, receiver.url)
    # The attempt's timeout is a setting, 2 s here (10 s by default): long enough for a loaded
    # machine to answer the retry in time, well short of the hanging receiver's 8 s.
    receiver.plan, receiver.hang_seconds = [HANG], 8.0
    await create_task(client, app, acme)
    dispatcher = make_dispatcher(webhook_timeout_seconds=2.0)

    await run_until(dispatcher, lambda: len(receiver.received) == 2)

    newest, oldest = await _log(client, app, acme, endpoint["id"])
    assert oldest["status_code"] is None
    assert oldest["error"] == "No answer within 2 s."
    assert 2000 <= oldest["duration_ms"] < receiver.hang_seconds * 1000
    assert newest["status_code"] == 200


async def test_a_redirect_is_not_followed(
    app: FastAPI,
    client: httpx.AsyncClient,
    acme: TenantWorld,
    receiver: Receiver,
    make_dispatcher: MakeDispatcher,
) -> None:
    endpoint = await register(client, app, acme, receiver.url)
    receiver.plan = [307]
    await create_task(client, app, acme)
    dispatcher = make_dispatcher(webhook_retry_schedule_seconds=[60.0])

    await run_until(dispatcher, lambda: len(receiver.received) == 1)

    [attempt] = await _log(client, app, acme, endpoint["id"])
    assert (attempt["status_code"], attempt["error"]) == (307, "HTTP 307")
    assert [r.path for r in receiver.received] == ["/hooks"]  # not /elsewhere


async def test_after_the_schedule_the_delivery_fails_and_repeated_failures_disable_the_endpoint(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: AsyncSession,
    acme: TenantWorld,
    receiver: Receiver,
    mailbox: Mailbox,
    make_dispatcher: MakeDispatcher,
) -> None:
    endpoint = await register(client, app, acme, receiver.url)
    receiver.status = 500
    await create_task(client, app, acme)
    await create_task(client, app, acme)
    dispatcher = make_dispatcher(
        webhook_retry_schedule_seconds=[0.1], webhook_disable_after_failures=2
    )

    await run_until(dispatcher, lambda: len(receiver.received) == 4)
    await dispatcher.run_once()
    await dispatcher.drain()

    deliveries = await delivery_rows(db, acme)
    assert {(d.status, d.attempts, d.next_attempt_at) for d in deliveries} == {
        (DeliveryStatus.FAILED, 2, None)
    }
    shown = await client.get(
        f"/api/v1/tenants/{acme.id}/webhooks/{endpoint['id']}", headers=acme.headers(app, "olive")
    )
    assert shown.json()["enabled"] is False
    assert shown.json()["consecutive_failures"] == 2
    await enter_tenant(db, acme.id)
    audit = await db.scalar(select(AuditEvent).where(AuditEvent.action == "webhook.disabled"))
    await db.commit()
    assert audit is not None
    assert (audit.actor_user_id, audit.target_id) == (None, endpoint["id"])
    [mail] = await mailbox.wait_for("olive.acme@example.com")
    assert "disabled" in mail["Subject"]

    # Nothing goes to a disabled endpoint; once re-enabled, new events do.
    await create_task(client, app, acme)
    await dispatcher.run_once()
    await dispatcher.drain()
    assert len(receiver.received) == 4
    receiver.status = 200
    enabled = await client.patch(
        f"/api/v1/tenants/{acme.id}/webhooks/{endpoint['id']}",
        json={"enabled": True},
        headers=acme.headers(app, "olive"),
    )
    assert enabled.json()["consecutive_failures"] == 0
    await create_task(client, app, acme)
    await run_until(dispatcher, lambda: len(receiver.received) == 5)
    assert receiver.received[-1].verified(endpoint["secret"])["type"] == "task.created"


async def test_a_failed_delivery_is_retried_on_request(
    app: FastAPI,
    client: httpx.AsyncClient,
    acme: TenantWorld,
    receiver: Receiver,
    make_dispatcher: MakeDispatcher,
) -> None:
    endpoint = await register(client, app, acme, receiver.url)
    receiver.plan = [500]
    await create_task(client, app, acme)
    dispatcher = make_dispatcher(webhook_retry_schedule_seconds=[])
    await run_until(dispatcher, lambda: len(receiver.received) == 1)
    [failed] = await _log(client, app, acme, endpoint["id"])
    assert failed["next_attempt_at"] is None

    retried = await client.post(
        f"/api/v1/tenants/{acme.id}/webhooks/{endpoint['id']}/deliveries/"
        f"{failed['delivery_id']}/retry",
        headers=acme.headers(app, "olive"),
    )

    assert retried.status_code == 202
    assert retried.json()["status"] == "pending"
    await run_until(dispatcher, lambda: len(receiver.received) == 2)
    newest, _ = await _log(client, app, acme, endpoint["id"])
    assert (newest["attempt"], newest["status_code"]) == (2, 200)


async def test_a_rotated_secret_signs_beside_the_old_one_for_a_day(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: AsyncSession,
    acme: TenantWorld,
    receiver: Receiver,
    make_dispatcher: MakeDispatcher,
) -> None:
    endpoint = await register(client, app, acme, receiver.url)
    old = endpoint["secret"]
    rotated = await client.post(
        f"/api/v1/tenants/{acme.id}/webhooks/{endpoint['id']}/rotate-secret",
        headers=acme.headers(app, "olive"),
    )
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new.startswith("whsec_")
    assert new != old
    await create_task(client, app, acme)
    dispatcher = make_dispatcher()
    await run_until(dispatcher, lambda: len(receiver.received) == 1)

    [during] = receiver.received
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert during.verified(old) == during.verified(new)

    # A day later the old secret no longer signs.
    await enter_tenant(db, acme.id)
    await db.execute(
        update(WebhookEndpoint).values(previous_secret_expires_at=utcnow() - timedelta(seconds=1))
    )
    await db.commit()
    await create_task(client, app, acme)
    await run_until(dispatcher, lambda: len(receiver.received) == 2)
    after = receiver.received[1]
    assert after.headers["webhook-signature"].count("v1,") == 1
    assert after.verified(new)["type"] == "task.created"
    with pytest.raises(WebhookVerificationError):
        after.verified(old)


async def test_ping_sends_a_webhook_ping_to_that_endpoint_only(
    app: FastAPI,
    client: httpx.AsyncClient,
    acme: TenantWorld,
    receiver: Receiver,
    make_dispatcher: MakeDispatcher,
) -> None:
    endpoint = await register(client, app, acme, receiver.url)
    await register(client, app, acme, receiver.url.replace("/hooks", "/other"))

    pinged = await client.post(
        f"/api/v1/tenants/{acme.id}/webhooks/{endpoint['id']}/ping",
        headers=acme.headers(app, "olive"),
    )

    assert pinged.status_code == 202
    await run_until(make_dispatcher(), lambda: len(receiver.received) == 1)
    [ping] = receiver.received
    payload = ping.verified(endpoint["secret"])
    assert payload["type"] == "webhook.ping"
    assert payload["data"] == {"webhook_id": endpoint["id"], "url": receiver.url}
    assert payload["id"] == pinged.json()["event_id"]
