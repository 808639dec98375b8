"""Swagger UI served from packaged assets (fastapi-offline's), so /docs needs no CDN."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_PATH = "/static/swagger-ui"
ASSETS_DIRECTORY = Path(fastapi_offline.__file__).parent / "static"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"


def install_docs(app: FastAPI, *, client_id: str) -> None:
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIRECTORY), name="swagger-ui")

    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon.png",
            oauth2_redirect_url=OAUTH2_REDIRECT_PATH,
            init_oauth={"clientId": client_id},
        )

    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    app.add_api_route("/docs", swagger_ui, include_in_schema=False)
    app.add_api_route(OAUTH2_REDIRECT_PATH, oauth2_redirect, include_in_schema=False)
