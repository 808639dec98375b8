"""Retention: the purge (`tenantdesk purge`, and the daily run) removes the webhook history
whose work is over once it is older than `WEBHOOK_LOG_RETENTION_DAYS`, in every tenant, and
keeps the rest."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from backend.core.database import utcnow
from backend.projects.purge import run_purge
from backend.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery
from tenants.outbox import OutboxEvent
from tests.factories import (
    OutboxEventFactory,
    WebhookAttemptFactory,
    WebhookDeliveryFactory,
    WebhookEndpointFactory,
    persist,
)
from tests.world import TenantWorld, build_tenant


def _history(
    world: TenantWorld,
    occurred_at: datetime,
    status: DeliveryStatus | None,
    *,
    handed_out: bool = True,
) -> tuple[OutboxEvent, list[object]]:
    """An event of `world` that occurred at `occurred_at`, with one delivery in `status` and
    its attempt (none without a status: an event no endpoint subscribed to)."""
    made = OutboxEventFactory(
        tenant_id=world.id,
        occurred_at=occurred_at,
        dispatch_after=None if handed_out else occurred_at,
    )
    if status is None:
        return made, [made]
    endpoint = WebhookEndpointFactory(tenant_id=world.id)
    delivery = WebhookDeliveryFactory(
        tenant_id=world.id,
        endpoint=endpoint,
        event=made,
        status=status,
        attempts=1,
        next_attempt_at=occurred_at if status is DeliveryStatus.PENDING else None,
        created_at=occurred_at,
    )
    attempt = WebhookAttemptFactory(delivery=delivery, created_at=occurred_at)
    return made, [endpoint, made, delivery, attempt]


async def _left(engine: AsyncEngine) -> dict[str, set[uuid.UUID]]:
    """The event ids left in each table of the history, read past RLS."""
    async with engine.connect() as connection:
        return {
            model.__tablename__: set(await connection.scalars(select(column)))
            for model, column in (
                (OutboxEvent, OutboxEvent.id),
                (WebhookDelivery, WebhookDelivery.event_id),
                (WebhookAttempt, WebhookAttempt.event_id),
            )
        }


async def test_the_purge_removes_finished_history_past_retention_and_keeps_the_rest(
    app: FastAPI, db: AsyncSession, acme: TenantWorld, superuser_engine: AsyncEngine
) -> None:
    days = app.state.settings.webhook_log_retention_days
    old, recent = utcnow() - timedelta(days=days + 1), utcnow() - timedelta(days=days - 1)
    globex = await build_tenant(db, "globex")
    purged = [
        _history(acme, old, DeliveryStatus.SUCCEEDED),
        _history(acme, old, DeliveryStatus.FAILED),
        _history(acme, old, None),
        _history(globex, old, DeliveryStatus.SUCCEEDED),
    ]
    kept = [
        _history(acme, recent, DeliveryStatus.SUCCEEDED),
        _history(acme, old, DeliveryStatus.PENDING),  # a retry, or an endpoint disabled
        _history(acme, old, None, handed_out=False),  # not handed out yet
    ]
    for _, rows in purged + kept:
        await persist(db, *rows)

    report = await run_purge(app.state.database, app.state.settings)

    assert report is not None
    assert report.webhook_events == len(purged)
    left = await _left(superuser_engine)
    assert left[OutboxEvent.__tablename__] == {event.id for event, _ in kept}
    with_deliveries = {event.id for event, rows in kept if len(rows) > 1}
    assert left[WebhookDelivery.__tablename__] == with_deliveries
    assert left[WebhookAttempt.__tablename__] == with_deliveries
