"""Fixtures for the service run as a process of its own, on a database of its own."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from backend.core.config import Settings
from tests.conftest import TEST_DATABASE, DatabaseUrls
from tests.harness.postgres import APP_ROLE, OWNER_ROLE, SUPERUSER, PostgresServer
from tests.harness.service import ServiceProcess
from tests.harness.smtp import SmtpServer

ServiceFactory = Callable[..., ServiceProcess]
PASSWORD = "a long enough passphrase"
# Well formed, so that the invitation page looks it up in the database (and finds nothing).
UNKNOWN_INVITATION_TOKEN = f"{uuid.uuid4().hex}.{'x' * 43}"


@pytest.fixture
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> DatabaseUrls:
    """An empty database that the service migrates itself, as `serve` does in production."""
    if TEST_DATABASE == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'service.db'}"
        return DatabaseUrls("sqlite", url, url, url)
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"service_{uuid.uuid4().hex[:12]}"
    server.create_database(name)
    return database_urls_of(server, name)


def database_urls_of(server: PostgresServer, name: str) -> DatabaseUrls:
    return DatabaseUrls(
        "postgresql",
        server.url(APP_ROLE, "app", name),
        server.url(OWNER_ROLE, "owner", name),
        server.url(SUPERUSER, database=name),
    )


def service_environment(
    settings: Settings, database: DatabaseUrls, smtp_server: SmtpServer, **overrides: str
) -> dict[str, str]:
    """What an operator would put in `.env`: the suite's secrets, its SMTP server, `database`."""
    return {
        "DATABASE_URL": database.app,
        "MIGRATIONS_DATABASE_URL": database.owner,
        "SECRET_KEY": settings.secret_key_value(),
        "JWT_PRIVATE_KEYS": settings.jwt_private_keys_value(),
        "EMAIL_BACKEND": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_server.port),
        "LOGIN_RATE_LIMIT": "1000/minute",
        **overrides,
    }


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[ServiceFactory]:
    """Starts `tenantdesk serve` processes; whatever a test leaves running is killed after it."""
    started: list[ServiceProcess] = []

    def start(environment: dict[str, str], workers: int = 1) -> ServiceProcess:
        service = ServiceProcess.start(tmp_path / f"service-{len(started)}", environment, workers)
        started.append(service)
        return service

    yield start
    for service in started:
        service.kill()


async def sign_up_and_sign_in(http: httpx.AsyncClient, email: str) -> str:
    """A new account through the API; its access token."""
    created = await http.post(
        "/api/v1/users", json={"email": email, "password": PASSWORD, "full_name": "Reliable"}
    )
    assert created.status_code == 201, created.text
    return await sign_in(http, email)


async def sign_in(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    answer = await password_grant(http, email, password)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


async def password_grant(http: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    form = {"grant_type": "password", "client_id": "web", "username": email, "password": password}
    return await http.post("/oauth/token", data=form)


def assert_unavailable(answer: httpx.Response) -> None:
    """What a client sees while a dependency is down: a 503 problem that says when to retry."""
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json", answer.text
    assert int(answer.headers["retry-after"]) >= 1
    assert answer.json()["status"] == 503
