"""Creating an account: the one way a `users` row is made (sign-up, an invitation accepted by a
new user, the bootstrap superuser and `tenantdesk create-superuser`)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.database import utcnow
from backend.core.errors import Conflict
from backend.identity.models import User
from backend.identity.passwords import Passwords

EMAIL_TAKEN = "An account with this email exists already."


def normalise_email(email: str) -> str:
    return email.strip().lower()


async def create_user(
    session: AsyncSession,
    passwords: Passwords,
    *,
    email: str,
    full_name: str,
    password: str,
    verified: bool = False,
    is_superuser: bool = False,
    taken: str = EMAIL_TAKEN,
) -> User:
    """A new account; 409 with `taken` when the email has one already.

    The email is normalised; `verified` when the address is proven already (an invitation mail
    reached it). The password is hashed before any write, so that no lock is held during the
    slow part; the unique index settles two creations racing for one email.
    """
    email = normalise_email(email)
    if await session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(taken)
    user = User(
        email=email,
        full_name=full_name.strip(),
        password_hash=await passwords.hash(password),
        is_superuser=is_superuser,
        email_verified_at=utcnow() if verified else None,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(taken) from exc
    return user
