"""Who is calling: `TokenClaims` (the verified JWT or a well-formed API key, no database) and
`CurrentPrincipal` (loaded).

An API key acts only on the routes of its tenant (`TenantAccess`): the account's own routes
(profile, password, sessions, API keys, tenants list and creation, invitations) answer it 403,
so that a key leaked from a script cannot mint keys, change the password or reach the user's
other tenants."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from backend.core.database import DbSession
from backend.core.errors import Forbidden, Unauthorized
from backend.identity.api_keys import ApiKeyCredential, is_well_formed, looks_like_api_key
from backend.identity.keys import InvalidAccessToken, KeyRing
from backend.identity.models import OAuthClient, User
from backend.identity.passwords import Passwords
from backend.identity.principals import (
    Credentials,
    Principal,
    principal_parameters,
    principal_statement,
)

# Documents the password flow in OpenAPI, so /docs has a working Authorize button.
bearer_scheme = OAuth2PasswordBearer(
    tokenUrl="/oauth/token",
    auto_error=False,
    description="An access token from /oauth/token. On the routes of one tenant "
    "(/api/v1/tenants/{tenant_id}/...), a personal API key of that tenant (`tdk_...`, made with "
    "POST /api/v1/users/me/api-keys) is accepted too, as the same bearer token.",
)


async def get_key_ring(request: Request) -> KeyRing:
    key_ring: KeyRing = request.app.state.key_ring
    return key_ring


AppKeyRing = Annotated[KeyRing, Depends(get_key_ring)]


API_KEY_REFUSED = (
    "An API key acts only in its tenant, on the routes under /api/v1/tenants/{tenant_id}/; "
    "this endpoint needs a signed-in user's access token."
)


async def _verified_claims(
    key_ring: AppKeyRing, token: Annotated[str | None, Depends(bearer_scheme)]
) -> Credentials:
    if not token:
        raise Unauthorized("A bearer token is required.", headers={"WWW-Authenticate": "Bearer"})
    if looks_like_api_key(token):
        if not is_well_formed(token):
            raise Unauthorized("The API key is not valid.")
        return ApiKeyCredential.of(token)
    try:
        return key_ring.verify_access_token(token)
    except InvalidAccessToken as exc:
        raise Unauthorized("The access token is not valid.") from exc


TokenClaims = Annotated[Credentials, Depends(_verified_claims)]


async def _current_principal(claims: TokenClaims, session: DbSession) -> Principal:
    found = await session.scalar(principal_statement(claims), principal_parameters(claims))
    if isinstance(claims, ApiKeyCredential):
        if found is None:
            raise Unauthorized("The API key is no longer valid.")
        raise Forbidden(API_KEY_REFUSED)
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
    passwords: Passwords = request.app.state.passwords
    return passwords


AppPasswords = Annotated[Passwords, Depends(_passwords)]
