"""Tenants (global) and the tenant tables of this layer: memberships and audit events."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.core.database import Base, CreatedAt, UUIDPrimaryKey, Versioned, string_enum
from backend.core.search import trigram_index
from backend.identity.models import User
from tenants.isolation import CrossTenantRead, TenantScoped
from tenants.roles import TenantRole


class TenantStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    # Deleted by its owner: closed, restorable until `purge_after`, then purged for good.
    PENDING_DELETION = "pending_deletion"


class Tenant(UUIDPrimaryKey, CreatedAt, Versioned, Base):
    __tablename__ = "tenants"
    __table_args__ = (trigram_index("tenants", "name"), trigram_index("tenants", "slug"))

    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[TenantStatus] = mapped_column(
        string_enum(TenantStatus, "tenant_status"), default=TenantStatus.ACTIVE
    )
    purge_after: Mapped[datetime | None] = mapped_column(default=None)


class Membership(TenantScoped, CreatedAt, Versioned, Base):
    __tablename__ = "memberships"
    __table_args__ = (
        Index("ix_memberships_tenant_id_created_at_user_id", "tenant_id", "created_at", "user_id"),
        # The one index not led by tenant_id: "my tenants" must find a user's memberships without
        # visiting every tenant. Citus allows it (it is not unique); see tests/test_schema_rules.
        Index("ix_memberships_user_id", "user_id"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[TenantRole] = mapped_column(string_enum(TenantRole, "tenant_role"))

    user: Mapped[User] = relationship(lazy="raise")
    tenant: Mapped[Tenant] = relationship(lazy="raise")


# A user's own tenants (GET /users/me, GET /tenants, the panel's tenant picker): the one read
# across tenants that the request path needs; see `tenants.isolation.CrossTenantRead`.
USER_TENANTS = CrossTenantRead(
    "user_tenants",
    Membership.__table__,
    by="user_id",
    columns=("tenant_id", "role"),
)


class AuditEvent(TenantScoped, UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
        trigram_index("audit_events", "action"),
        trigram_index("audit_events", "target_id"),
    )

    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    actor_client_id: Mapped[str | None] = mapped_column(String(64))
    # Who acted, once their account was erased: the same random id in each of their events.
    anonymous_actor_id: Mapped[uuid.UUID | None]
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(64))
    target_id: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    tenant: Mapped[Tenant] = relationship(lazy="raise", viewonly=True)
    actor: Mapped[User | None] = relationship(
        foreign_keys=[actor_user_id], lazy="raise", viewonly=True
    )
