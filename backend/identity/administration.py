"""What platform admins do to accounts: deactivate, reactivate, end sessions, edit.

Each function decides (an admin never locks themselves out) and records its event in the
platform audit log, with the admin as actor. Whether the actor is a platform admin at all is
the admin panel's to know: only superusers reach these views.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.audit import Actor, apply_changes
from backend.core.errors import Forbidden
from backend.identity.audit import record_platform_audit
from backend.identity.models import User
from backend.identity.service import end_every_session, log_out_everywhere


def _refuse_self(actor: Actor, user: User, what: str) -> None:
    if actor.user_id == user.id:
        raise Forbidden(f"You cannot {what}.")


async def deactivate_user(session: AsyncSession, actor: Actor, user: User) -> None:
    """Lock the account out and end every session it has, at once."""
    _refuse_self(actor, user, "deactivate your own account")
    user.is_active = False
    await end_every_session(session, user)
    record_platform_audit(session, actor, "user.deactivated", "user", user.id)


async def reactivate_user(session: AsyncSession, actor: Actor, user: User) -> None:
    user.is_active = True
    record_platform_audit(session, actor, "user.reactivated", "user", user.id)
    await session.flush()


async def revoke_user_sessions(session: AsyncSession, actor: Actor, user: User) -> None:
    """End every refresh-token family and every access token of the account."""
    await log_out_everywhere(session, user, actor=actor)


async def update_user(session: AsyncSession, actor: Actor, user: User, *, full_name: str) -> None:
    """Edit the name. The superuser flag is not the panel's to change: the app role may not
    write it (column grants); `tenantdesk set-superuser` does, as the schema owner."""
    changes = apply_changes(user, {"full_name": full_name})
    if changes:
        record_platform_audit(session, actor, "user.updated", "user", user.id, changes)
        await session.flush()
