"""OAuth2 and discovery routes. Errors here are RFC 6749 JSON, never problem+json."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from authlib.oauth2.rfc6749 import InsecureTransportError
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from backend.core.database import Database, get_database
from backend.core.dependencies import AppSettings, client_address
from backend.identity import refresh_tokens
from backend.identity.dependencies import AppKeyRing
from backend.identity.oauth2.grants import SECRET_AUTH_METHODS
from backend.identity.oauth2.schemas import IntrospectionResponse, TokenResponse, oauth_errors
from backend.identity.oauth2.server import FormRequest, IdentityServer, OAuthContext
from backend.identity.sign_in_throttle import SignInThrottle

router = APIRouter(tags=["oauth2"])

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
GRANT_TYPES = ["password", "refresh_token", "client_credentials"]
CLIENT_AUTH_METHODS = ["none", "client_secret_basic", "client_secret_post"]
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# The token endpoint needs at most seven parameters; none of them is long.
MAX_FORM_FIELDS = 10
MAX_FORM_FIELD_BYTES = 8192

Action = Callable[[IdentityServer, FormRequest], JSONResponse]


# What _read_form refuses: NUL anywhere, and a parameter given twice (so extras are strings).
_FORM_TEXT = {"type": "string", "pattern": r"^[^\x00]*$"}
TOKEN_TYPE_HINTS = ["access_token", "refresh_token"]


def _form_body(fields: dict[str, str | list[str]], required: list[str]) -> dict[str, Any]:
    """OpenAPI for a form the handler reads itself (so that errors stay RFC 6749). A field is
    described by a text, or limited to a list of values. Unknown parameters are ignored, as
    RFC 6749 (3.1) requires."""
    properties = {
        name: {**_FORM_TEXT, "description": spec}
        if isinstance(spec, str)
        else {"type": "string", "enum": spec}
        for name, spec in fields.items()
    }
    schema = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": _FORM_TEXT,
        "propertyNames": {"pattern": _FORM_TEXT["pattern"]},
    }
    return {
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": schema}},
        }
    }


def oauth_error(
    status: int, error: str, description: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": error, "error_description": description}
    return JSONResponse(body, status_code=status, headers={**NO_STORE, **(headers or {})})


async def _read_form(request: Request) -> dict[str, str] | JSONResponse:
    """The form as single values; RFC 6749 (3.2) forbids repeated parameters.

    Only `application/x-www-form-urlencoded` (RFC 6749, 4.3.2), with a few short fields: no
    multipart, so no file is ever spooled. NUL is refused too: PostgreSQL cannot compare text
    holding it, and would fail the request.
    """
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type != FORM_CONTENT_TYPE:
        return oauth_error(400, "invalid_request", f"The body must be {FORM_CONTENT_TYPE}.")
    try:
        form = await request.form(
            max_files=0, max_fields=MAX_FORM_FIELDS, max_part_size=MAX_FORM_FIELD_BYTES
        )
    except HTTPException as error:
        return oauth_error(400, "invalid_request", str(error.detail))
    values: dict[str, str] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile) or key in values or "\x00" in key + value:
            return oauth_error(400, "invalid_request", f"The parameter {key!r} is not valid.")
        values[key] = value
    return values


async def _run(request: Request, form: dict[str, str], action: Action) -> Response:
    """Run the Authlib server on one session; commit only what succeeded."""
    state = request.app.state
    try:
        oauth_request = FormRequest(
            request.method,
            str(request.url),
            request.headers,
            form,
            allow_insecure=not state.settings.is_production,
        )
    except InsecureTransportError as error:
        return oauth_error(400, error.error, error.description)

    def serve(session: Any) -> JSONResponse:
        context = OAuthContext(session, state.settings, state.key_ring, state.passwords)
        return action(IdentityServer(context), oauth_request)

    database = get_database(request)
    async with database.session_factory() as session:
        response = await session.run_sync(serve)
        if response.status_code == 200:
            await session.commit()
        else:
            await session.rollback()
    if oauth_request.compromised_family_id is not None:
        await _revoke_family_now(database, oauth_request.compromised_family_id)
    return response


async def _revoke_family_now(database: Database, family_id: uuid.UUID) -> None:
    """The one write that outlives a failed request (DESIGN.md): a replayed refresh token's
    family is revoked in a short transaction of its own, after the request's rolled back."""
    async with database.session_factory() as session, session.begin():
        await session.execute(refresh_tokens.revoke_family(family_id))


