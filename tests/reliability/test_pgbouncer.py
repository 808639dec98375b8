"""The service behind a real PgBouncer in transaction pooling mode, with DATABASE_POOLER=pgbouncer:
many concurrent requests of two tenants share four server connections, and each still sees only
its own rows (the tenant setting is SET LOCAL, in the transaction), with no prepared-statement
errors."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import text

from backend.core.config import Settings
from backend.core.database import create_engine
from tests.conftest import DatabaseUrls
from tests.harness.pgbouncer import SERVER_CONNECTIONS, PgBouncer
from tests.harness.postgres import APP_ROLE, PostgresServer
from tests.harness.smtp import SmtpServer
from tests.reliability.conftest import (
    ServiceFactory,
    database_urls_of,
    service_environment,
    sign_up_and_sign_in,
)

pytestmark = pytest.mark.postgres_only

CLIENTS_PER_TENANT = 6
ROUNDS = 8


async def _tenant(http: httpx.AsyncClient, slug: str) -> tuple[str, dict[str, str]]:
    token = await sign_up_and_sign_in(http, f"{slug}-{uuid.uuid4().hex[:6]}@example.com")
    headers = {"Authorization": f"Bearer {token}"}
    created = await http.post("/api/v1/tenants", json={"name": slug, "slug": slug}, headers=headers)
    assert created.status_code == 201, created.text
    return f"/api/v1/tenants/{created.json()['id']}/projects", headers


async def _work(http: httpx.AsyncClient, path: str, headers: dict[str, str], slug: str) -> None:
    """Create and list, again and again; every listed project must be this tenant's."""
    for round_number in range(ROUNDS):
        name = f"{slug} {uuid.uuid4().hex[:8]} {round_number}"
        created = await http.post(path, json={"name": name}, headers=headers)
        assert created.status_code == 201, created.text
        listed = await http.get(path, headers=headers, params={"limit": 100})
        assert listed.status_code == 200, listed.text
        names = [project["name"] for project in listed.json()["items"]]
        assert names, "a tenant's own project is missing"
        strangers = [name for name in names if not name.startswith(f"{slug} ")]
        assert not strangers, f"{slug} sees {strangers}"


async def _server_connections(superuser_url: str, database: str) -> int:
    engine = create_engine(superuser_url, Settings(_env_file=None))  # type: ignore[call-arg]
    try:
        async with engine.connect() as connection:
            count = await connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE usename = :role "
                    "AND datname = :database"
                ),
                {"role": APP_ROLE, "database": database},
            )
    finally:
        await engine.dispose()
    return int(count or 0)


async def test_tenants_stay_apart_under_concurrency_through_transaction_pooling(
    postgres_server: PostgresServer,
    pgbouncer: PgBouncer,
    start_service: ServiceFactory,
    settings: Settings,
    smtp_server: SmtpServer,
) -> None:
    name = f"pooled_{uuid.uuid4().hex[:8]}"
    postgres_server.create_database(name)
    direct = database_urls_of(postgres_server, name)
    pooled = DatabaseUrls("postgresql", pgbouncer.url(APP_ROLE, "app", name), direct.owner, "")
    environment = service_environment(
        settings, pooled, smtp_server, DATABASE_POOLER="pgbouncer", DATABASE_POOL_SIZE="12"
    )
    service = start_service(environment)
    limits = httpx.Limits(max_connections=4 * CLIENTS_PER_TENANT)
    async with httpx.AsyncClient(base_url=service.url, timeout=60.0, limits=limits) as http:
        tenants = {slug: await _tenant(http, slug) for slug in ("acme", "globex")}
        await asyncio.gather(
            *(
                _work(http, path, headers, slug)
                for slug, (path, headers) in tenants.items()
                for _ in range(CLIENTS_PER_TENANT)
            )
        )
    assert await _server_connections(direct.superuser, name) <= SERVER_CONNECTIONS
    records = service.log_records()
    assert not [record for record in records if record["level"] in {"ERROR", "CRITICAL"}]
    assert service.terminate() == 0
