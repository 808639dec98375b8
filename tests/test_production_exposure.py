"""What production shows strangers: no API docs unless DOCS_ENABLED, no metrics without
METRICS_TOKEN, HSTS on every answer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from pydantic import SecretStr

from backend.core.config import Environment, Settings
from backend.core.database import Database
from backend.main import create_app

METRICS_TOKEN = "a-long-random-metrics-token"

Opener = Callable[..., Any]


def opener(settings: Settings, database: Database) -> Opener:
    @asynccontextmanager
    async def open_app(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        variant = create_app(settings.model_copy(update=overrides))
        variant.state.database = database
        transport = httpx.ASGITransport(app=variant)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
            yield http

    return open_app


PRODUCTION = {"environment": Environment.PRODUCTION}


async def test_production_serves_no_docs_by_default(settings: Settings, database: Database) -> None:
    async with opener(settings, database)(**PRODUCTION) as http:
        docs, schema = await http.get("/docs"), await http.get("/openapi.json")
        metadata = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert docs.status_code == 404
    assert schema.status_code == 404
    assert "service_documentation" not in metadata


async def test_docs_enabled_turns_them_on_in_production(
    settings: Settings, database: Database
) -> None:
    async with opener(settings, database)(**PRODUCTION, docs_enabled=True) as http:
        assert (await http.get("/docs")).status_code == 200
        assert (await http.get("/openapi.json")).status_code == 200


async def test_production_serves_no_metrics_without_a_token(
    settings: Settings, database: Database
) -> None:
    async with opener(settings, database)(**PRODUCTION) as http:
        assert (await http.get("/metrics")).status_code == 404


async def test_metrics_need_their_token(settings: Settings, database: Database) -> None:
    token = SecretStr(METRICS_TOKEN)
    async with opener(settings, database)(**PRODUCTION, metrics_token=token) as http:
        anonymous = await http.get("/metrics")
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer guess"})
        right = await http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert wrong.status_code == 401
    assert right.status_code == 200
    assert "http_requests_total" in right.text


async def test_production_answers_carry_hsts(settings: Settings, database: Database) -> None:
    async with opener(settings, database)(**PRODUCTION) as http:
        answers = [await http.get("/health/live"), await http.get("/admin/login")]
    for answer in answers:
        assert answer.headers["strict-transport-security"].startswith("max-age=31536000")


async def test_no_hsts_outside_production(client: httpx.AsyncClient) -> None:
    assert "strict-transport-security" not in (await client.get("/health/live")).headers


async def test_no_html_page_may_be_framed(client: httpx.AsyncClient) -> None:
    for path in ("/admin/login", "/docs", "/invitations/accept?token=x", "/verify-email?token=x"):
        answer = await client.get(path)
        assert answer.headers["content-type"].startswith("text/html"), path
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"], path
        assert answer.headers["x-frame-options"] == "DENY", path
