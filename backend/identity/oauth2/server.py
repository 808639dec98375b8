"""Authlib's framework-agnostic AuthorizationServer, fed with Starlette requests.

Authlib has no async server. The router reads the form (async), builds a `FormRequest`, and runs
the server inside `AsyncSession.run_sync`, where Authlib's synchronous callbacks (query_client,
authenticate_user, save_token...) use the synchronous session on the request's connection. One
server is built per request around an `OAuthContext`, so that it holds no global state.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    InvalidScopeError,
    OAuth2Error,
    OAuth2Request,
)
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from backend.core.config import Settings
from backend.core.secrets import new_token
from backend.identity import refresh_tokens
from backend.identity.keys import KeyRing
from backend.identity.models import OAuthClient, User
from backend.identity.oauth2.endpoints import Introspection, Revocation
from backend.identity.oauth2.grants import PasswordGrant, RefreshGrant, ServiceClientGrant
from backend.identity.oauth2.models import Client, RefreshCredential
from backend.identity.passwords import Passwords
from backend.identity.refresh_tokens import Family

# Authlib logs whole token responses at DEBUG ("Issue token {...}"); they must never reach a log.
logging.getLogger("authlib").setLevel(logging.INFO)

SUPPORTED_GRANTS = (PasswordGrant, RefreshGrant, ServiceClientGrant)
# Authlib raises some errors bare; every answer should say what went wrong.
DEFAULT_DESCRIPTIONS = {
    "invalid_grant": "The grant is not valid.",
    "invalid_request": "The request is not valid.",
    "invalid_client": "Client authentication failed.",
    "unauthorized_client": "The client may not use this grant type.",
}


@dataclass(frozen=True)
class OAuthContext:
    session: Session
    settings: Settings
    key_ring: KeyRing
    passwords: Passwords


class FormRequest(OAuth2Request):
    """An OAuth2 request from an already-read form body and the request headers.

    Authlib refuses http:// URLs (InsecureTransportError) except on loopback. Outside production
    the check is skipped on purpose, for a development server reached by its LAN name; behind a
    TLS proxy, uvicorn's proxy headers give the real scheme.
    """

    def __init__(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        form: dict[str, str],
        *,
        allow_insecure: bool,
    ) -> None:
        checked_url = url
        if allow_insecure and url.startswith("http://"):
            checked_url = "https://" + url.removeprefix("http://")
        super().__init__(method, checked_url, headers=headers)
        self.uri = url
        self.payload = BasicOAuth2Payload(form)
        self._form = form
        self.family: Family | None = None
        self.compromised_family_id: uuid.UUID | None = None

    @property
    def form(self) -> dict[str, str]:
        return self._form

    @property
    def args(self) -> dict[str, str]:
        return {}


def authenticate_public_client(query_client: Any, request: FormRequest) -> Client | None:
    """The "none" method: a public client names itself in the form or as HTTP Basic user.

    Swagger UI's password flow sends `Authorization: Basic base64("web:")` by default, an empty
    secret, so that form is accepted too; any secret at all means it is not a public client.
    """
    basic_id, basic_secret = extract_basic_authorization(request.headers)
    form_id = request.form.get("client_id")
    if basic_secret or request.form.get("client_secret"):
        return None
    if basic_id and form_id and basic_id != form_id:
        return None
    client_id = basic_id or form_id
    return query_client(client_id) if client_id else None


class IdentityServer(AuthorizationServer):
    def __init__(self, context: OAuthContext) -> None:
        super().__init__()
        self.context = context
        self.register_client_auth_method("none", authenticate_public_client)
        for grant in SUPPORTED_GRANTS:
            self.register_grant(grant)
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)

    def query_client(self, client_id: str) -> Client | None:
        row = self.context.session.get(OAuthClient, client_id)
        if row is None or row.revoked_at is not None:
            return None
        return Client(row)

    def create_oauth2_request(self, request: FormRequest) -> FormRequest:
        return request

    def handle_response(
        self, status: int, body: Any, headers: list[tuple[str, str]]
    ) -> JSONResponse:
        return JSONResponse(body, status_code=status, headers=dict(headers))

    def handle_error_response(self, request: FormRequest, error: OAuth2Error) -> JSONResponse:
        # UnsupportedGrantTypeError keeps its text in get_error_description() only.
        error.description = (
            error.description
            or error.get_error_description()
            or DEFAULT_DESCRIPTIONS.get(error.error or "", "")
        )
        response: JSONResponse = super().handle_error_response(request, error)
        return response

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Authlib's hook for framework signals; nothing listens here."""

    def validate_requested_scope(self, scope: str | None) -> None:
        # The API has no scopes: access follows tenant and project roles.
        if scope and scope.strip():
            raise InvalidScopeError()

    def issue_tokens(
        self, request: FormRequest, *, user: User | None, include_refresh_token: bool
    ) -> dict[str, Any]:
        client: Client = request.client
        key_ring = self.context.key_ring
        if user is None:  # client_credentials: the client acts for its own tenant
            access_token = key_ring.issue_access_token(
                subject=client.client_id,
                client_id=client.client_id,
                tenant_id=client.row.owner_tenant_id,
            )
            return self._bearer(access_token)
        request.family = self._family_for(request)
        access_token = key_ring.issue_access_token(
            subject=str(user.id),
            client_id=client.client_id,
            session_id=str(request.family.id),
            not_before=refresh_tokens.not_before(user.tokens_valid_after),
        )
        token = self._bearer(access_token)
        if include_refresh_token:
            token["refresh_token"] = new_token()
        return token

    def save_token(self, token: dict[str, Any], request: FormRequest) -> None:
        raw = token.get("refresh_token")
        if raw and request.family is not None:
            self.context.session.add(
                refresh_tokens.new_refresh_token(
                    raw, request.family, request.user.id, request.client.client_id
                )
            )

    def _family_for(self, request: FormRequest) -> Family:
        """A refresh continues its family (and its absolute expiry); a sign-in opens one."""
        presented = request.refresh_token
        if isinstance(presented, RefreshCredential):
            return Family(presented.family_id, presented.family_expires_at)
        return Family.open(self.context.settings.refresh_token_ttl_seconds)

    def _bearer(self, access_token: str) -> dict[str, Any]:
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": self.context.key_ring.ttl_seconds,
        }
