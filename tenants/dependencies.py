"""`TenantAccess`: the route's `TenantCaller`, resolved from the bearer token (`tenants.access`)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request

from backend.core.database import DbSession
from backend.core.observability import route_template
from backend.identity.dependencies import TokenClaims
from tenants.access import resolve_tenant_access
from tenants.caller import TenantCaller
from tenants.lifecycle import open_while_pending_deletion


async def _tenant_access(
    tenant_id: uuid.UUID, claims: TokenClaims, session: DbSession, request: Request
) -> TenantCaller:
    open_anyway = open_while_pending_deletion(request.method, route_template(request.scope))
    caller, _ = await resolve_tenant_access(
        session, claims, tenant_id, open_while_pending_deletion=open_anyway
    )
    return caller


TenantAccess = Annotated[TenantCaller, Depends(_tenant_access)]
