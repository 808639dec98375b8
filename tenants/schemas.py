"""Request and response bodies of the tenants layer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from backend.core.schemas import RequestBody
from backend.core.text import NAME_PATTERN, strip_surrounding_space
from backend.identity.models import ClientRole
from backend.identity.schemas import UserRead
from tenants.models import TenantStatus
from tenants.roles import TenantRole


class MembershipSummary(BaseModel):
    tenant_id: uuid.UUID
    tenant_name: str
    role: TenantRole


class UserWithMemberships(UserRead):
    memberships: list[MembershipSummary]


SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$"
TenantName = Annotated[
    str,
    Field(min_length=1, max_length=200, pattern=NAME_PATTERN),
    AfterValidator(strip_surrounding_space),
]
TenantSlug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]


class TenantCreate(RequestBody):
    name: TenantName
    slug: TenantSlug = Field(description="3 to 63 lower-case letters, digits and inner hyphens.")


class TenantUpdate(RequestBody):
    name: TenantName | None = None
    slug: TenantSlug | None = None


class TenantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    slug: str
    name: str
    status: TenantStatus
    purge_after: datetime | None = Field(
        default=None,
        description="When a tenant pending deletion is purged, unless its owner restores it.",
    )
    created_at: datetime
    role: TenantRole = Field(description="The caller's role in the tenant.")


class TenantDeletionScheduled(BaseModel):
    status: Literal["pending_deletion"] = "pending_deletion"
    purge_after: datetime = Field(description="When the tenant is purged, unless restored.")


class MemberOut(BaseModel):
    user_id: uuid.UUID
    email: str
    full_name: str
    role: TenantRole
    created_at: datetime = Field(description="When the user joined the tenant.")


class MemberRoleUpdate(RequestBody):
    role: TenantRole


class ServiceClientCreate(RequestBody):
    name: TenantName
    role: ClientRole


class ServiceClientOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    client_id: str
    name: str
    role: ClientRole
    created_by: uuid.UUID | None
    created_at: datetime


class ServiceClientCreated(ServiceClientOut):
    client_secret: str | None = Field(
        description="Shown once: only its hash is kept. Null in a replayed answer "
        "(`Idempotent-Replayed: true`)."
    )


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    actor_user_id: uuid.UUID | None
    actor_client_id: str | None
    anonymous_actor_id: uuid.UUID | None = Field(
        default=None, description="Who acted, when their account has been erased since."
    )
    action: str
    target_type: str
    target_id: str
    data: dict[str, Any]
    created_at: datetime