def _throttled(wait: int) -> JSONResponse:
    return oauth_error(
        429,
        "temporarily_unavailable",
        "Too many failed sign-in attempts; retry later.",
        headers={"Retry-After": str(wait)},
    )


@router.post(
    "/oauth/token",
    summary="Token endpoint (RFC 6749): password, refresh_token and client_credentials grants",
    openapi_extra=_form_body(
        {
            "grant_type": GRANT_TYPES,
            "username": "password grant: the account's email",
            "password": "password grant",
            "refresh_token": "refresh_token grant",
            "client_id": "public clients (`web`), or confidential ones without HTTP Basic",
            "client_secret": "confidential clients without HTTP Basic",
        },
        ["grant_type"],
    ),
    responses={200: {"model": TokenResponse}, **oauth_errors(400, 401, 429)},
)
async def token(request: Request) -> Response:
    form = await _read_form(request)
    if isinstance(form, JSONResponse):
        return form
    grant_type = form.get("grant_type")
    if not grant_type:
        return oauth_error(400, "invalid_request", "Missing 'grant_type' in request.")
    if grant_type != "password":
        return await _run(request, form, lambda server, req: server.create_token_response(req))
    # Counted before any password is checked; given back when the grant succeeds.
    throttle: SignInThrottle = request.app.state.sign_in_throttle
    attempt = await throttle.begin(form.get("username", ""), client_address(request))
    if attempt.retry_after is not None:
        return _throttled(attempt.retry_after)
    response = await _run(request, form, lambda server, req: server.create_token_response(req))
    if response.status_code == 200:
        await attempt.succeeded()
    return response


@router.post(
    "/oauth/revoke",
    summary="Revoke an access or refresh token (RFC 7009); unknown tokens are not an error",
    openapi_extra=_form_body(
        {"token": "the token", "token_type_hint": TOKEN_TYPE_HINTS}, ["token"]
    ),
    responses={
        200: {"content": {"application/json": {"schema": {"type": "object"}}}},
        **oauth_errors(400, 401),
    },
)
async def revoke(request: Request) -> Response:
    return await _endpoint_response(request, "revocation")


@router.post(
    "/oauth/introspect",
    summary="Introspect a token (RFC 7662), for confidential clients",
    openapi_extra=_form_body(
        {"token": "the token", "token_type_hint": TOKEN_TYPE_HINTS}, ["token"]
    ),
    responses={200: {"model": IntrospectionResponse}, **oauth_errors(400, 401)},
)
async def introspect(request: Request) -> Response:
    return await _endpoint_response(request, "introspection")


async def _endpoint_response(request: Request, endpoint: str) -> Response:
    form = await _read_form(request)
    if isinstance(form, JSONResponse):
        return form
    return await _run(
        request, form, lambda server, req: server.create_endpoint_response(endpoint, req)
    )


@router.get("/.well-known/oauth-authorization-server", summary="Server metadata (RFC 8414)")
async def metadata(settings: AppSettings) -> dict[str, Any]:
    issuer = settings.issuer
    return {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/oauth/token",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "grant_types_supported": GRANT_TYPES,
        # REQUIRED by RFC 8414 though there is no authorization endpoint: "none" is the
        # registered response type that yields nothing.
        "response_types_supported": ["none"],
        "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": SECRET_AUTH_METHODS,
    } | ({"service_documentation": f"{issuer}/docs"} if settings.serves_docs else {})


@router.get("/.well-known/jwks.json", summary="Public keys that verify access tokens")
async def jwks(key_ring: AppKeyRing) -> JSONResponse:
    return JSONResponse(key_ring.jwks(), headers={"Cache-Control": "public, max-age=300"})
