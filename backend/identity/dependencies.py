"""Who is calling: `TokenClaims` (the verified JWT, no database) and `CurrentPrincipal` (loaded)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import Select, exists, or_, select, true

from backend.core.database import DbSession
from backend.core.errors import Forbidden, Unauthorized
from backend.identity.keys import AccessTokenClaims, InvalidAccessToken, KeyRing
from backend.identity.models import (
    ClientRole,
    OAuthClient,
    RefreshToken,
    RevokedAccessToken,
    User,
)
from backend.identity.passwords import Passwords

# Documents the password flow in OpenAPI, so /docs has a working Authorize button.
bearer_scheme = OAuth2PasswordBearer(tokenUrl="/oauth/token", auto_error=False)


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


def get_key_ring(request: Request) -> KeyRing:
    return request.app.state.key_ring


AppKeyRing = Annotated[KeyRing, Depends(get_key_ring)]


def _verified_claims(key_ring: AppKeyRing, token: Annotated[str | None, Depends(bearer_scheme)]):
    if not token:
        raise Unauthorized("A bearer token is required.", headers={"WWW-Authenticate": "Bearer"})
    try:
        return key_ring.verify_access_token(token)
    except InvalidAccessToken as exc:
        raise Unauthorized("The access token is not valid.") from exc


TokenClaims = Annotated[AccessTokenClaims, Depends(_verified_claims)]


def _not_revoked(claims: AccessTokenClaims):
    return ~exists().where(RevokedAccessToken.jti == claims.jwt_id)


def _session_not_revoked(claims: AccessTokenClaims):
    """The sign-in session (refresh-token family) named by `sid` has not been ended."""
    if claims.session_id is None:
        return true()
    return ~exists().where(
        RefreshToken.family_id == _uuid_or_nil(claims.session_id),
        RefreshToken.revoked_at.is_not(None),
    )


def user_principal_statement(claims: AccessTokenClaims) -> Select[tuple[User]]:
    """The active user behind `claims`, or no row: deactivated, logged out everywhere, revoked.

    The tenant layer extends this statement with the membership check, so that the principal and
    the access decision cost one round trip.
    """
    issued_at = datetime.fromtimestamp(claims.issued_at, UTC)
    return select(User).where(
        User.id == _uuid_or_nil(claims.subject),
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


def _uuid_or_nil(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        return uuid.UUID(int=0)


async def _current_principal(claims: TokenClaims, session: DbSession) -> Principal:
    if claims.tenant_id is not None:
        client = await session.scalar(client_principal_statement(claims))
        if client is not None:
            return Principal(claims=claims, client=client)
    else:
        user = await session.scalar(user_principal_statement(claims))
        if user is not None:
            return Principal(claims=claims, user=user)
    raise Unauthorized("The access token is no longer valid.")


CurrentPrincipal = Annotated[Principal, Depends(_current_principal)]


async def _current_user(principal: CurrentPrincipal) -> User:
    if principal.user is None:
        raise Forbidden("This endpoint is for users, not service clients.")
    return principal.user


CurrentUser = Annotated[User, Depends(_current_user)]


def _passwords(request: Request) -> Passwords:
    return request.app.state.passwords


AppPasswords = Annotated[Passwords, Depends(_passwords)]
