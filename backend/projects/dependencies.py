"""`ProjectAccess`: the route's `ProjectCaller`, resolved with the tenant access in one query;
`TaskAccess`: the same, with the task the route reads, still in one query."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from backend.core.database import DbSession
from backend.identity.dependencies import TokenClaims
from backend.projects.access import ProjectCaller, resolve_project_access
from backend.projects.tasks import TaskRead, resolve_task_read


async def _project_access(
    tenant_id: uuid.UUID, project_id: uuid.UUID, claims: TokenClaims, session: DbSession
) -> ProjectCaller:
    caller, _ = await resolve_project_access(session, claims, tenant_id, project_id)
    return caller


ProjectAccess = Annotated[ProjectCaller, Depends(_project_access)]


async def _task_access(
    tenant_id: uuid.UUID,
    project_id: uuid.UUID,
    task_id: uuid.UUID,
    claims: TokenClaims,
    session: DbSession,
) -> TaskRead:
    return await resolve_task_read(session, claims, tenant_id, project_id, task_id)


TaskAccess = Annotated[TaskRead, Depends(_task_access)]
