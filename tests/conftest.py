"""Fixtures for the whole suite.

The suite runs once per database: TEST_DATABASE=sqlite (default) or TEST_DATABASE=postgresql,
which starts a throwaway server (tests/harness/postgres.py). With CI=true a PostgreSQL that cannot
start fails the run; it is never skipped.

Every test starts from a migrated, empty database holding only what bootstrap creates.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from alembic.config import Config
from fastapi import FastAPI
from playwright.async_api import Browser, Page, async_playwright
from pydantic import SecretStr
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from alembic import command
from backend.core.config import (
    DatabasePooler,
    EmailBackend,
    Environment,
    Settings,
    generate_private_key_pem,
)
from backend.core.database import Database, create_engine
from backend.core.leases import Lease
from backend.identity.bootstrap import ensure_default_client
from backend.main import create_app
from backend.models import metadata
from tests.cross_tenant import DATABASE_KEY
from tests.factories import TEST_SECRET_KEY
from tests.harness.live import LiveServer, start_live_server
from tests.harness.pgbouncer import PgBouncer
from tests.harness.postgres import APP_ROLE, DATABASE, PostgresServer
from tests.harness.service import ServiceProcess, service_environment
from tests.harness.smtp import Mailbox, SmtpServer

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEST_DATABASE = os.environ.get("TEST_DATABASE", "sqlite")
# TEST_POOLER=pgbouncer (with TEST_DATABASE=postgresql): the app connects through PgBouncer.
TEST_POOLER = os.environ.get("TEST_POOLER", "")
PGBOUNCER_STATEMENT_TIMEOUT_MS = 5000
Started = TypeVar("Started")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
BASE_URL = "https://testserver"

logging.getLogger("mail.log").setLevel(logging.WARNING)


def pytest_report_header() -> str:
    return f"database: {TEST_DATABASE}" + (f" through {TEST_POOLER}" if TEST_POOLER else "")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if TEST_DATABASE == "postgresql":
        return
    skip = pytest.mark.skip(reason="PostgreSQL only: runs in the TEST_DATABASE=postgresql pass")
    for item in items:
        if "postgres_only" in item.keywords:
            item.add_marker(skip)


@dataclass(frozen=True)
class DatabaseUrls:
    kind: str
    app: str  # what the service connects with: the non-owner app role on PostgreSQL
    owner: str  # the schema owner: migrations
    superuser: str  # the harness itself: resetting data between tests


def start_or_skip(start: Callable[[], Started], what: str) -> Started:
    """A harness server started; one that cannot start is skipped, except with CI=true."""
    try:
        return start()
    except (RuntimeError, OSError) as exc:  # PostgresUnavailable, RedisUnavailable, ...
        if IN_CI:
            pytest.fail(f"{what} could not start, and CI=true forbids skipping: {exc}")
        pytest.skip(f"{what} could not start: {exc}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """This worker's throwaway PostgreSQL (the PostgreSQL pass only)."""
    if TEST_DATABASE != "postgresql":
        pytest.fail("postgres_server is for tests marked postgres_only")
    server = start_or_skip(PostgresServer.start, "PostgreSQL")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def database_urls(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> DatabaseUrls:
    if TEST_DATABASE == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.db'}"
        return DatabaseUrls("sqlite", url, url, url)
    server: PostgresServer = request.getfixturevalue("postgres_server")
    app_url = server.app_url
    if TEST_POOLER == "pgbouncer":
        bouncer: PgBouncer = request.getfixturevalue("pgbouncer")
        app_url = bouncer.url(APP_ROLE, "app", DATABASE)
    return DatabaseUrls("postgresql", app_url, server.owner_url, server.superuser_url)


@pytest.fixture(scope="session")
def pgbouncer(postgres_server: PostgresServer) -> Iterator[PgBouncer]:
    """PgBouncer in transaction pooling mode in front of this worker's PostgreSQL.

    Behind it, the statement timeout is the app role's setting (README, "Behind PgBouncer").
    """
    postgres_server.set_role_statement_timeout(APP_ROLE, PGBOUNCER_STATEMENT_TIMEOUT_MS)
    bouncer = start_or_skip(lambda: PgBouncer.start(postgres_server), "PgBouncer")
    try:
        yield bouncer
    finally:
        bouncer.stop()


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def settings(database_urls: DatabaseUrls, smtp_server: SmtpServer) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment=Environment.TEST,
        database_url=database_urls.app,
        migrations_database_url=database_urls.owner,
        database_pooler=DatabasePooler.PGBOUNCER if TEST_POOLER else DatabasePooler.NONE,
        secret_key=SecretStr(TEST_SECRET_KEY),
        jwt_private_keys=SecretStr(generate_private_key_pem()),
        public_base_url=BASE_URL,
        email_backend=EmailBackend.SMTP,
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        login_rate_limit="1000/minute",
        login_account_failure_budget="1000/hour",
        # Tests resend right after inviting; the cooldown's own tests turn it on.
        invitation_resend_cooldown_seconds=0,
        # Webhook tests start their own dispatchers; and whatever a test registers (schemathesis
        # makes up URLs) is sent nowhere but to this machine, and looked up nowhere.
        webhook_dispatcher_in_process=False,
        webhook_allowed_hosts=["127.0.0.1", "localhost"],
        # The daily purge would run at start-up, beside the tests; its own tests start it.
        purge_interval_seconds=0,
    )


