"""Invitations by email into a tenant, or into a project (and so the tenant)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, ForeignKeyConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.core.database import Base, CreatedAt, UUIDPrimaryKey, string_enum
from backend.identity.models import User
from tenants.isolation import TenantScoped
from tenants.models import Tenant
from tenants.roles import ProjectRole, TenantRole


class InvitationStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REVOKED = "revoked"
    EXPIRED = "expired"


class Invitation(TenantScoped, UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "invitations"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "project_id"],
            ["projects.tenant_id", "projects.id"],
            ondelete="CASCADE",
        ),
        Index("ix_invitations_tenant_id_token_hash", "tenant_id", "token_hash", unique=True),
        Index("ix_invitations_tenant_id_email_status", "tenant_id", "email", "status"),
        Index("ix_invitations_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
    )

    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[TenantRole] = mapped_column(string_enum(TenantRole, "tenant_role"))
    project_id: Mapped[uuid.UUID | None]
    project_role: Mapped[ProjectRole | None] = mapped_column(
        string_enum(ProjectRole, "project_role")
    )
    token_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[InvitationStatus] = mapped_column(
        string_enum(InvitationStatus, "invitation_status"), default=InvitationStatus.PENDING
    )
    invited_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    accepted_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )

    tenant: Mapped[Tenant] = relationship(lazy="raise")
    inviter: Mapped[User | None] = relationship(foreign_keys=[invited_by], lazy="raise")
