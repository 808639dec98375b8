"""CSRF protection for the admin panel: SQLAdmin has none.

A request that changes something is POST, PUT, PATCH or DELETE, or one of the GET routes by which
SQLAdmin runs custom actions (`/<view>/action/<name>`) or signs out. Such a request reaches
SQLAdmin only when

1. its Origin header (or, when a browser sends none, its Referer) is this site's origin, and
2. it carries this browser session's token: the form field `csrf_token`, the `X-CSRF-Token`
   header, or on a GET the `csrf_token` query parameter.

Otherwise it is answered 403 before any handler runs, so nothing changes.

The token is an HMAC of a random session id kept in the signed session cookie. The id is replaced
at sign-in and sign-out, so a token from before either is worthless after it.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.core.csrf import CsrfSigner, from_allowed_origin, origin_of

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SESSION_ID_KEY = "sid"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
STATE_CHANGING_GET = re.compile(r"^/[^/]+/action/[^/]+/?$|^/logout/?$")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
MAX_BODY_BYTES = 1024 * 1024
CROSS_ORIGIN = "Forbidden: this request did not come from the admin panel's own pages."
NO_VALID_CSRF = "Forbidden: the request lacks this session's CSRF token. Reload the page and retry."


def renew_session_id(session: MutableMapping[str, Any]) -> str:
    session[SESSION_ID_KEY] = secrets.token_urlsafe(32)
    return session[SESSION_ID_KEY]


class CsrfTokens:
    """Per-session tokens: derived from the session id, so the session stores only the id."""

    def __init__(self, secret_key: str) -> None:
        self._signer = CsrfSigner(secret_key, "admin-csrf")

    def for_session(self, session: MutableMapping[str, Any]) -> str:
        session_id = session.get(SESSION_ID_KEY) or renew_session_id(session)
        return self._signer.token_for(session_id)

    def matches(self, session: MutableMapping[str, Any], token: str | None) -> bool:
        return self._signer.matches(session.get(SESSION_ID_KEY), token)


def route_path(scope: Scope) -> str:
    """The path inside the admin mount (`/login`, `/tenant/list`...)."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


def changes_state(scope: Scope) -> bool:
    if scope["method"] not in SAFE_METHODS:
        return True
    return bool(STATE_CHANGING_GET.match(route_path(scope)))


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when it is larger than any admin form."""
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return b""
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > MAX_BODY_BYTES:
            return None
        more = message.get("more_body", False)
    return b"".join(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the already-read body to the app, then defers to the server."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def token_in_form(scope: Scope, body: bytes) -> str | None:
    content_type = Headers(scope=scope).get("content-type", "")
    if content_type.startswith(FORM_TYPES[0]):
        values = parse_qs(body.decode("latin-1")).get(CSRF_FIELD)
        return values[0] if values else None
    if content_type.startswith(FORM_TYPES[1]):
        request = Request(scope, replaying(body, _no_more_body))
        async with request.form() as form:
            value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def _no_more_body() -> Message:
    return {"type": "http.disconnect"}


class CsrfMiddleware:
    """Runs inside the session middleware, before SQLAdmin's routes."""

    def __init__(self, app: ASGIApp, tokens: CsrfTokens, trusted_origins: Iterable[str]) -> None:
        self.app = app
        self.tokens = tokens
        self.trusted_origins = frozenset(origin_of(origin) for origin in trusted_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not changes_state(scope):
            await self.app(scope, receive, send)
            return
        if not self.same_origin(scope):
            await PlainTextResponse(CROSS_ORIGIN, status_code=403)(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:
            await PlainTextResponse("Request body too large.", status_code=413)(
                scope, receive, send
            )
            return
        token = await self.token_of(scope, body)
        if not self.tokens.matches(scope["session"], token):
            await PlainTextResponse(NO_VALID_CSRF, status_code=403)(scope, receive, send)
            return
        await self.app(scope, replaying(body, receive), send)

    def same_origin(self, scope: Scope) -> bool:
        headers = Headers(scope=scope)
        own = f"{scope['scheme']}://{headers.get('host', '')}".lower()
        return from_allowed_origin(headers, self.trusted_origins | {own})

    async def token_of(self, scope: Scope, body: bytes) -> str | None:
        headers = Headers(scope=scope)
        if headers.get(CSRF_HEADER):
            return headers[CSRF_HEADER]
        if scope["method"] == "GET":
            return QueryParams(scope["query_string"]).get(CSRF_FIELD)
        return await token_in_form(scope, body)
