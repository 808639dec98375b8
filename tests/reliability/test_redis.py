"""Two workers and a real Redis, as the compose file runs the service: the sign-in throttle is
one budget whichever worker answers, and when Redis goes away the service keeps answering,
counting in each worker's memory, with one WARNING per worker."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from backend.core.config import Settings
from tests.conftest import DatabaseUrls, start_or_skip
from tests.harness.redis import RedisServer
from tests.harness.service import STARTUP_SECONDS, ServiceProcess
from tests.harness.smtp import SmtpServer
from tests.reliability.conftest import (
    PASSWORD,
    ServiceFactory,
    password_grant,
    service_environment,
)

LIMIT = 3
WORKERS = 2
ATTEMPTS = 12
MAX_ATTEMPTS = 40
REDIS_DOWN_WARNING = "Redis unreachable: throttling counts in this worker's memory until it is back"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_or_skip(RedisServer(tmp_path / "redis").start, "Redis")
    yield server
    server.stop()


async def _wait_for_workers(service: ServiceProcess) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        records = service.log_records()
        started = {r["pid"] for r in records if r["message"] == "Application startup complete."}
        if len(started) == WORKERS:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{WORKERS} workers did not start: {service.log_tail()}")


async def _wrong_passwords(service: ServiceProcess, email: str) -> list[int]:
    """Failed sign-ins, each on a new connection so that either worker may take it: at least
    ATTEMPTS, and more (up to MAX_ATTEMPTS) until both workers have answered some."""
    statuses: list[int] = []
    while len(statuses) < ATTEMPTS or (
        len(_token_answers_by_worker(service)) < WORKERS and len(statuses) < MAX_ATTEMPTS
    ):
        async with httpx.AsyncClient(base_url=service.url, timeout=30.0) as http:
            statuses.append((await password_grant(http, email, "not the password")).status_code)
    return statuses


def _token_answers_by_worker(service: ServiceProcess) -> dict[int, list[int]]:
    answers: dict[int, list[int]] = {}
    for record in service.log_records():
        if record.get("route") == "/oauth/token":
            answers.setdefault(record["pid"], []).append(record["status"])
    return answers


async def _sign_up(service: ServiceProcess, email: str) -> None:
    async with httpx.AsyncClient(base_url=service.url, timeout=30.0) as http:
        body = {"email": email, "password": PASSWORD, "full_name": "Shared"}
        assert (await http.post("/api/v1/users", json=body)).status_code == 201


async def test_the_sign_in_throttle_is_shared_by_workers_and_survives_redis_going_away(
    start_service: ServiceFactory,
    settings: Settings,
    fresh_database: DatabaseUrls,
    smtp_server: SmtpServer,
    redis_server: RedisServer,
) -> None:
    environment = service_environment(
        settings,
        fresh_database,
        smtp_server,
        REDIS_URL=redis_server.url,
        # Generous: a reply slowed by a busy machine must not pass for Redis being away.
        REDIS_TIMEOUT_SECONDS="10",
        LOGIN_RATE_LIMIT=f"{LIMIT}/minute",
    )
    service = start_service(environment, workers=WORKERS)
    await _wait_for_workers(service)
    shared, alone = (f"{name}-{uuid.uuid4().hex[:8]}@example.com" for name in ("shared", "alone"))
    await _sign_up(service, shared)
    await _sign_up(service, alone)

    statuses = await _wrong_passwords(service, shared)
    assert statuses[LIMIT:] == [429] * (len(statuses) - LIMIT), statuses
    assert 429 not in statuses[:LIMIT], statuses
    answered_by = _token_answers_by_worker(service)
    assert len(answered_by) == WORKERS, f"one worker took every attempt: {answered_by}"

    redis_server.stop()
    async with httpx.AsyncClient(base_url=service.url, timeout=30.0) as http:
        signed_in = await password_grant(http, alone, PASSWORD)
        assert signed_in.status_code == 200, signed_in.text
        assert (await http.get("/health/ready")).status_code == 200
    statuses = await _wrong_passwords(service, alone)
    assert set(statuses) <= {400, 401, 429}, statuses
    # Each worker now allows its own budget: more than one in all, but still a limit. Which
    # worker takes which attempt is the kernel's choice, so the order of the answers is not fixed.
    assert 429 in statuses, statuses
    assert len(statuses) - statuses.count(429) <= WORKERS * LIMIT, statuses

    records = service.log_records()
    assert not [record for record in records if record["level"] in {"ERROR", "CRITICAL"}]
    warned = [record["pid"] for record in records if record["message"] == REDIS_DOWN_WARNING]
    assert 1 <= len(warned) <= WORKERS, warned
    assert len(set(warned)) == len(warned), f"a worker warned twice: {warned}"
    assert service.terminate() == 0
