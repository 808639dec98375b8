"""Headers every answer needs for the browser's sake, in one pure ASGI middleware.

- Any HTML page without a policy of its own (the admin panel, /docs) may not be framed:
  `Content-Security-Policy: frame-ancestors 'none'` (and `X-Frame-Options` for old browsers).
  Pages that set a fuller policy (backend/core/pages.py) keep theirs.
- In production, `Strict-Transport-Security`: browsers that saw the site once never speak plain
  HTTP to it again.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

NO_FRAMING = "frame-ancestors 'none'"
HSTS = "max-age=31536000; includeSubDomains"


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("Content-Security-Policy", NO_FRAMING)
                    headers.setdefault("X-Frame-Options", "DENY")
                if self.hsts:
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)
