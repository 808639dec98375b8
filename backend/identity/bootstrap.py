"""Rows the service needs to be usable: the first-party OAuth2 client and a platform superuser."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.config import Settings
from backend.core.errors import Conflict
from backend.identity.accounts import create_user
from backend.identity.models import OAuthClient, User
from backend.identity.passwords import Passwords

logger = logging.getLogger(__name__)

FIRST_PARTY_GRANTS = ["password", "refresh_token"]


async def ensure_default_client(session: AsyncSession, settings: Settings) -> None:
    if await session.get(OAuthClient, settings.default_client_id) is None:
        session.add(
            OAuthClient(
                client_id=settings.default_client_id,
                client_secret_hash=None,
                name="First-party web and API client",
                grant_types=FIRST_PARTY_GRANTS,
            )
        )
        logger.info(
            "created the first-party OAuth2 client", extra={"client": settings.default_client_id}
        )


async def ensure_superuser(
    session: AsyncSession, passwords: Passwords, email: str, password: str, full_name: str = ""
) -> bool:
    """Create the superuser when absent; True when created. An existing account is left alone."""
    try:
        await create_user(
            session,
            passwords,
            email=email,
            full_name=full_name or "Platform admin",
            password=password,
            verified=True,
            is_superuser=True,
        )
    except Conflict:
        return False
    return True


async def bootstrap(session: AsyncSession, settings: Settings, passwords: Passwords) -> None:
    await ensure_default_client(session, settings)
    if settings.bootstrap_admin_email and settings.bootstrap_admin_password:
        created = await ensure_superuser(
            session,
            passwords,
            settings.bootstrap_admin_email,
            settings.bootstrap_admin_password.get_secret_value(),
        )
        if created:
            logger.info(
                "created the bootstrap superuser", extra={"email": settings.bootstrap_admin_email}
            )
    elif await session.scalar(select(User.id).where(User.is_superuser.is_(True))) is None:
        logger.warning(
            "no platform superuser exists: set BOOTSTRAP_ADMIN_EMAIL and BOOTSTRAP_ADMIN_PASSWORD, "
            "or run `tenantdesk create-superuser`"
        )
