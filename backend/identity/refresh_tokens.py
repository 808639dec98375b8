"""Refresh-token families ("sign-in sessions") and access-token revocation, as statements.

A password grant opens a family; every refresh rotates the presented token into a new one of the
same family, which keeps the family's absolute expiry. Revoking a family also ends its access
tokens at once: they carry the family id as `sid`, and the principal check refuses a revoked one.

The functions build statements (or rows) only, so that the token endpoint's synchronous Authlib
callbacks and the async user services execute the same SQL with their own kind of session.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Select, Update, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from backend.core.database import utcnow
from backend.core.secrets import hash_token
from backend.identity.keys import AccessTokenClaims
from backend.identity.models import RefreshToken, RevokedAccessToken


@dataclass(frozen=True)
class Family:
    id: uuid.UUID
    expires_at: datetime

    @classmethod
    def open(cls, ttl_seconds: int) -> Family:
        return cls(uuid.uuid4(), utcnow() + timedelta(seconds=ttl_seconds))


def new_refresh_token(
    raw_token: str, family: Family, user_id: uuid.UUID, client_id: str
) -> RefreshToken:
    return RefreshToken(
        token_hash=hash_token(raw_token),
        family_id=family.id,
        user_id=user_id,
        client_id=client_id,
        scope="",
        issued_at=utcnow(),
        expires_at=family.expires_at,
    )


def find_refresh_token(raw_token: str) -> Select[RefreshToken]:
    return select(RefreshToken).where(RefreshToken.token_hash == hash_token(raw_token))


def claim_rotation(token_id: uuid.UUID) -> Update:
    """Compare-and-set: exactly one of several concurrent refreshes updates the row (rowcount 1)."""
    return (
        update(RefreshToken)
        .where(
            RefreshToken.id == token_id,
            RefreshToken.rotated_at.is_(None),
            RefreshToken.revoked_at.is_(None),
        )
        .values(rotated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def revoke_family(family_id: uuid.UUID) -> Update:
    return (
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def revoke_user_families(user_id: uuid.UUID, *, keep_family: uuid.UUID | None = None) -> Update:
    """Every sign-in session of the user, except `keep_family` (the caller's own) when given."""
    statement = update(RefreshToken).where(
        RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None)
    )
    if keep_family is not None:
        statement = statement.where(RefreshToken.family_id != keep_family)
    return statement.values(revoked_at=utcnow()).execution_options(synchronize_session=False)


def tokens_cutoff() -> datetime:
    """The `tokens_valid_after` for "from now on": the next whole second.

    Access tokens carry `iat` in whole seconds. Every token issued before now has `iat` at most
    the current second, so it falls before the cut-off; tokens issued from now on have their
    `iat` lifted to the cut-off (`KeyRing.issue_access_token(not_before=...)`), so they pass.
    """
    return datetime.fromtimestamp(int(time.time()) + 1, UTC)


def not_before(tokens_valid_after: datetime | None) -> int:
    return int(tokens_valid_after.timestamp()) if tokens_valid_after else 0


def revoke_access_token(session: Session, claims: AccessTokenClaims) -> None:
    """Record the token's `jti` until it expires; revoking twice is not an error."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(RevokedAccessToken)
        .values(jti=claims.jwt_id, expires_at=datetime.fromtimestamp(claims.expires_at, UTC))
        .on_conflict_do_nothing(index_elements=["jti"])
    )
    session.execute(statement)
