"""Our rows seen through Authlib's model interfaces (ClientMixin, TokenMixin).

Adapters instead of mixins on the ORM classes keep Authlib's method names out of the models.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin

from backend.core.database import utcnow
from backend.core.secrets import token_matches
from backend.identity.keys import AccessTokenClaims
from backend.identity.models import OAuthClient, RefreshToken

SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post"})
CLIENT_CREDENTIALS = "client_credentials"


class Client(ClientMixin):
    def __init__(self, row: OAuthClient) -> None:
        self.row = row

    @property
    def client_id(self) -> str:
        return self.row.client_id

    @property
    def is_confidential(self) -> bool:
        return self.row.is_confidential

    @property
    def is_first_party(self) -> bool:
        return self.row.owner_tenant_id is None

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str) -> str:
        return ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        stored = self.row.client_secret_hash
        return stored is not None and token_matches(client_secret, stored)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        # A public client may only name itself; a confidential one must prove its secret.
        if method == "none":
            return not self.is_confidential
        return self.is_confidential and method in SECRET_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == CLIENT_CREDENTIALS and not self._is_service_client():
            return False
        return grant_type in (self.row.grant_types or [])

    def _is_service_client(self) -> bool:
        row = self.row
        return self.is_confidential and row.owner_tenant_id is not None and row.role is not None


@dataclass
class RefreshCredential(TokenMixin):
    row: RefreshToken
    user_is_active: bool = True

    @property
    def client_id(self) -> str:
        return self.row.client_id

    @property
    def family_id(self) -> uuid.UUID:
        return self.row.family_id

    @property
    def family_expires_at(self) -> datetime:
        return self.row.expires_at

    def check_client(self, client: Client) -> bool:
        return self.row.client_id == client.client_id

    def get_scope(self) -> str:
        return self.row.scope

    def get_expires_in(self) -> int:
        return max(0, int((self.row.expires_at - utcnow()).total_seconds()))

    def is_expired(self) -> bool:
        return self.row.expires_at <= utcnow()

    def is_revoked(self) -> bool:
        row = self.row
        return row.revoked_at is not None or row.rotated_at is not None or not self.user_is_active


@dataclass
class AccessCredential(TokenMixin):
    """A verified access JWT; `still_accepted` is what the principal check would decide now."""

    claims: AccessTokenClaims
    still_accepted: bool = True

    @property
    def client_id(self) -> str:
        return self.claims.client_id

    def check_client(self, client: Client) -> bool:
        return self.claims.client_id == client.client_id

    def get_scope(self) -> str:
        return self.claims.scope

    def get_expires_in(self) -> int:
        return max(0, self.claims.expires_at - int(utcnow().timestamp()))

    def is_expired(self) -> bool:
        return self.claims.expires_at <= int(utcnow().timestamp())

    def is_revoked(self) -> bool:
        return not self.still_accepted
