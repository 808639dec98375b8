"""Admin panel sessions, kept in the database so that they can be ended: by signing out, by a
password change, by "log out everywhere" and by deactivation.

The session id is the random id the panel's signed cookie carries (its CSRF tokens derive from
the same id, which sign-in and sign-out replace). The table holds its SHA-256 only.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import Delete, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.database import utcnow
from backend.core.secrets import hash_token
from backend.identity.models import AdminSession, User

PANEL_SESSION_SECONDS = 8 * 3600


async def start_panel_session(session: AsyncSession, user_id: uuid.UUID, session_id: str) -> None:
    """Record a sign-in; the user's expired sessions are swept on the way."""
    now = utcnow()
    await session.execute(
        delete(AdminSession).where(AdminSession.user_id == user_id, AdminSession.expires_at <= now)
    )
    session.add(
        AdminSession(
            id_hash=hash_token(session_id),
            user_id=user_id,
            expires_at=now + timedelta(seconds=PANEL_SESSION_SECONDS),
        )
    )


async def panel_session_user(session: AsyncSession, session_id: str) -> User | None:
    """The active user signed in with this session id, if the session still stands."""
    return await session.scalar(
        select(User)
        .join(AdminSession, AdminSession.user_id == User.id)
        .where(
            AdminSession.id_hash == hash_token(session_id),
            AdminSession.expires_at > utcnow(),
            User.is_active.is_(True),
        )
    )


def end_panel_session(session_id: str) -> Delete:
    return delete(AdminSession).where(AdminSession.id_hash == hash_token(session_id))


def end_panel_sessions(user_id: uuid.UUID) -> Delete:
    """Every panel session of the user: password change, log out everywhere, deactivation."""
    return delete(AdminSession).where(AdminSession.user_id == user_id)
