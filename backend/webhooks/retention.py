"""How long the webhook history is kept: outbox events, their deliveries and their attempts.

The purge (`backend.projects.purge`) calls `purge_webhook_history` for each tenant, in that
tenant's context (row-level security applies). An event older than `WEBHOOK_LOG_RETENTION_DAYS`
goes once its work is over: handed out to the endpoints, and none of its deliveries pending.
Its deliveries and their attempts (the delivery log) go with it (foreign keys, ON DELETE
CASCADE). Work still to do is kept whatever its age: an event not yet handed out, a delivery
waiting for its next attempt or for its endpoint to be enabled again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, delete, exists
from sqlalchemy.ext.asyncio import AsyncSession

from backend.webhooks.models import DeliveryStatus, WebhookDelivery
from tenants.outbox import OutboxEvent


async def purge_webhook_history(session: AsyncSession, before: datetime) -> int:
    """Delete the tenant's finished webhook history older than `before`; how many events went."""
    pending = exists().where(
        and_(
            WebhookDelivery.tenant_id == OutboxEvent.tenant_id,
            WebhookDelivery.event_id == OutboxEvent.id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
        )
    )
    purged = await session.execute(
        delete(OutboxEvent)
        .where(OutboxEvent.occurred_at < before, OutboxEvent.dispatch_after.is_(None), ~pending)
        .execution_options(synchronize_session=False)
    )
    return int(purged.rowcount)  # type: ignore[attr-defined]
