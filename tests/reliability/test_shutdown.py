"""SIGTERM, as a process manager stops the service: requests under way finish, mail already
queued goes out, then the process exits 0; all within SHUTDOWN_GRACE_SECONDS."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import Iterator

import pytest

from backend.core.config import Settings
from tests.conftest import DatabaseUrls
from tests.harness.service import ServiceProcess
from tests.harness.smtp import SmtpServer
from tests.reliability.conftest import PASSWORD, ServiceFactory, service_environment

SMTP_DELAY_SECONDS = 2.0


@pytest.fixture
def slow_smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer(delay_seconds=SMTP_DELAY_SECONDS).start()
    yield server
    server.stop()


def _open_sign_up(service: ServiceProcess, email: str) -> tuple[socket.socket, bytes]:
    """A sign-up whose body is still on its way: the request is under way at the server."""
    body = json.dumps({"email": email, "password": PASSWORD, "full_name": "Late"}).encode()
    port = int(service.url.rsplit(":", 1)[1])
    connection = socket.create_connection(("127.0.0.1", port), timeout=60)
    head = (
        f"POST /api/v1/users HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    connection.sendall(head.encode() + body[:10])
    return connection, body[10:]


def _finish(connection: socket.socket, rest: bytes) -> str:
    connection.sendall(rest)
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    connection.close()
    return received.decode(errors="replace")


async def test_sigterm_finishes_requests_and_mail_under_way_then_exits_0(
    start_service: ServiceFactory,
    settings: Settings,
    fresh_database: DatabaseUrls,
    slow_smtp_server: SmtpServer,
) -> None:
    service = start_service(
        service_environment(settings, fresh_database, slow_smtp_server, SHUTDOWN_GRACE_SECONDS="30")
    )
    email = f"late-{uuid.uuid4().hex[:8]}@example.com"
    connection, rest = await asyncio.to_thread(_open_sign_up, service, email)
    await asyncio.sleep(0.5)
    stopping = asyncio.create_task(asyncio.to_thread(service.terminate))
    await asyncio.sleep(1.0)  # uvicorn has stopped listening and waits for the request
    assert not stopping.done(), "exited with a request under way"
    answer = await asyncio.to_thread(_finish, connection, rest)
    assert answer.startswith("HTTP/1.1 201"), answer
    started = time.monotonic()
    assert await stopping == 0, service.log_tail()
    # The verification mail was queued by the sign-up and delivered before the exit.
    assert slow_smtp_server.mailbox.to(email), "the queued mail was dropped"
    assert time.monotonic() - started >= SMTP_DELAY_SECONDS * 0.5


async def test_shutdown_grace_bounds_the_wait_for_stuck_mail(
    start_service: ServiceFactory,
    settings: Settings,
    fresh_database: DatabaseUrls,
) -> None:
    stuck = SmtpServer(delay_seconds=120).start()
    try:
        environment = service_environment(
            settings, fresh_database, stuck, SHUTDOWN_GRACE_SECONDS="2", SMTP_TIMEOUT_SECONDS="120"
        )
        service = start_service(environment)
        email = f"stuck-{uuid.uuid4().hex[:8]}@example.com"
        connection, rest = await asyncio.to_thread(_open_sign_up, service, email)
        assert (await asyncio.to_thread(_finish, connection, rest)).startswith("HTTP/1.1 201")
        started = time.monotonic()
        assert await asyncio.to_thread(service.terminate) == 0, service.log_tail()
        assert time.monotonic() - started < 20
    finally:
        stuck.stop()
