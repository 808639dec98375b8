"""A slow or saturated database answers 503 at the configured timeouts instead of hanging: the
statement timeout cuts a runaway query, and an exhausted pool gives up at the pool timeout."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from sqlalchemy import text

from backend.core.config import Settings
from backend.main import create_app
from tests.conftest import BASE_URL, DatabaseUrls
from tests.reliability.conftest import PASSWORD, UNKNOWN_INVITATION_TOKEN, assert_unavailable

pytestmark = pytest.mark.postgres_only


@asynccontextmanager
async def serving(settings: Settings, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(settings.model_copy(update=overrides))
    application.add_api_route("/test-only/sleep", _sleep, methods=["GET"])
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            http.app = application  # type: ignore[attr-defined]
            yield http


async def _sleep(request: Request, seconds: float) -> dict[str, str]:
    """A runaway query, as a route would run it through the app's engine."""
    async with request.app.state.database.engine.connect() as connection:
        await connection.execute(text("SELECT pg_sleep(:seconds)"), {"seconds": seconds})
    return {"slept": str(seconds)}


async def test_the_statement_timeout_cuts_a_runaway_query_with_a_503(
    settings: Settings, migrated: DatabaseUrls
) -> None:
    async with serving(settings, database_statement_timeout_ms=300) as http:
        assert (await http.get("/test-only/sleep", params={"seconds": 0.01})).status_code == 200
        started = time.monotonic()
        answer = await http.get("/test-only/sleep", params={"seconds": 30})
        elapsed = time.monotonic() - started
    assert_unavailable(answer)
    assert elapsed < 5, f"cut after {elapsed:.1f}s, not at the 0.3 s statement timeout"


async def test_the_default_statement_timeout_is_five_seconds(settings: Settings) -> None:
    assert Settings(_env_file=None).database_statement_timeout_ms == 5000  # type: ignore[call-arg]


async def test_an_exhausted_pool_answers_503_at_the_pool_timeout(
    settings: Settings, migrated: DatabaseUrls
) -> None:
    pool = {"database_pool_size": 1, "database_max_overflow": 0}
    async with serving(settings, **pool, database_pool_timeout_seconds=0.5) as http:
        application: FastAPI = http.app  # type: ignore[attr-defined]
        async with application.state.database.engine.connect() as held:
            await held.execute(text("SELECT 1"))  # the pool's only connection, checked out
            started = time.monotonic()
            sign_up = {"email": "p@example.com", "password": PASSWORD, "full_name": "P"}
            api = await http.post("/api/v1/users", json=sign_up)
            page = await http.get("/invitations/accept", params={"token": UNKNOWN_INVITATION_TOKEN})
            elapsed = time.monotonic() - started
        assert_unavailable(api)
        assert_unavailable(page)
        assert elapsed < 5, f"two requests took {elapsed:.1f}s at a 0.5 s pool timeout"
        # The connection back in the pool, the same requests are served again.
        again = await http.get("/invitations/accept", params={"token": UNKNOWN_INVITATION_TOKEN})
        assert again.status_code == 404
