"""The token endpoint's grants: Authlib's, with our storage and RFC 6749's error codes.

They run inside `AsyncSession.run_sync`, so `self.server.context.session` is a synchronous
session on the request's connection. Nothing here may block the event loop: password hashing
goes to a worker thread and is awaited from the greenlet with `await_only` (`credentials.py`).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from authlib.oauth2.rfc6749 import (
    ClientCredentialsGrant,
    InvalidGrantError,
    RefreshTokenGrant,
    ResourceOwnerPasswordCredentialsGrant,
)

from backend.core.database import utcnow
from backend.identity import refresh_tokens
from backend.identity.credentials import check_credentials
from backend.identity.models import User
from backend.identity.oauth2.models import RefreshCredential

logger = logging.getLogger(__name__)

# Public clients name themselves ("none"); confidential ones use their secret.
USER_GRANT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
SECRET_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
WRONG_CREDENTIALS = "The email or password is not correct."
INVALID_REFRESH_TOKEN = "The refresh token is not valid."  # noqa: S105 (a message)


class _IssuesOurTokens:
    """Route Authlib's token generation to the server, which needs the whole request."""

    server: Any
    request: Any

    def generate_token(
        self,
        user: User | None = None,
        scope: str | None = None,
        grant_type: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        return self.server.issue_tokens(
            self.request, user=user, include_refresh_token=include_refresh_token
        )


class PasswordGrant(_IssuesOurTokens, ResourceOwnerPasswordCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = USER_GRANT_AUTH_METHODS

    def authenticate_user(self, username: str, password: str) -> User:
        """The active user with this email and password, or invalid_grant.

        Authlib answers a failed login with invalid_request; RFC 6749 (5.2) says invalid_grant.
        An unknown email, a wrong password and a deactivated account cost one hash each and get
        the same answer, so neither the body nor the time tells which accounts exist.
        """
        context = self.server.context
        user = check_credentials(context.session, context.passwords, username, password)
        if user is None or not user.is_active:
            raise InvalidGrantError(WRONG_CREDENTIALS)
        return user


class RefreshGrant(_IssuesOurTokens, RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = USER_GRANT_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshCredential:
        """The live token, or invalid_grant. Raised here, not by Authlib, to say what is wrong."""
        row = self.server.context.session.scalar(refresh_tokens.find_refresh_token(refresh_token))
        if row is None:
            raise InvalidGrantError(INVALID_REFRESH_TOKEN)
        if row.rotated_at is not None or row.revoked_at is not None:
            self._replayed(row.family_id, row.user_id)
            raise InvalidGrantError(INVALID_REFRESH_TOKEN)
        # The client has authenticated already (Authlib checks it first).
        if row.expires_at <= utcnow() or row.client_id != self.request.client.client_id:
            raise InvalidGrantError(INVALID_REFRESH_TOKEN)
        return RefreshCredential(row)

    def authenticate_user(self, refresh_token: RefreshCredential) -> User:
        user = self.server.context.session.get(User, refresh_token.row.user_id)
        if user is None or not user.is_active:
            raise InvalidGrantError(INVALID_REFRESH_TOKEN)
        return user

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        """Rotate first (compare-and-set), then issue: of two concurrent refreshes, one wins.

        The loser presented a token that another request has just spent: that is a replay like
        any other, whatever the timing, so the family is revoked in both cases.
        """
        credential: RefreshCredential = self.request.refresh_token
        user = self.authenticate_user(credential)
        session = self.server.context.session
        if session.execute(refresh_tokens.claim_rotation(credential.row.id)).rowcount != 1:
            self._replayed(credential.family_id, credential.row.user_id)
            raise InvalidGrantError(INVALID_REFRESH_TOKEN)
        token = self.issue_token(user, credential)
        self.request.user = user
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER

    def _replayed(self, family_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """A spent token came back: whoever holds the family's live token may be a thief.

        The router revokes the family in a transaction of its own, since this one fails.
        """
        self.request.compromised_family_id = family_id
        logger.warning(
            "refresh token replayed; revoking its family",
            extra={"family_id": str(family_id), "user_id": str(user_id)},
        )


class ServiceClientGrant(_IssuesOurTokens, ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = SECRET_AUTH_METHODS
