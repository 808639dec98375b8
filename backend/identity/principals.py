"""Who a verified access token stands for, as SQL: the one place that decides whether a token
still speaks for an active user or an unrevoked service client.

No FastAPI here: the request dependencies (`dependencies.py`), the tenant access query and the
OAuth2 endpoints (revocation, introspection) all build on these statements.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, exists, or_, select

from backend.core.audit import Actor
from backend.core.database import utcnow
from backend.core.ids import NIL_UUID, parse_uuid
from backend.identity.api_keys import ApiKeyCredential
from backend.identity.keys import AccessTokenClaims
from backend.identity.models import (
    ApiKey,
    ClientRole,
    OAuthClient,
    RefreshToken,
    RevokedAccessToken,
    User,
)

# What a bearer token turned out to be: a verified access token, or a well-formed API key.
Credentials = AccessTokenClaims | ApiKeyCredential


@dataclass(frozen=True)
class Principal:
    """A signed-in user, or a service client acting for its one tenant."""

    claims: AccessTokenClaims
    user: User | None = None
    client: OAuthClient | None = None

    @property
    def is_service_client(self) -> bool:
        return self.client is not None

    @property
    def user_id(self) -> uuid.UUID | None:
        return self.user.id if self.user else None

    @property
    def client_role(self) -> ClientRole | None:
        return self.client.role if self.client else None

    @property
    def client_tenant_id(self) -> uuid.UUID | None:
        return self.client.owner_tenant_id if self.client else None

    @property
    def actor(self) -> Actor:
        return Actor(user_id=self.user_id, client_id=self.client.client_id if self.client else None)


def _not_revoked() -> ColumnElement[bool]:
    return ~exists().where(RevokedAccessToken.jti == bindparam("principal_jti"))


# The statements are built once, at import: a request only binds its values
# (`principal_parameters`), which spares it building SQL expressions, once the costliest part of
# its access decision. The tenant layer extends them, once too, with the membership check, so
# that the principal and the access decision cost one round trip.

# The active user behind a token, or no row: deactivated, logged out everywhere, the token
# revoked, or its sign-in session (refresh-token family, `sid`) ended.
USER_PRINCIPAL: Select[User] = select(User).where(
    User.id == bindparam("principal_user_id"),
    User.is_active.is_(True),
    or_(
        User.tokens_valid_after.is_(None),
        User.tokens_valid_after <= bindparam("principal_issued_at"),
    ),
    _not_revoked(),
    ~exists().where(
        RefreshToken.family_id == bindparam("principal_session_id"),
        RefreshToken.revoked_at.is_not(None),
    ),
)

# The unrevoked service client behind a token, in the one tenant it acts for.
CLIENT_PRINCIPAL: Select[OAuthClient] = select(OAuthClient).where(
    OAuthClient.client_id == bindparam("principal_client_id"),
    OAuthClient.revoked_at.is_(None),
    OAuthClient.owner_tenant_id == bindparam("principal_tenant_id"),
    _not_revoked(),
)


# The active user behind an API key, or no row: the key unknown, revoked or expired, or its user
# deactivated. A key stands apart from sign-in sessions: "log out everywhere" and a password
# change leave it working; revoking it, or deactivating its user, ends it. Its tenant and role
# are the tenant access query's business (`tenants.access`).
KEY_PRINCIPAL: Select[User] = (
    select(User)
    .join(ApiKey, ApiKey.user_id == User.id)
    .where(
        ApiKey.key_hash == bindparam("principal_key_hash"),
        ApiKey.revoked_at.is_(None),
        ApiKey.expires_at > bindparam("principal_now"),
        User.is_active.is_(True),
    )
)


def principal_parameters(claims: Credentials) -> dict[str, Any]:
    """The values of `USER_PRINCIPAL`, `CLIENT_PRINCIPAL` or `KEY_PRINCIPAL`.

    A token without a sign-in session names the nil family, which no refresh token belongs to.
    """
    if isinstance(claims, ApiKeyCredential):
        return {"principal_key_hash": claims.key_hash, "principal_now": utcnow()}
    return {
        "principal_user_id": parse_uuid(claims.subject) or NIL_UUID,
        "principal_issued_at": datetime.fromtimestamp(claims.issued_at, UTC),
        "principal_jti": claims.jwt_id,
        "principal_session_id": parse_uuid(claims.session_id) or NIL_UUID,
        "principal_client_id": claims.client_id,
        "principal_tenant_id": claims.tenant_id,
    }


def principal_statement(claims: Credentials) -> Select[Any]:
    """The statement that finds the token's principal: a service client's, or a user's."""
    if isinstance(claims, ApiKeyCredential):
        return KEY_PRINCIPAL
    return CLIENT_PRINCIPAL if claims.tenant_id is not None else USER_PRINCIPAL