def alembic_config(url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    config.attributes["url"] = url
    config.attributes["skip_logging_config"] = True
    return config


async def run_alembic(url: str, action: str, revision: str) -> None:
    """Alembic's env.py runs its own event loop, so it gets a thread of its own."""
    await asyncio.to_thread(getattr(command, action), alembic_config(url), revision)


@pytest.fixture(scope="session")
async def migrated(database_urls: DatabaseUrls) -> DatabaseUrls:
    await run_alembic(database_urls.owner, "upgrade", "head")
    return database_urls


@pytest.fixture(scope="session")
async def running_app(settings: Settings, migrated: DatabaseUrls) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def superuser_engine(migrated: DatabaseUrls) -> AsyncIterator[AsyncEngine]:
    """Sees every row (bypasses RLS): for resetting data and for asserting on raw state."""
    engine = create_engine(migrated.superuser, Settings(_env_file=None))  # type: ignore[call-arg]
    yield engine
    await engine.dispose()


# Rows the migrations make, which the app only updates: kept, and set back to how they start.
MIGRATION_ROWS = {Lease.__tablename__}


async def _reset_data(engine: AsyncEngine, kind: str) -> None:
    """Empties every table. TRUNCATE locks its tables one by one, so a transaction still open
    from the previous test (a stream its client left, say) can deadlock with it: PostgreSQL then
    aborts one of the two, and when that is the reset, it is tried again."""
    for attempt in range(RESET_ATTEMPTS):
        try:
            await _empty_tables(engine, kind)
            return
        except DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) != DEADLOCK or attempt == RESET_ATTEMPTS - 1:
                raise
            logging.getLogger(__name__).warning("the reset met a deadlock; trying again")
            await asyncio.sleep(0.1 * (attempt + 1))


RESET_ATTEMPTS, DEADLOCK = 5, "40P01"


async def _empty_tables(engine: AsyncEngine, kind: str) -> None:
    tables = [t.name for t in reversed(metadata.sorted_tables) if t.name not in MIGRATION_ROWS]
    async with engine.begin() as connection:
        if kind == "postgresql":
            await connection.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
        else:
            for table in tables:
                await connection.execute(text(f"DELETE FROM {table}"))
        free = datetime(1970, 1, 1, tzinfo=UTC)
        await connection.execute(update(Lease).values(holder="", held_until=free))


@pytest.fixture
async def app(
    running_app: FastAPI, superuser_engine: AsyncEngine, migrated: DatabaseUrls
) -> FastAPI:
    """The app over an empty database that holds only the bootstrap rows."""
    await _reset_data(superuser_engine, migrated.kind)
    async with running_app.state.database.session_factory() as session, session.begin():
        await ensure_default_client(session, running_app.state.settings)
    return running_app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield http


@pytest.fixture
def database(app: FastAPI) -> Database:
    return app.state.database


@pytest.fixture
async def db(app: FastAPI) -> AsyncIterator[AsyncSession]:
    """A session as the app connects (the app role on PostgreSQL), for arranging and asserting.

    Commit what the app must see; `persist` writes tenant rows in their tenant's context, and
    `tests.cross_tenant` reads every tenant's rows for assertions.
    """
    async with app.state.database.session_factory() as session:
        session.info[DATABASE_KEY] = app.state.database
        yield session


@pytest.fixture
async def harness_db(superuser_engine: AsyncEngine, app: FastAPI) -> AsyncIterator[AsyncSession]:
    """A session below the app (the database superuser, no ORM filter), for arranging a state
    that no path of the app makes: a token already expired, a client of no tenant."""
    async with AsyncSession(superuser_engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
async def owner_db(app: FastAPI, settings: Settings) -> AsyncIterator[AsyncSession]:
    """A session as the schema owner, for what the app role may not do (a superuser)."""
    database = Database.as_owner(settings)
    async with database.session_factory() as session:
        yield session
    await database.dispose()


@pytest.fixture(scope="session")
async def live_server(settings: Settings, migrated: DatabaseUrls) -> AsyncIterator[LiveServer]:
    """The app on a real port. Request `app` too, for a clean database and for arranging data.

    Its PUBLIC_BASE_URL is its own URL, so mailed links lead to it; mint tokens for it with
    `live_server.app.state.key_ring`, since the issuer differs from the in-process app's.
    """
    server = await start_live_server(settings)
    yield server
    await asyncio.to_thread(server.stop)


# The run command's client addresses: the test client connects from PEER, which is not a
# trusted proxy, or from TRUSTED_PROXY, which is.
PEER, TRUSTED_PROXY = "127.0.0.1", "127.0.0.2"


@pytest.fixture(scope="session")
async def served(
    settings: Settings, migrated: DatabaseUrls, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ServiceProcess]:
    """`tenantdesk serve` in a child process on the test database, with the default limits.
    Request `app` too, for a clean database."""
    environment = service_environment(
        settings.database_url,
        settings.migrations_database_url or settings.database_url,
        settings.secret_key_value(),
        settings.jwt_private_keys_value(),
    )
    environment |= {"FORWARDED_ALLOW_IPS": TRUSTED_PROXY, "LOGIN_RATE_LIMIT": "10/minute"}
    process = await asyncio.to_thread(
        ServiceProcess.start, tmp_path_factory.mktemp("served"), environment, migrate=False
    )
    yield process
    await asyncio.to_thread(process.stop)


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Debian's headless Chromium, driven by Playwright (no downloaded browser)."""
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 (once per session, before any test)
        message = f"{CHROMIUM} is missing: apt-get install chromium"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context()
    opened = await context.new_page()
    yield opened
    await context.close()


def screenshot_path(name: str) -> Path:
    """Where browser tests keep their screenshots (a CI artefact)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / f"{TEST_DATABASE}-{name}.png"


@pytest.fixture
def mailbox(smtp_server: SmtpServer) -> Mailbox:
    smtp_server.mailbox.clear()
    return smtp_server.mailbox
