"""Server-rendered pages (the links people follow from mails): one template environment, and
the headers every such page sends, since its URL carries a one-time token."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from backend.core.mail import TEMPLATES_DIR

FormField = Annotated[str, Form()]

_templates = Jinja2Templates(
    env=Environment(
        loader=FileSystemLoader(TEMPLATES_DIR / "pages"),
        autoescape=select_autoescape(),
        undefined=StrictUndefined,
    )
)

# The token must not reach other sites through Referer, caches or frames. Pages whose forms are
# checked by Origin use `same-origin`: with `no-referrer` the browser sends `Origin: null`.
_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


class PageRenderer:
    """Renders the pages of one router, each with the headers every such page sends."""

    def __init__(self, referrer_policy: str = "no-referrer") -> None:
        self.headers = {
            "Cache-Control": "no-store",
            "Referrer-Policy": referrer_policy,
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": _CONTENT_SECURITY_POLICY,
        }

    def render(
        self, request: Request, template: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        return _templates.TemplateResponse(
            request, template, context, status_code=status_code, headers=dict(self.headers)
        )
