"""The one credentials check: an email and a password, against the stored argon2id hash.

Synchronous, so that the token endpoint's password grant (inside Authlib, inside
`AsyncSession.run_sync`) and the async callers (`service.verify_credentials`: the admin sign-in,
the invitation page) run the very same code. It runs in SQLAlchemy's greenlet: the hash goes to
a worker thread and is awaited with `await_only`, so the event loop never blocks.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.util import await_only

from backend.identity.accounts import normalise_email
from backend.identity.models import User
from backend.identity.passwords import Passwords


def check_credentials(
    session: Session, passwords: Passwords, email: str, password: str
) -> User | None:
    """The account with this email when `password` is its password, else None; the caller
    decides what a deactivated account may do.

    An unknown email costs the same hash as a wrong password (the decoy), so timing tells
    nothing; a hash made with older parameters is upgraded.
    """
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    stored_hash = user.password_hash if user is not None else None
    matches, upgraded_hash = await_only(passwords.verify(password, stored_hash))
    if user is None or not matches:
        return None
    if upgraded_hash:
        user.password_hash = upgraded_hash
    return user
