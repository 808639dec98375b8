"""The platform audit log: writes that concern no tenant (a user deactivated, a tenant deleted).

Written in the same transaction as the change it records, like a tenant's `audit_events`.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.audit import Actor, event_columns
from backend.identity.models import PlatformAuditEvent


def record_platform_audit(
    session: AsyncSession,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: uuid.UUID | str,
    data: dict[str, Any] | None = None,
) -> PlatformAuditEvent:
    """Add an event to the platform log (service clients never act on the platform)."""
    event = PlatformAuditEvent(**event_columns(actor, action, target_type, target_id, data))
    session.add(event)
    return event
