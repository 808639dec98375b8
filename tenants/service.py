"""Tenant and membership operations. Services take the session and never commit."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenants.isolation import cross_tenant
from tenants.models import Membership, Tenant
from tenants.schemas import MembershipSummary


async def memberships_of_user(session: AsyncSession, user_id: uuid.UUID) -> list[MembershipSummary]:
    """Every tenant the user belongs to: the one read that spans tenants by design."""
    statement = (
        select(Membership.tenant_id, Tenant.name, Membership.role)
        .join(Tenant, Tenant.id == Membership.tenant_id)
        .where(Membership.user_id == user_id)
        .order_by(Tenant.name, Tenant.id)
    )
    async with cross_tenant(session, "a user's own tenants"):
        rows = (await session.execute(statement)).all()
    return [MembershipSummary(tenant_id=t, tenant_name=n, role=r) for t, n, r in rows]
