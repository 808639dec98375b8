"""What every audit log shares: who acted (`Actor`), and how a change is recorded.

The logs themselves live with their tables: a tenant's in `tenants.audit`, the platform's in
`backend.identity.audit`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any


@dataclass(frozen=True)
class Actor:
    """A user, a service client, or (both None) the system itself."""

    user_id: uuid.UUID | None = None
    client_id: str | None = None


def event_columns(
    actor: Actor,
    action: str,
    target_type: str,
    target_id: uuid.UUID | str,
    data: dict[str, Any] | None,
) -> dict[str, Any]:
    """The columns every audit event has, whichever log it goes to. `action` is a dotted verb
    such as `member.role_changed`; `data` holds what changed, never a secret."""
    return {
        "actor_user_id": actor.user_id,
        "action": action,
        "target_type": target_type,
        "target_id": str(target_id),
        "data": data or {},
    }


def audit_value(value: Any) -> Any:
    """A JSON-ready form of a column value."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, uuid.UUID | datetime):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    return str(value)


def apply_changes(obj: Any, values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Set `values` on `obj`; return what changed as `{field: {"from": old, "to": new}}`, the
    shape every `*.updated` event records."""
    changes = {}
    for field, value in values.items():
        old = getattr(obj, field)
        if old != value:
            changes[field] = {"from": audit_value(old), "to": audit_value(value)}
            setattr(obj, field, value)
    return changes
