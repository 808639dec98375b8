"""The transactional outbox: what happened in a tenant, written in the transaction that did it.

A service records an event beside its audit event (`tenants.audit.record_audit(..., event=...)`):
both are rows of the same transaction, so a change that rolls back leaves no event, and one that
commits leaves one for the webhook dispatcher (`backend.webhooks`) to deliver. `data` is the
object as the API shows it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel
from sqlalchemy import JSON, Index, String, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.database import Base, UUIDPrimaryKey, utcnow
from tenants.isolation import CrossTenantRead, TenantScoped

# The event types a webhook endpoint may subscribe to (`webhook.ping` is sent on request only).
EventType = Literal[
    "member.added",
    "member.role_changed",
    "member.removed",
    "project.created",
    "project.updated",
    "project.deleted",
    "task.created",
    "task.updated",
    "task.deleted",
    "invitation.created",
    "invitation.accepted",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
PING = "webhook.ping"
ALL_EVENTS = "*"  # a subscription to every type


class OutboxEvent(TenantScoped, UUIDPrimaryKey, Base):
    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_events_tenant_id_occurred_at_id", "tenant_id", "occurred_at", "id"),
        # The dispatcher's work: the events not yet handed to the tenant's endpoints.
        Index(
            "ix_outbox_events_tenant_id_dispatch_after",
            "tenant_id",
            "dispatch_after",
            postgresql_where=text("dispatch_after IS NOT NULL"),
            sqlite_where=text("dispatch_after IS NOT NULL"),
        ),
    )

    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set while the event waits for the dispatcher to make its deliveries; then null.
    dispatch_after: Mapped[datetime | None]

    def payload(self) -> dict[str, Any]:
        """The body every subscriber receives (Standard Webhooks: id, type, timestamp, data)."""
        return {
            "id": str(self.id),
            "type": self.type,
            "tenant_id": str(self.tenant_id),
            "occurred_at": self.occurred_at.isoformat().replace("+00:00", "Z"),
            "data": self.data,
        }


# The dispatcher's one look across tenants: which tenants have events to hand out. Only tenant
# ids come back; the work itself is done in each tenant's context.
EVENTS_TO_DISPATCH = CrossTenantRead(
    "outbox_tenants_due",
    OutboxEvent.__table__,
    by="dispatch_after",
    columns=("tenant_id",),
    at_or_before=True,
)


def record_event(
    session: AsyncSession, event_type: str, data: BaseModel | dict[str, Any]
) -> OutboxEvent:
    """Add an event to the session's tenant (from the tenant context, like every insert)."""
    body = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
    now = utcnow()
    event = OutboxEvent(id=uuid.uuid4(), type=event_type, data=body, occurred_at=now)
    event.dispatch_after = now
    session.add(event)
    return event
