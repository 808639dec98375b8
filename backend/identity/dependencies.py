"""Who is calling: `TokenClaims` (the verified JWT, no database) and `CurrentPrincipal` (loaded)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from backend.core.database import DbSession
from backend.core.errors import Forbidden, Unauthorized
from backend.identity.keys import AccessTokenClaims, InvalidAccessToken, KeyRing
from backend.identity.models import OAuthClient, User
from backend.identity.passwords import Passwords
from backend.identity.principals import (
    Principal,
    principal_parameters,
    principal_statement,
)

# Documents the password flow in OpenAPI, so /docs has a working Authorize button.
bearer_scheme = OAuth2PasswordBearer(tokenUrl="/oauth/token", auto_error=False)


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
