"""Invitations by email into a tenant, or into a project (and so the tenant)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    exists,
    or_,
    text,
)
from sqlalchemy.orm import Mapped, aliased, mapped_column, relationship

from backend.core.database import Base, CreatedAt, UUIDPrimaryKey, string_enum, utcnow
from backend.core.search import trigram_index
from backend.core.soft_delete import hide_also
from backend.identity.models import User
from backend.projects.models import Project
from tenants.isolation import TenantScoped
from tenants.models import Tenant
from tenants.roles import ProjectRole, TenantRole


class InvitationStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REVOKED = "revoked"
    EXPIRED = "expired"


# One pending invitation per tenant, project and email. Two partial indexes rather than one,
# because a unique index treats NULL project ids as distinct (and SQLite has no NULLS NOT
# DISTINCT): one for tenant-only invitations, one for project invitations.
_PENDING_TENANT_ONLY = text("status = 'pending' AND project_id IS NULL")
_PENDING_IN_PROJECT = text("status = 'pending' AND project_id IS NOT NULL")


class Invitation(TenantScoped, UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "invitations"
    __table_args__ = (
        CheckConstraint(
            "(project_id IS NULL) = (project_role IS NULL)", name="project_fields_together"
        ),
        ForeignKeyConstraint(
            ["tenant_id", "project_id"],
            ["projects.tenant_id", "projects.id"],
            ondelete="CASCADE",
        ),
        Index("ix_invitations_tenant_id_token_hash", "tenant_id", "token_hash", unique=True),
        Index("ix_invitations_tenant_id_email_status", "tenant_id", "email", "status"),
        Index("ix_invitations_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
        trigram_index("invitations", "email"),
        # A project owner's list (`?project_id=`), in list order.
        Index(
            "ix_invitations_tenant_id_project_id_created_at_id",
            "tenant_id",
            "project_id",
            "created_at",
            "id",
        ),
        Index(
            "ix_invitations_tenant_id_email_pending",
            "tenant_id",
            "email",
            unique=True,
            sqlite_where=_PENDING_TENANT_ONLY,
            postgresql_where=_PENDING_TENANT_ONLY,
        ),
        Index(
            "ix_invitations_tenant_id_project_id_email_pending",
            "tenant_id",
            "project_id",
            "email",
            unique=True,
            sqlite_where=_PENDING_IN_PROJECT,
            postgresql_where=_PENDING_IN_PROJECT,
        ),
    )

    email: Mapped[str] = mapped_column(String(320))  # normalised, like users.email
    role: Mapped[TenantRole] = mapped_column(string_enum(TenantRole, "tenant_role"))
    project_id: Mapped[uuid.UUID | None]
    project_role: Mapped[ProjectRole | None] = mapped_column(
        string_enum(ProjectRole, "project_role")
    )
    # SHA-256 of the whole token, whose first part is the tenant id: see invitations/tokens.py.
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
    project: Mapped[Project | None] = relationship(
        primaryjoin="and_(foreign(Invitation.tenant_id) == Project.tenant_id, "
        "foreign(Invitation.project_id) == Project.id)",
        lazy="raise",
        viewonly=True,
    )
    accepter: Mapped[User | None] = relationship(
        foreign_keys=[accepted_by], lazy="raise", viewonly=True
    )

    @property
    def current_status(self) -> InvitationStatus:
        """The status as people see it: a pending invitation past its expiry is expired, whether
        or not a later write has marked the row so yet."""
        if self.status is InvitationStatus.PENDING and self.expires_at <= utcnow():
            return InvitationStatus.EXPIRED
        return self.status


# An alias of its own, never correlated away by a query that joins the projects too.
_INVITED_PROJECT = aliased(Project, name="invited_project")


def _not_into_the_trash(invitation: Any) -> Any:
    """An invitation into a project is seen only while the project is not in the trash."""
    project = _INVITED_PROJECT
    live_project = (
        exists()
        .where(
            project.tenant_id == invitation.tenant_id,
            project.id == invitation.project_id,
            project.deleted_at.is_(None),
        )
        .correlate_except(project)
    )
    return or_(invitation.project_id.is_(None), live_project)


hide_also(Invitation, _not_into_the_trash)
