"""CSRF protection for the invitation page's forms: a token bound to a cookie, and Origin.

The page sets a random nonce in an HttpOnly, SameSite=Strict cookie and puts a token derived
from it (`backend.core.csrf.CsrfSigner`) in a hidden field. A POST must carry both, matching, and
come from PUBLIC_BASE_URL's origin. A forged cross-site form has neither the cookie (SameSite)
nor the token for it, and its Origin gives it away too. The cookie lives an hour.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from backend.core.config import Settings
from backend.core.csrf import CsrfSigner, from_allowed_origin, origin_of

COOKIE_NAME = "invitation_csrf"
FIELD_NAME = "csrf_token"
COOKIE_PATH = "/invitations"
MAX_AGE_SECONDS = 3600


class CsrfRejected(Exception):
    """The form did not come from our page in this browser, or it is too old."""


@dataclass(frozen=True)
class CsrfGuard:
    signer: CsrfSigner
    origin: str
    secure_cookie: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> CsrfGuard:
        return cls(
            signer=CsrfSigner(settings.secret_key_value(), "invitation-page-csrf"),
            origin=origin_of(settings.public_base_url),
            secure_cookie=settings.public_base_url.startswith("https://"),
        )

    def new_token(self) -> tuple[str, str]:
        """(cookie nonce, form token): render the form token, then `set_cookie`."""
        nonce = secrets.token_urlsafe(32)
        return nonce, self.signer.token_for(nonce)

    def set_cookie(self, response: Response, nonce: str) -> None:
        response.set_cookie(
            COOKIE_NAME,
            nonce,
            max_age=MAX_AGE_SECONDS,
            path=COOKIE_PATH,
            secure=self.secure_cookie,
            httponly=True,
            samesite="strict",
        )

    def check(self, request: Request, form_token: str) -> None:
        if not from_allowed_origin(request.headers, {self.origin}):
            raise CsrfRejected("foreign or missing origin")
        if not self.signer.matches(request.cookies.get(COOKIE_NAME), form_token):
            raise CsrfRejected("the token does not match this browser's cookie")
