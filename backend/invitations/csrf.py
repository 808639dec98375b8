"""CSRF protection for the invitation page's forms: signed double-submit token, Origin check.

The page sets a random nonce in an HttpOnly, SameSite=Strict cookie and puts the same nonce,
signed with SECRET_KEY (itsdangerous, with an expiry), in a hidden field. A POST must carry
both, matching, and come from PUBLIC_BASE_URL's origin. A forged cross-site form has neither the
cookie (SameSite) nor a valid signature for it, and its Origin gives it away too.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from backend.core.config import Settings

COOKIE_NAME = "invitation_csrf"
FIELD_NAME = "csrf_token"
COOKIE_PATH = "/invitations"
MAX_AGE_SECONDS = 3600
_SALT = "invitations.accept-page.csrf"


class CsrfRejected(Exception):
    """The form did not come from our page in this browser, or it is too old."""


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class CsrfGuard:
    serializer: URLSafeTimedSerializer
    origin: str
    secure_cookie: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> CsrfGuard:
        return cls(
            serializer=URLSafeTimedSerializer(settings.secret_key_value(), salt=_SALT),
            origin=_origin_of(settings.public_base_url),
            secure_cookie=settings.public_base_url.startswith("https://"),
        )

    def new_token(self) -> tuple[str, str]:
        """(cookie nonce, signed form token): render the form token, then `set_cookie`."""
        nonce = secrets.token_urlsafe(32)
        return nonce, str(self.serializer.dumps(nonce))

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

    def _check_origin(self, request: Request) -> None:
        origin = request.headers.get("origin")
        if origin is not None:
            if origin != self.origin:
                raise CsrfRejected("foreign origin")
            return
        # Browsers send Origin with every POST; Referer is the fallback for older ones.
        referer = request.headers.get("referer")
        if referer is None or _origin_of(referer) != self.origin:
            raise CsrfRejected("no origin")

    def check(self, request: Request, form_token: str) -> None:
        self._check_origin(request)
        nonce = request.cookies.get(COOKIE_NAME)
        if not nonce or not form_token:
            raise CsrfRejected("missing token")
        try:
            signed_nonce = self.serializer.loads(form_token, max_age=MAX_AGE_SECONDS)
        except BadSignature as exc:  # SignatureExpired included
            raise CsrfRejected("bad token") from exc
        if not isinstance(signed_nonce, str) or not hmac.compare_digest(signed_nonce, nonce):
            raise CsrfRejected("token and cookie differ")
