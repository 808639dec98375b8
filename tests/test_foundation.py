"""The foundation: health, problem+json errors, request ids, logs and metrics."""

from __future__ import annotations

import base64
import gc
import json
import logging
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from backend.core.config import Settings
from backend.core.errors import BadRequest
from backend.core.logging import JsonFormatter, redact_text
from backend.core.pagination import decode_cursor, encode_cursor
from backend.main import create_app


async def test_liveness_and_readiness_answer(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok"


async def test_docs_and_openapi_are_served(client: httpx.AsyncClient) -> None:
    assert (await client.get("/docs")).status_code == 200
    assert (await client.get("/openapi.json")).json()["info"]["title"] == "tenantdesk"


async def test_unknown_route_is_a_problem_document(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/route")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 404
    assert body["title"] == "Not Found"
    assert body["request_id"] == response.headers["x-request-id"]


async def test_metrics_label_routes_by_template(client: httpx.AsyncClient) -> None:
    await client.get("/health/live")
    metrics = (await client.get("/metrics")).text
    assert 'http_requests_total{method="GET",route="/health/live",status="200"}' in metrics
    assert "http_request_duration_seconds_bucket" in metrics


async def test_incoming_request_id_is_kept_and_logged(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="backend.access")
    response = await client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    access = [record for record in caplog.records if record.name == "backend.access"]
    line = json.loads(JsonFormatter().format(access[-1]))
    assert line["request_id"] == "abc-123"
    assert line["method"] == "GET"
    assert line["path"] == "/health/live"
    assert line["status"] == 200
    assert line["duration_ms"] >= 0


async def test_unexpected_error_hides_internals_and_quotes_request_id(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def explode() -> None:
        raise RuntimeError("internal detail: password=hunter2")

    app.add_api_route("/__test__/explode", explode)
    try:
        response = await client.get("/__test__/explode")
    finally:
        app.router.routes.pop()
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert "internal detail" not in response.text
    error_lines = [JsonFormatter().format(r) for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(body["request_id"] in line for line in error_lines)
    assert not any("hunter2" in line for line in error_lines)


def test_log_lines_never_carry_secrets() -> None:
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "auth %s", ("Bearer abc.def.ghi",), None
    )
    record.authorization = "Bearer abc.def.ghi"
    record.url = "/invitations/accept?token=s3cr3t&x=1"
    line = JsonFormatter().format(record)
    assert "abc.def.ghi" not in line
    assert "s3cr3t" not in line
    assert "zzz" not in redact_text("failed with refresh_token=zzz")
    assert "zzz" not in redact_text("/x?refresh_token=zzz")


async def test_readiness_is_503_when_the_database_is_unreachable(settings: Settings) -> None:
    unreachable = settings.model_copy(
        update={"database_url": "sqlite+aiosqlite:////nonexistent-folder/unreachable.db"}
    )
    application = create_app(unreachable)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
            live = await http.get("/health/live")
            ready = await http.get("/health/ready")
    assert live.status_code == 200
    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/problem+json"
    assert ready.json()["detail"] == "The database is not reachable."


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 !",
        "bm90IGpzb24",
        encode_cursor(datetime(2020, 1, 1, tzinfo=UTC), uuid.uuid4())[:-3],
    ],
)
def test_a_malformed_cursor_is_a_bad_request(cursor: str) -> None:
    with pytest.raises(BadRequest):
        decode_cursor(cursor)


def test_a_cursor_without_a_timezone_is_a_bad_request() -> None:
    raw = json.dumps(["2020-01-01T00:00:00", str(uuid.uuid4())]).encode()
    with pytest.raises(BadRequest):
        decode_cursor(base64.urlsafe_b64encode(raw).decode())


async def test_what_start_up_built_is_frozen_out_of_the_garbage_collector(
    running_app: FastAPI,
) -> None:
    # A full collection walks every tracked object; frozen, start-up's are not walked again.
    assert gc.get_freeze_count() > 10_000
