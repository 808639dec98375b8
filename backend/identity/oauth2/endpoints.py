"""Token revocation (RFC 7009) and introspection (RFC 7662) on Authlib's endpoints."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from sqlalchemy import select

from backend.identity import refresh_tokens
from backend.identity.keys import InvalidAccessToken
from backend.identity.models import User
from backend.identity.oauth2.grants import SECRET_AUTH_METHODS, USER_GRANT_AUTH_METHODS
from backend.identity.oauth2.models import AccessCredential, Client, RefreshCredential
from backend.identity.principals import principal_parameters, principal_statement

Credential = AccessCredential | RefreshCredential
ACCESS_TOKEN_HINT = "access_token"  # noqa: S105 (a parameter value, not a secret)


class _FindsTokens:
    """Either kind of token, whatever the hint says: RFC 7009 treats the hint as a hint only."""

    server: Any

    def check_params(self, request: Any, client: Client) -> None:
        # RFC 7009 (2.1) lets the server ignore the hint; Authlib would answer an unknown one
        # with a 401, which reads as a failed client authentication.
        if not request.form.get("token"):
            raise InvalidRequestError("Missing 'token' in request.")

    def query_token(self, token_string: str, token_type_hint: str | None) -> Credential | None:
        finders = [self._refresh_token, self._access_token]
        if token_type_hint == ACCESS_TOKEN_HINT:
            finders.reverse()
        for find in finders:
            credential = find(token_string)
            if credential is not None:
                return credential
        return None

    def _refresh_token(self, raw: str) -> RefreshCredential | None:
        session = self.server.context.session
        row = session.scalar(refresh_tokens.find_refresh_token(raw))
        if row is None:
            return None
        user_is_active = session.scalar(select(User.is_active).where(User.id == row.user_id))
        return RefreshCredential(row, user_is_active=bool(user_is_active))

    def _access_token(self, raw: str) -> AccessCredential | None:
        try:
            claims = self.server.context.key_ring.verify_access_token(raw)
        except InvalidAccessToken:
            return None
        session = self.server.context.session
        found = session.scalar(principal_statement(claims), principal_parameters(claims))
        still_accepted = found is not None
        return AccessCredential(claims, still_accepted=still_accepted)


class Revocation(_FindsTokens, RevocationEndpoint):
    CLIENT_AUTH_METHODS = USER_GRANT_AUTH_METHODS

    def revoke_token(self, token: Credential, request: Any) -> None:
        session = self.server.context.session
        if isinstance(token, RefreshCredential):
            # A refresh token stands for its sign-in session: end all of it, access tokens too.
            session.execute(refresh_tokens.revoke_family(token.family_id))
        else:
            refresh_tokens.revoke_access_token(session, token.claims)


class Introspection(_FindsTokens, IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = SECRET_AUTH_METHODS

    def check_permission(self, token: Credential, client: Client, request: Any) -> bool:
        # First-party confidential clients (our resource servers) see every token; a service
        # client sees only its own, so that no tenant learns about another tenant's tokens.
        return client.is_first_party or token.check_client(client)

    def introspect_token(self, token: Credential) -> dict[str, Any]:
        if isinstance(token, RefreshCredential):
            row = token.row
            return {
                "client_id": row.client_id,
                "sub": str(row.user_id),
                "iat": int(row.issued_at.timestamp()),
                "exp": int(row.expires_at.timestamp()),
                "sid": str(row.family_id),
            }
        claims = token.claims
        key_ring = self.server.context.key_ring
        payload: dict[str, Any] = {
            "token_type": "Bearer",
            "client_id": claims.client_id,
            "sub": claims.subject,
            "iss": key_ring.issuer,
            "aud": key_ring.audience,
            "iat": claims.issued_at,
            "exp": claims.expires_at,
            "jti": claims.jwt_id,
        }
        if claims.tenant_id is not None:
            payload["tid"] = str(claims.tenant_id)
        if claims.session_id is not None:
            payload["sid"] = claims.session_id
        return payload
