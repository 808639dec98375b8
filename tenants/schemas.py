"""Request and response bodies of the tenants layer."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from tenants.roles import TenantRole


class MembershipSummary(BaseModel):
    tenant_id: uuid.UUID
    tenant_name: str
    role: TenantRole


class UserWithMemberships(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    full_name: str
    is_superuser: bool
    email_verified_at: datetime | None
    created_at: datetime
    memberships: list[MembershipSummary]
