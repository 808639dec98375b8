"""`TenantAccess`: the route's `TenantCaller`, resolved from the bearer token (`tenants.access`)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from backend.core.database import DbSession
from backend.identity.dependencies import TokenClaims
from tenants.access import resolve_tenant_access
from tenants.caller import TenantCaller


async def _tenant_access(
    tenant_id: uuid.UUID, claims: TokenClaims, session: DbSession
) -> TenantCaller:
    caller, _ = await resolve_tenant_access(session, claims, tenant_id)
    return caller


TenantAccess = Annotated[TenantCaller, Depends(_tenant_access)]
