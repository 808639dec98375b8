"""`ProjectAccess`: the route's `ProjectCaller`, resolved with the tenant access in one query."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from backend.core.database import DbSession
from backend.identity.dependencies import TokenClaims
from backend.projects.access import ProjectCaller, resolve_project_access


async def _project_access(
    tenant_id: uuid.UUID, project_id: uuid.UUID, claims: TokenClaims, session: DbSession
) -> ProjectCaller:
    return await resolve_project_access(session, claims, tenant_id, project_id)


ProjectAccess = Annotated[ProjectCaller, Depends(_project_access)]
