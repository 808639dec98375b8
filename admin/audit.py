"""Every admin write is an audit event, in the same transaction as the write, with the admin as
actor: in the tenant's `audit_events` when it concerns a tenant, otherwise in
`platform_audit_events`. Writes made through a service are recorded by the service (with the
admin as actor); the generic create, edit and delete of `AdminView` are recorded here."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from admin.scoping import AdminScope
from backend.identity.models import PlatformAuditEvent
from tenants.audit import record_audit
from tenants.isolation import TenantMismatch, current_tenant_id

ACTION_PREFIX = "admin."


def audit_value(value: Any) -> Any:
    """A JSON-ready form of a column value."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, uuid.UUID | datetime):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    return str(value)


def audit_data(values: dict[str, Any]) -> dict[str, Any]:
    return {name: audit_value(value) for name, value in values.items()}


async def record_admin_write(
    session: AsyncSession,
    scope: AdminScope,
    action: str,
    target_type: str,
    target_id: object,
    *,
    tenant_id: uuid.UUID | None,
    data: dict[str, Any] | None = None,
) -> None:
    """Record `admin.<action>` by the signed-in admin on `target_type` `target_id`.

    A tenant's event is stamped from the session's tenant context, which must be that tenant's
    (the write session has entered it: `enter_row_tenant`).
    """
    action = ACTION_PREFIX + action
    if tenant_id is None:
        session.add(
            PlatformAuditEvent(
                actor_user_id=scope.user_id,
                action=action,
                target_type=target_type,
                target_id=str(target_id),
                data=data or {},
            )
        )
        return
    if current_tenant_id(session) != tenant_id:
        raise TenantMismatch("an admin audit event must be written in its tenant's context")
    record_audit(session, scope.actor, action, target_type, str(target_id), data)
