"""Who a verified access token stands for, as SQL: the one place that decides whether a token
still speaks for an active user or an unrevoked service client.

No FastAPI here: the request dependencies (`dependencies.py`), the tenant access query and the
OAuth2 endpoints (revocation, introspection) all build on these statements.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Select, exists, or_, select, true

from backend.core.audit import Actor
from backend.core.ids import NIL_UUID, parse_uuid
from backend.identity.keys import AccessTokenClaims
from backend.identity.models import ClientRole, OAuthClient, RefreshToken, RevokedAccessToken, User


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


def _not_revoked(claims: AccessTokenClaims) -> ColumnElement[bool]:
    return ~exists().where(RevokedAccessToken.jti == claims.jwt_id)


def _session_not_revoked(claims: AccessTokenClaims) -> ColumnElement[bool]:
    """The sign-in session (refresh-token family) named by `sid` has not been ended."""
    if claims.session_id is None:
        return true()
    return ~exists().where(
        RefreshToken.family_id == (parse_uuid(claims.session_id) or NIL_UUID),
        RefreshToken.revoked_at.is_not(None),
    )


def user_principal_statement(claims: AccessTokenClaims) -> Select[tuple[User]]:
    """The active user behind `claims`, or no row: deactivated, logged out everywhere, revoked.

    The tenant layer extends this statement with the membership check, so that the principal and
    the access decision cost one round trip.
    """
    issued_at = datetime.fromtimestamp(claims.issued_at, UTC)
    return select(User).where(
        User.id == (parse_uuid(claims.subject) or NIL_UUID),
        User.is_active.is_(True),
        or_(User.tokens_valid_after.is_(None), User.tokens_valid_after <= issued_at),
        _not_revoked(claims),
        _session_not_revoked(claims),
    )


def client_principal_statement(claims: AccessTokenClaims) -> Select[tuple[OAuthClient]]:
    return select(OAuthClient).where(
        OAuthClient.client_id == claims.client_id,
        OAuthClient.revoked_at.is_(None),
        OAuthClient.owner_tenant_id == claims.tenant_id,
        _not_revoked(claims),
    )
