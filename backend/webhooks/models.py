"""Webhook endpoints, the deliveries of events to them, and each attempt: tenant tables."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.database import Base, CreatedAt, UUIDPrimaryKey, string_enum, utcnow
from tenants.isolation import CrossTenantRead, TenantScoped


class WebhookEndpoint(TenantScoped, UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        Index("ix_webhook_endpoints_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
    )

    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(500), default="")
    # Event types, or ["*"] for all of them.
    events: Mapped[list[str]] = mapped_column(JSON)
    # The signing secret, encrypted with a key derived from SECRET_KEY (`signing.SecretBox`):
    # it must be read back to sign, so it cannot be a hash. The previous one signs alongside
    # the new one until `previous_secret_expires_at` (rotation).
    secret_encrypted: Mapped[str] = mapped_column(Text)
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None]
    enabled: Mapped[bool] = mapped_column(default=True)
    # Deliveries that failed for good in a row; any success resets it.
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WebhookDelivery(TenantScoped, UUIDPrimaryKey, CreatedAt, Base):
    """One event to one endpoint, until it succeeds or runs out of retries."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "endpoint_id"],
            ["webhook_endpoints.tenant_id", "webhook_endpoints.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "event_id"],
            ["outbox_events.tenant_id", "outbox_events.id"],
            ondelete="CASCADE",
        ),
        # The dispatcher's work: pending deliveries by the time they are due.
        Index(
            "ix_webhook_deliveries_tenant_id_next_attempt_at",
            "tenant_id",
            "next_attempt_at",
            postgresql_where=text("next_attempt_at IS NOT NULL"),
            sqlite_where=text("next_attempt_at IS NOT NULL"),
        ),
        Index("ix_webhook_deliveries_tenant_id_endpoint_id", "tenant_id", "endpoint_id"),
        Index("ix_webhook_deliveries_tenant_id_event_id", "tenant_id", "event_id"),
    )

    endpoint_id: Mapped[uuid.UUID]
    event_id: Mapped[uuid.UUID]
    status: Mapped[DeliveryStatus] = mapped_column(
        string_enum(DeliveryStatus, "webhook_delivery_status"), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When the next attempt is due; null once the delivery ended, or while its endpoint is
    # disabled (re-enabling it makes its pending deliveries due again).
    next_attempt_at: Mapped[datetime | None]
    # The lease of the dispatcher sending it: nobody else sends it before then. A dispatcher
    # that dies mid-send leaves it to be sent again once the lease has passed (at least once).
    claimed_until: Mapped[datetime | None]
    claim_token: Mapped[uuid.UUID | None]


class WebhookAttempt(TenantScoped, UUIDPrimaryKey, CreatedAt, Base):
    """One HTTP request of a delivery: the delivery log."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "delivery_id"],
            ["webhook_deliveries.tenant_id", "webhook_deliveries.id"],
            ondelete="CASCADE",
        ),
        Index(
            "ix_webhook_attempts_tenant_id_endpoint_id_created_at_id",
            "tenant_id",
            "endpoint_id",
            "created_at",
            "id",
        ),
        Index("ix_webhook_attempts_tenant_id_delivery_id", "tenant_id", "delivery_id"),
    )

    delivery_id: Mapped[uuid.UUID]
    # Copied from the delivery so that an endpoint's log is one index range.
    endpoint_id: Mapped[uuid.UUID]
    event_id: Mapped[uuid.UUID]
    event_type: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    response_body: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None]


# The dispatcher's other look across tenants: which tenants have deliveries due. Only tenant
# ids come back; claiming and sending happen in each tenant's context.
DELIVERIES_DUE = CrossTenantRead(
    "webhook_tenants_due",
    WebhookDelivery.__table__,
    by="next_attempt_at",
    columns=("tenant_id",),
    at_or_before=True,
)
