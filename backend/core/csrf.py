"""CSRF defences shared by the admin panel and the pages people reach from mails.

A request that changes something must pass two checks:

1. it comes from our own pages: its Origin header (or, when a browser sends none, its Referer)
   is one of the allowed origins (`from_allowed_origin`);
2. it carries a token bound to this browser: an HMAC, under SECRET_KEY and a purpose, of an id
   only this browser holds (`CsrfSigner`). The admin panel's id is the session id in its signed
   session cookie (`admin/csrf.py`); the invitation page's is a nonce in an HttpOnly,
   SameSite=Strict cookie (`backend/invitations/csrf.py`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection, Mapping
from urllib.parse import urlsplit


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def from_allowed_origin(headers: Mapping[str, str], allowed: Collection[str]) -> bool:
    """Whether the request names one of `allowed` (lower-case origins) as where it came from.

    Browsers send Origin with every POST; Referer is the fallback for older ones, and for the
    GET navigations by which the admin panel runs its actions.
    """
    claimed = headers.get("origin")
    if claimed is None:
        referer = headers.get("referer")
        if not referer:
            return False
        claimed = origin_of(referer)
    return claimed.lower() in allowed


class CsrfSigner:
    """Tokens derived from a browser's id, so that only the id needs keeping."""

    def __init__(self, secret_key: str, purpose: str) -> None:
        self._key = hashlib.sha256(f"{purpose}:".encode() + secret_key.encode()).digest()

    def token_for(self, browser_id: str) -> str:
        return hmac.new(self._key, browser_id.encode(), hashlib.sha256).hexdigest()

    def matches(self, browser_id: str | None, token: str | None) -> bool:
        if not browser_id or not token:
            return False
        return hmac.compare_digest(self.token_for(browser_id), token)
