"""One-time tokens: random (256 bits), stored as SHA-256 with a purpose and an expiry, used once.

Email verification and password reset use them; invitations use the same `new_token` and
`hash_token` from `backend.core.secrets` on their own table.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.database import utcnow
from backend.core.secrets import hash_token, new_token
from backend.identity.models import OneTimePurpose, OneTimeToken


def issue(
    session: AsyncSession, user_id: uuid.UUID, purpose: OneTimePurpose, ttl_seconds: int
) -> str:
    """Add a token row and return the raw value, which is only ever mailed, never stored."""
    raw = new_token()
    session.add(
        OneTimeToken(
            purpose=purpose,
            token_hash=hash_token(raw),
            user_id=user_id,
            expires_at=utcnow() + timedelta(seconds=ttl_seconds),
        )
    )
    return raw


async def is_usable(session: AsyncSession, raw: str, purpose: OneTimePurpose) -> bool:
    """Whether `consume` would succeed now, without using the token (a page shows its form)."""
    found = await session.scalar(
        select(OneTimeToken.id).where(
            OneTimeToken.token_hash == hash_token(raw),
            OneTimeToken.purpose == purpose,
            OneTimeToken.used_at.is_(None),
            OneTimeToken.expires_at > utcnow(),
        )
    )
    return found is not None


async def consume(session: AsyncSession, raw: str, purpose: OneTimePurpose) -> uuid.UUID | None:
    """The user the token was issued to, marking it used; None when unknown, used or expired.

    One conditional UPDATE, so that two requests racing with the same token cannot both win.
    """
    now = utcnow()
    statement = (
        update(OneTimeToken)
        .where(
            OneTimeToken.token_hash == hash_token(raw),
            OneTimeToken.purpose == purpose,
            OneTimeToken.used_at.is_(None),
            OneTimeToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(OneTimeToken.user_id)
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def retire_all(session: AsyncSession, user_id: uuid.UUID, purpose: OneTimePurpose) -> None:
    """Mark every unused token of the user for `purpose` as used (the others of a reset)."""
    await session.execute(
        update(OneTimeToken)
        .where(
            OneTimeToken.user_id == user_id,
            OneTimeToken.purpose == purpose,
            OneTimeToken.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
