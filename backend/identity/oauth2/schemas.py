"""Bodies of the OAuth2 endpoints, for the OpenAPI document (Authlib builds the real ones)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class TokenResponse(BaseModel):
    """RFC 6749 (5.1): a successful token answer."""

    access_token: str = Field(description="A JWT to send as `Authorization: Bearer ...`.")
    token_type: str = Field(description="Always `Bearer`.")
    expires_in: int = Field(description="Seconds until the access token expires.")
    refresh_token: str | None = Field(
        default=None,
        description="Password and refresh_token grants: rotates on every use; presenting an old "
        "one ends the whole sign-in session.",
    )


class OAuthError(BaseModel):
    """RFC 6749 (5.2): the error body of every /oauth endpoint (never problem+json)."""

    error: str = Field(description="`invalid_request`, `invalid_client`, `invalid_grant`, ...")
    error_description: str | None = None


class IntrospectionResponse(BaseModel):
    """RFC 7662 (2.2): `active` alone for a token that is not active or not the caller's."""

    model_config = ConfigDict(extra="allow")

    active: bool
    token_type: str | None = None
    client_id: str | None = None
    sub: str | None = None
    iss: str | None = None
    aud: str | None = None
    iat: int | None = None
    exp: int | None = None
    jti: str | None = None
    sid: str | None = Field(default=None, description="The sign-in session.")
    tid: str | None = Field(default=None, description="A service client's tenant.")


def oauth_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "The request is not valid, or the grant is not (RFC 6749 error codes).",
        401: "Client authentication failed (`invalid_client`).",
        429: "Too many sign-in attempts; retry after `Retry-After` seconds.",
    }
    return {
        status: {"model": OAuthError, "description": descriptions[status]} for status in statuses
    }
