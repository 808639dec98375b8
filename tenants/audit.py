"""Audit events: written in the same transaction as the change they record."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.audit import Actor, event_columns
from backend.core.pagination import PageRequest, fetch_page
from tenants.caller import TenantCaller
from tenants.models import AuditEvent
from tenants.outbox import record_event
from tenants.roles import TenantAction


def record_audit(
    session: AsyncSession,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: uuid.UUID | str,
    data: dict[str, Any] | None = None,
    *,
    event: BaseModel | None = None,
    event_type: str | None = None,
) -> AuditEvent:
    """Add an event to the session's tenant (taken from the tenant context, like every insert).

    With `event` (the object as the API shows it), the change is also published to the tenant's
    webhooks through the outbox, as `event_type` (default: `action`), in the same transaction.
    """
    columns = event_columns(actor, action, target_type, target_id, data)
    audit_event = AuditEvent(**columns, actor_client_id=actor.client_id)
    session.add(audit_event)
    if event is not None:
        record_event(session, event_type or action, event)
    return audit_event


async def list_audit_events(
    session: AsyncSession, caller: TenantCaller, page: PageRequest
) -> tuple[list[AuditEvent], str | None]:
    """A page of the tenant's audit log, newest first (owners and admins)."""
    caller.require(TenantAction.MANAGE)
    return await fetch_page(
        session, select(AuditEvent), AuditEvent.created_at, AuditEvent.id, page, newest_first=True
    )
