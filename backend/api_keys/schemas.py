"""Request and response bodies of personal API keys. The key itself appears in one answer only:
the creation's."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from backend.core.schemas import RequestBody
from backend.core.secrets import SHOWN_ONCE
from tenants.roles import TenantRole
from tenants.schemas import TenantName

MAX_DAYS = 365


class ApiKeyCreate(RequestBody):
    name: TenantName = Field(description="What the key is for, to tell keys apart.")
    tenant_id: uuid.UUID = Field(description="The one tenant the key acts in.")
    role: TenantRole = Field(
        description="The key's role: the caller's own role in the tenant, or a weaker one. The "
        "key acts with the lower of this role and its user's role at the time of each request."
    )
    expires_in_days: int = Field(ge=1, le=MAX_DAYS)


class ApiKeyCreated(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str = Field(description="The key's first characters, shown in lists.")
    key: Annotated[str | None, SHOWN_ONCE] = Field(
        description="The key, shown this once: `tdk_`, 43 base62 characters, a 6-character "
        "base62 CRC32 checksum. Send it as `Authorization: Bearer tdk_...`. Null in a replayed "
        "answer (`Idempotent-Replayed: true`)."
    )
    tenant_id: uuid.UUID
    role: TenantRole
    expires_at: datetime


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    tenant_id: uuid.UUID = Field(validation_alias="scope_tenant_id")
    role: TenantRole
    expires_at: datetime
    created_at: datetime
    last_used_at: datetime | None = Field(description="To the minute.")
