"""Bodies and answers of the privacy routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from backend.core.schemas import RequestBody
from backend.identity.schemas import GivenPassword
from tenants.schemas import MembershipSummary


class AccountErasure(RequestBody):
    password: GivenPassword = Field(description="The account's password, to confirm.")


class AccountProfile(BaseModel):
    id: uuid.UUID
    email: str
    full_name: str
    is_active: bool
    is_superuser: bool
    email_verified_at: datetime | None
    created_at: datetime


class ProjectMembershipRecord(BaseModel):
    tenant_id: uuid.UUID
    project_id: uuid.UUID
    name: str
    role: str
    created_at: datetime


class SessionRecord(BaseModel):
    """A sign-in session's refresh token, without the token."""

    id: uuid.UUID
    family_id: uuid.UUID
    client_id: str
    scope: str
    issued_at: datetime
    expires_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None


class PanelSessionRecord(BaseModel):
    """An admin panel session, without the id its cookie carries."""

    user_id: uuid.UUID
    created_at: datetime
    expires_at: datetime


class ApiKeyRecord(BaseModel):
    """A personal API key, without the key: its prefix tells it apart."""

    id: uuid.UUID
    scope_tenant_id: uuid.UUID
    name: str
    prefix: str
    role: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class ActedPlatformAuditEvent(BaseModel):
    """An event of the platform's own log (sign-up, profile, sessions): no tenant."""

    id: uuid.UUID
    action: str
    target_type: str
    target_id: str
    data: dict[str, Any]
    created_at: datetime


class ActedAuditEvent(ActedPlatformAuditEvent):
    """An event of a tenant's log: the same, and its tenant."""

    tenant_id: uuid.UUID


class AccountExport(BaseModel):
    """What the service holds about the caller (GDPR Art. 20)."""

    profile: AccountProfile
    memberships: list[MembershipSummary]
    project_memberships: list[ProjectMembershipRecord]
    sessions: list[SessionRecord]
    panel_sessions: list[PanelSessionRecord]
    api_keys: list[ApiKeyRecord]
    audit_events: list[ActedAuditEvent]
    platform_audit_events: list[ActedPlatformAuditEvent]
