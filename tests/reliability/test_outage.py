"""PostgreSQL stopped and started again under concurrent reads and writes, against the service
as it runs in production (`tenantdesk serve`, uvicorn, its own PostgreSQL).

While the database is away every request that needs it gets a 503 problem with Retry-After (the
API, the admin panel and the HTML pages alike), readiness says 503, nothing is a 500 or a dropped
connection, and the log has one WARNING instead of tracebacks. Once it is back, the first success
comes within a second, and every acknowledged write is there, whole.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import text

from backend.core.config import Settings
from backend.core.database import create_engine
from tests.harness.postgres import PostgresServer
from tests.harness.service import ServiceProcess
from tests.harness.smtp import SmtpServer
from tests.reliability.conftest import (
    PASSWORD,
    UNKNOWN_INVITATION_TOKEN,
    ServiceFactory,
    assert_unavailable,
    database_urls_of,
    service_environment,
    sign_up_and_sign_in,
)

pytestmark = pytest.mark.postgres_only

READERS = 4
WRITERS = 4
BEFORE_SECONDS = 1.5
DOWN_SECONDS = 2.0
AFTER_SECONDS = 2.0
FIRST_SUCCESS_SECONDS = 1.0
ADMIN_EMAIL = "root@example.com"
_ADMIN_CSRF = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    """A server of its own: stopping it must not disturb the rest of the suite."""
    server = PostgresServer.start()
    server.create_database("outage")
    yield server
    server.stop()


@dataclass
class Outcome:
    sent: float
    done: float
    status: int | None  # None: the connection failed
    error: str = ""
    problem: bool = False
    retry_after: str | None = None


@dataclass
class Load:
    """Readers list projects, writers create them, until told to stop."""

    http: httpx.AsyncClient
    tenant_path: str
    headers: dict[str, str]
    running: bool = True
    outcomes: list[Outcome] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop(self) -> None:
        self.running = False
        await asyncio.gather(*self.tasks)

    async def _request(self, method: str, path: str, **kwargs: object) -> httpx.Response | None:
        sent = time.monotonic()
        try:
            answer = await self.http.request(method, path, headers=self.headers, **kwargs)  # type: ignore[arg-type]
        except httpx.TransportError as exc:
            self.outcomes.append(Outcome(sent, time.monotonic(), None, repr(exc)))
            return None
        problem = answer.headers.get("content-type") == "application/problem+json"
        retry_after = answer.headers.get("retry-after")
        self.outcomes.append(
            Outcome(
                sent, time.monotonic(), answer.status_code, answer.text[:200], problem, retry_after
            )
        )
        return answer

    async def reader(self) -> None:
        while self.running:
            await self._request("GET", f"{self.tenant_path}/projects")
            await asyncio.sleep(0.01)

    async def writer(self, number: int) -> None:
        sequence = 0
        while self.running:
            sequence += 1
            name = f"w{number}-{sequence}"
            answer = await self._request(
                "POST", f"{self.tenant_path}/projects", json={"name": name}
            )
            if answer is not None and answer.status_code == 201:
                self.acknowledged.add(answer.json()["id"])
            await asyncio.sleep(0.01)


ClientFactory = Callable[[ServiceProcess], httpx.AsyncClient]


@pytest.fixture
async def http_to() -> AsyncIterator[ClientFactory]:
    clients: list[httpx.AsyncClient] = []

    def make(service: ServiceProcess) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=READERS + WRITERS + 4)
        client = httpx.AsyncClient(base_url=service.url, timeout=30.0, limits=limits)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def _admin_csrf_token(http: httpx.AsyncClient) -> str:
    match = _ADMIN_CSRF.search((await http.get("/admin/login")).text)
    assert match
    return match.group(1)


async def _probe_while_down(
    service: ServiceProcess, admin: httpx.AsyncClient, csrf_token: str
) -> None:
    """Readiness, the HTML page, the token endpoint and the admin sign-in: all a clean 503."""
    async with httpx.AsyncClient(base_url=service.url, timeout=30.0) as http:
        assert_unavailable(await http.get("/health/ready"))
        page = await http.get("/invitations/accept", params={"token": UNKNOWN_INVITATION_TOKEN})
        assert_unavailable(page)
        grant = {"grant_type": "password", "client_id": "web", "username": ADMIN_EMAIL}
        assert_unavailable(await http.post("/oauth/token", data={**grant, "password": PASSWORD}))
    login = {"username": ADMIN_EMAIL, "password": PASSWORD, "csrf_token": csrf_token}
    assert_unavailable(
        await admin.post("/admin/login", data=login, headers={"Origin": service.url})
    )


async def _start_under_load(service: ServiceProcess, http: httpx.AsyncClient) -> Load:
    token = await sign_up_and_sign_in(http, f"load-{uuid.uuid4().hex[:8]}@example.com")
    headers = {"Authorization": f"Bearer {token}"}
    tenant = await http.post(
        "/api/v1/tenants", json={"name": "Outage", "slug": "outage"}, headers=headers
    )
    assert tenant.status_code == 201, tenant.text
    load = Load(http, f"/api/v1/tenants/{tenant.json()['id']}", headers)
    load.tasks = [asyncio.create_task(load.reader()) for _ in range(READERS)]
    load.tasks += [asyncio.create_task(load.writer(number)) for number in range(WRITERS)]
    return load


async def test_a_postgresql_restart_under_load_is_a_clean_503_then_a_quick_recovery(
    own_postgres: PostgresServer,
    start_service: ServiceFactory,
    http_to: ClientFactory,
    settings: Settings,
    smtp_server: SmtpServer,
) -> None:
    database = database_urls_of(own_postgres, "outage")
    environment = service_environment(
        settings,
        database,
        smtp_server,
        DATABASE_POOL_TIMEOUT_SECONDS="2",
        DATABASE_CONNECT_TIMEOUT_SECONDS="2",
        BOOTSTRAP_ADMIN_EMAIL=ADMIN_EMAIL,
        BOOTSTRAP_ADMIN_PASSWORD=PASSWORD,
    )
    service = start_service(environment)
    admin = http_to(service)
    admin_csrf_token = await _admin_csrf_token(admin)
    load = await _start_under_load(service, http_to(service))

    await asyncio.sleep(BEFORE_SECONDS)
    await asyncio.to_thread(own_postgres.stop_server, "fast")
    went_down = time.monotonic()
    await _probe_while_down(service, admin, admin_csrf_token)
    await asyncio.sleep(max(0.0, DOWN_SECONDS - (time.monotonic() - went_down)))
    await asyncio.to_thread(own_postgres.start_server)
    came_back = time.monotonic()
    await asyncio.sleep(AFTER_SECONDS)
    await load.stop()

    async with httpx.AsyncClient(base_url=service.url) as probe:
        assert (await probe.get("/health/ready")).status_code == 200
    _assert_clean_answers(load.outcomes, came_back)
    await _assert_writes_whole(database.superuser, load.acknowledged)
    _assert_quiet_log(service)
    assert service.terminate() == 0


def _assert_clean_answers(outcomes: list[Outcome], came_back: float) -> None:
    dropped = [outcome for outcome in outcomes if outcome.status is None]
    assert not dropped, f"dropped connections: {dropped[:3]}"
    unexpected = [outcome for outcome in outcomes if outcome.status not in {200, 201, 503}]
    assert not unexpected, unexpected[:3]
    unavailable = [outcome for outcome in outcomes if outcome.status == 503]
    assert unavailable, "the outage was not seen"
    assert all(outcome.problem and outcome.retry_after for outcome in unavailable)
    recovered = [
        outcome.done
        for outcome in outcomes
        if outcome.status in {200, 201} and outcome.done >= came_back
    ]
    assert recovered, "nothing succeeded after the restart"
    assert min(recovered) - came_back <= FIRST_SUCCESS_SECONDS


async def _assert_writes_whole(superuser_url: str, acknowledged: set[str]) -> None:
    """Every acknowledged project is there; every project there has its owner and audit row."""
    engine = create_engine(superuser_url, Settings(_env_file=None))  # type: ignore[call-arg]
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT p.id::text, "
                    "(SELECT count(*) FROM project_members m WHERE m.project_id = p.id), "
                    "(SELECT count(*) FROM audit_events a WHERE a.target_id = p.id::text "
                    " AND a.action = 'project.created') "
                    "FROM projects p"
                )
            )
            stored = {project_id: (members, audits) for project_id, members, audits in rows}
    finally:
        await engine.dispose()
    assert acknowledged, "no write was acknowledged"
    assert acknowledged <= set(stored), f"lost: {sorted(acknowledged - set(stored))[:5]}"
    half_written = {key: value for key, value in stored.items() if value != (1, 1)}
    assert not half_written, half_written


def _assert_quiet_log(service: ServiceProcess) -> None:
    records = service.log_records()
    errors = [record for record in records if record["level"] in {"ERROR", "CRITICAL"}]
    assert not errors, errors[:3]
    assert "Traceback" not in service.log_path.read_text()
    warnings = [
        record for record in records if record["message"] == "database unavailable: answering 503"
    ]
    assert len(warnings) == 1, warnings
