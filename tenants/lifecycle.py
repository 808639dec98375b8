"""A tenant's deletion: scheduled by its owner, restorable for a grace period, then purged.

`DELETE /api/v1/tenants/{id}` does not remove anything at once: the tenant becomes
`pending_deletion` until `purge_after` (`TENANT_DELETION_GRACE_DAYS` later). Meanwhile the
tenant is closed: `TenantAccess` answers 403 on every tenant route except those listed in
`OPEN_WHILE_PENDING_DELETION`, the one place that says which. Its owner may restore it; a
platform admin may restore it or purge it at once from the panel. Past `purge_after`, the purge
(`backend.projects.purge`) deletes the tenant row, and with it every row of the tenant (ON
DELETE CASCADE), and records the event in the platform log: the tenant's own log goes with it.

Services take the session and a caller, decide and audit here, and never commit.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.audit import Actor
from backend.core.conditional import ANY_VERSION, Preconditions, flush_at_version
from backend.core.database import utcnow
from backend.core.errors import Conflict, Forbidden
from backend.identity.audit import record_platform_audit
from tenants.audit import record_audit
from tenants.caller import TenantCaller
from tenants.isolation import enter_tenant
from tenants.models import Tenant, TenantStatus
from tenants.roles import TenantAction
from tenants.service import tenant_tag

# The routes a tenant pending deletion still serves, as (method, path template): reading the
# tenant (to see `purge_after`), restoring it, and taking its data away.
OPEN_WHILE_PENDING_DELETION: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/api/v1/tenants/{tenant_id}"),
        ("POST", "/api/v1/tenants/{tenant_id}/restore"),
        ("GET", "/api/v1/tenants/{tenant_id}/export"),
    }
)
NOT_PENDING_DELETION = "This tenant is not scheduled for deletion."


def open_while_pending_deletion(method: str, path_template: str) -> bool:
    return (method, path_template) in OPEN_WHILE_PENDING_DELETION


async def delete_tenant(
    session: AsyncSession,
    caller: TenantCaller,
    *,
    grace: timedelta,
    precondition: Preconditions = ANY_VERSION,
) -> Tenant:
    """Schedule the tenant's deletion (owners): closed at once, purged after `grace` unless
    restored. Under `If-Match`, only at the version compared (412)."""
    caller.require(TenantAction.DELETE)
    tenant = caller.tenant
    precondition.require_match(tenant_tag(tenant, caller.role))
    tenant.status, tenant.purge_after = TenantStatus.PENDING_DELETION, utcnow() + grace
    data = {"purge_after": tenant.purge_after.isoformat()}
    record_audit(session, caller.actor, "tenant.deletion_scheduled", "tenant", tenant.id, data)
    await flush_at_version(session, precondition)
    return tenant


async def restore_tenant(session: AsyncSession, caller: TenantCaller) -> Tenant:
    """Cancel the tenant's deletion (owners, and platform admins from the panel): active
    again. 409 when it is not pending deletion."""
    caller.require(TenantAction.DELETE)
    tenant = caller.tenant
    if tenant.status is not TenantStatus.PENDING_DELETION:
        raise Conflict(NOT_PENDING_DELETION)
    tenant.status, tenant.purge_after = TenantStatus.ACTIVE, None
    record_audit(session, caller.actor, "tenant.restored", "tenant", tenant.id, {})
    await flush_at_version(session)
    return tenant


async def purge_tenant_now(session: AsyncSession, caller: TenantCaller) -> None:
    """Purge a tenant pending deletion without waiting for its grace period (platform admins,
    from the panel)."""
    if not caller.platform:
        raise Forbidden("Only platform admins purge a tenant before its grace period ends.")
    if caller.tenant.status is not TenantStatus.PENDING_DELETION:
        raise Conflict(NOT_PENDING_DELETION)
    await _purge(session, caller.tenant, caller.actor)


async def tenants_due_for_purge(session: AsyncSession, now: datetime) -> list[uuid.UUID]:
    """The tenants pending deletion whose grace period is over (a global table: no context)."""
    statement = select(Tenant.id).where(
        Tenant.status == TenantStatus.PENDING_DELETION, Tenant.purge_after <= now
    )
    return list(await session.scalars(statement.order_by(Tenant.id)))


async def purge_due_tenant(session: AsyncSession, tenant_id: uuid.UUID, now: datetime) -> bool:
    """Purge `tenant_id` if it is still pending deletion past its grace period (the purge job,
    as the system); False when a restore came first."""
    await enter_tenant(session, tenant_id)
    tenant = await session.scalar(
        select(Tenant)
        .where(
            Tenant.id == tenant_id,
            Tenant.status == TenantStatus.PENDING_DELETION,
            Tenant.purge_after <= now,
        )
        .with_for_update()
    )
    if tenant is None:
        return False
    await _purge(session, tenant, Actor())
    return True


async def _purge(session: AsyncSession, tenant: Tenant, actor: Actor) -> None:
    await enter_tenant(session, tenant.id)
    data = {"name": tenant.name, "slug": tenant.slug}
    record_platform_audit(session, actor, "tenant.purged", "tenant", tenant.id, data)
    await session.execute(delete(Tenant).where(Tenant.id == tenant.id))
