"""Accounts: sign-up, email verification, password change and reset, logging out everywhere.

Services take the session and never commit: the request's session dependency does. Each write
records one event in the platform audit log, with the account holder as actor (the system
for a reset requested by someone not signed in).
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.audit import Actor, apply_changes
from backend.core.config import Settings
from backend.core.database import utcnow
from backend.core.errors import BadRequest
from backend.core.mail import Mailer, mail_one_time_link
from backend.identity import one_time_tokens, refresh_tokens
from backend.identity.accounts import create_user, normalise_email
from backend.identity.audit import record_platform_audit
from backend.identity.credentials import check_credentials
from backend.identity.models import OneTimePurpose, User
from backend.identity.panel_sessions import end_panel_sessions
from backend.identity.passwords import Passwords
from backend.identity.schemas import SignUp, UserUpdate

logger = logging.getLogger(__name__)

# Short on purpose: a reset link in a mailbox is a standing key to the account.
PASSWORD_RESET_TTL_SECONDS = 3600
VERIFY_EMAIL_PATH = "/verify-email"
RESET_PASSWORD_PATH = "/reset-password"  # noqa: S105 (a URL path)
# Where a signed-in user asks for a new verification link (identity/router.py).
VERIFICATION_MAIL_ENDPOINT = "/api/v1/users/me/verification-mail"
INVALID_LINK = "The link is not valid: it may have expired or been used already."


async def find_user_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == normalise_email(email)))


async def verify_credentials(
    session: AsyncSession, passwords: Passwords, email: str, password: str
) -> User | None:
    """`credentials.check_credentials` for async callers: the account, or None."""
    return await session.run_sync(check_credentials, passwords, email, password)


async def sign_up(
    session: AsyncSession, passwords: Passwords, settings: Settings, mailer: Mailer, data: SignUp
) -> User:
    user = await create_user(
        session, passwords, email=data.email, full_name=data.full_name, password=data.password
    )
    send_verification_mail(session, settings, mailer, user)
    record_platform_audit(session, _self(user), "user.signed_up", "user", user.id)
    return user


def send_verification_mail(
    session: AsyncSession, settings: Settings, mailer: Mailer, user: User
) -> None:
    ttl = settings.one_time_token_ttl_seconds
    token = one_time_tokens.issue(session, user.id, OneTimePurpose.EMAIL_VERIFICATION, ttl)
    mail_one_time_link(
        session,
        mailer,
        settings,
        to=user.email,
        template="verify_email",
        path=VERIFY_EMAIL_PATH,
        token=token,
        full_name=user.full_name,
        email=user.email,
        hours=max(1, ttl // 3600),
    )


async def verify_email(session: AsyncSession, token: str) -> User:
    user = await _user_of_token(session, token, OneTimePurpose.EMAIL_VERIFICATION)
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
    record_platform_audit(session, _self(user), "user.email_verified", "user", user.id)
    return user


async def request_password_reset(
    session: AsyncSession, settings: Settings, mailer: Mailer, email: str
) -> None:
    """Mail a reset link when an active account has this email; say nothing either way."""
    user = await find_user_by_email(session, email)
    if user is None or not user.is_active:
        return
    token = one_time_tokens.issue(
        session, user.id, OneTimePurpose.PASSWORD_RESET, PASSWORD_RESET_TTL_SECONDS
    )
    # Mail goes out in the background: waiting for SMTP would tell that the account exists.
    mail_one_time_link(
        session,
        mailer,
        settings,
        to=user.email,
        template="password_reset",
        path=RESET_PASSWORD_PATH,
        token=token,
        full_name=user.full_name,
        email=user.email,
        minutes=PASSWORD_RESET_TTL_SECONDS // 60,
    )
    record_platform_audit(session, Actor(), "user.password_reset_requested", "user", user.id)


async def confirm_password_reset(
    session: AsyncSession, passwords: Passwords, token: str, new_password: str
) -> User:
    user = await _user_of_token(session, token, OneTimePurpose.PASSWORD_RESET)
    user.password_hash = await passwords.hash(new_password)
    # Receiving the link proves the mailbox, so the address is verified as well.
    user.email_verified_at = user.email_verified_at or utcnow()
    await one_time_tokens.retire_all(session, user.id, OneTimePurpose.PASSWORD_RESET)
    await end_every_session(session, user)
    record_platform_audit(session, _self(user), "user.password_reset", "user", user.id)
    return user


async def update_profile(session: AsyncSession, user: User, data: UserUpdate) -> User:
    values = {} if data.full_name is None else {"full_name": data.full_name.strip()}
    changes = apply_changes(user, values)
    if changes:
        record_platform_audit(session, _self(user), "user.updated", "user", user.id, changes)
    await session.flush()
    return user


async def change_password(
    session: AsyncSession,
    passwords: Passwords,
    user: User,
    current_password: str,
    new_password: str,
    *,
    keep_session: uuid.UUID | None,
) -> None:
    """Set a new password and end every other sign-in session (`keep_session` is the caller's)
    and every admin panel session."""
    matches, _upgraded = await passwords.verify(current_password, user.password_hash)
    if not matches:
        raise BadRequest(
            "The current password is not correct.",
            extra={"errors": [{"loc": ["body", "current_password"], "msg": "incorrect"}]},
        )
    user.password_hash = await passwords.hash(new_password)
    await session.execute(refresh_tokens.revoke_user_families(user.id, keep_family=keep_session))
    await session.execute(end_panel_sessions(user.id))
    record_platform_audit(session, _self(user), "user.password_changed", "user", user.id)


async def log_out_everywhere(session: AsyncSession, user: User, *, actor: Actor) -> None:
    """End every session of the account (`end_every_session`): the holder's own "log out
    everywhere", or a platform admin's "revoke sessions"."""
    await end_every_session(session, user)
    record_platform_audit(session, actor, "user.sessions_revoked", "user", user.id)


async def end_every_session(session: AsyncSession, user: User) -> None:
    """End every refresh-token family, every access token issued until now and every admin
    panel session: a step of the writes that lock an account's past sessions out."""
    user.tokens_valid_after = refresh_tokens.tokens_cutoff()
    await session.execute(refresh_tokens.revoke_user_families(user.id))
    await session.execute(end_panel_sessions(user.id))
    await session.flush()


def _self(user: User) -> Actor:
    return Actor(user_id=user.id)


async def _user_of_token(session: AsyncSession, token: str, purpose: OneTimePurpose) -> User:
    user_id = await one_time_tokens.consume(session, token, purpose)
    user = await session.get(User, user_id) if user_id else None
    if user is None or not user.is_active:
        raise BadRequest(INVALID_LINK)
    return user
