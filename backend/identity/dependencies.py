"""Who is calling: `TokenClaims` (the verified JWT, no database) and `CurrentPrincipal` (loaded)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import ColumnElement, Select, bindparam, exists, or_, select

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


async def get_key_ring(request: Request) -> KeyRing:
    return request.app.state.key_ring


AppKeyRing = Annotated[KeyRing, Depends(get_key_ring)]


async def _verified_claims(
    key_ring: AppKeyRing, token: Annotated[str | None, Depends(bearer_scheme)]
) -> AccessTokenClaims:
    if not token:
        raise Unauthorized("A bearer token is required.", headers={"WWW-Authenticate": "Bearer"})
    try:
        return key_ring.verify_access_token(token)
    except InvalidAccessToken as exc:
        raise Unauthorized("The access token is not valid.") from exc


TokenClaims = Annotated[AccessTokenClaims, Depends(_verified_claims)]


def _not_revoked() -> ColumnElement[bool]:
    return ~exists().where(RevokedAccessToken.jti == bindparam("principal_jti"))


# The principal statements are built once, at import: a request only binds its values
# (`principal_parameters`), which spares it building SQL expressions, the costliest part of its
# access decision. The tenant layer extends them, once too, with the membership check, so that
# the principal and the access decision cost one round trip.

# The active user behind a token, or no row: deactivated, logged out everywhere, the token
# revoked, or its sign-in session (refresh-token family, `sid`) ended.
USER_PRINCIPAL: Select[tuple[User]] = select(User).where(
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
CLIENT_PRINCIPAL: Select[tuple[OAuthClient]] = select(OAuthClient).where(
    OAuthClient.client_id == bindparam("principal_client_id"),
    OAuthClient.revoked_at.is_(None),
    OAuthClient.owner_tenant_id == bindparam("principal_tenant_id"),
    _not_revoked(),
)


def principal_parameters(claims: AccessTokenClaims) -> dict[str, Any]:
    """The values of `USER_PRINCIPAL` or `CLIENT_PRINCIPAL` (each ignores the other's).

    A token without a sign-in session names the nil family, which no refresh token belongs to.
    """
    return {
        "principal_user_id": _uuid_or_nil(claims.subject),
        "principal_issued_at": datetime.fromtimestamp(claims.issued_at, UTC),
        "principal_jti": claims.jwt_id,
        "principal_session_id": _uuid_or_nil(claims.session_id or ""),
        "principal_client_id": claims.client_id,
        "principal_tenant_id": claims.tenant_id,
    }


def principal_statement(
    claims: AccessTokenClaims,
) -> Select[tuple[User]] | Select[tuple[OAuthClient]]:
    """The statement that finds the token's principal: a service client's, or a user's."""
    return CLIENT_PRINCIPAL if claims.tenant_id is not None else USER_PRINCIPAL


def _uuid_or_nil(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        return uuid.UUID(int=0)


async def _current_principal(claims: TokenClaims, session: DbSession) -> Principal:
    found = await session.scalar(principal_statement(claims), principal_parameters(claims))
    if isinstance(found, OAuthClient):
        return Principal(claims=claims, client=found)
    if isinstance(found, User):
        return Principal(claims=claims, user=found)
    raise Unauthorized("The access token is no longer valid.")


CurrentPrincipal = Annotated[Principal, Depends(_current_principal)]


async def _current_user(principal: CurrentPrincipal) -> User:
    if principal.user is None:
        raise Forbidden("This endpoint is for users, not service clients.")
    return principal.user


CurrentUser = Annotated[User, Depends(_current_user)]


async def _passwords(request: Request) -> Passwords:
    return request.app.state.passwords


AppPasswords = Annotated[Passwords, Depends(_passwords)]
