"""`tenantdesk`: migrations, the superuser, the purge, and the server."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import secrets
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
import uvicorn
from alembic.config import Config
from joserfc.jwk import ECKey
from sqlalchemy.ext.asyncio import AsyncSession

import backend.models  # noqa: F401  (every table, for foreign keys across layers)
from alembic import command
from backend.core.app_role import AppRoleUnfit, check_app_role
from backend.core.config import VAR_DIR, ConfigurationError, Settings, get_settings
from backend.core.database import Database
from backend.core.logging import configure_logging
from backend.core.mail import Mailer, finish_deliveries
from backend.identity.bootstrap import bootstrap, ensure_superuser, set_superuser
from backend.identity.passwords import Passwords
from backend.projects.purge import PurgeReport, run_purge
from backend.webhooks.dispatcher import Dispatcher

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WORKER_HEALTHCHECK_SECONDS = 30

app = typer.Typer(
    help="Run and administer the tenantdesk service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db = typer.Typer(help="Schema migrations (Alembic), as the schema owner.", no_args_is_help=True)
app.add_typer(db, name="db")


def _settings() -> Settings:
    try:
        settings = get_settings()
    except ConfigurationError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from exc
    configure_logging(settings.log_level)
    return settings


def _alembic_config() -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    return config


def _ensure_sqlite_folder(settings: Settings) -> None:
    if settings.is_sqlite:
        VAR_DIR.mkdir(exist_ok=True)


@db.command()
def upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: head)."""
    _ensure_sqlite_folder(_settings())
    command.upgrade(_alembic_config(), revision)


@db.command()
def downgrade(revision: Annotated[str, typer.Argument()]) -> None:
    """Revert migrations down to REVISION (`base` removes everything)."""
    _settings()
    command.downgrade(_alembic_config(), revision)


@db.command()
def current() -> None:
    """Show the revision the database is at."""
    _settings()
    command.current(_alembic_config(), verbose=False)


ResultT = TypeVar("ResultT")


async def _as_owner(
    settings: Settings, work: Callable[[AsyncSession], Awaitable[ResultT]]
) -> ResultT:
    """Run `work` in one transaction as the schema owner: the app role may not create
    superusers (nor, before the API runs, anything else bootstrap writes)."""
    database = Database.as_owner(settings)
    try:
        async with database.session_factory() as session, session.begin():
            return await work(session)
    finally:
        await database.dispose()


@app.command("create-superuser")
def create_superuser(
    email: Annotated[str, typer.Option(prompt=True, help="The admin's email.")],
    password: Annotated[
        str | None, typer.Option(help="Asked for when not given (preferred: not in history).")
    ] = None,
    full_name: Annotated[str, typer.Option(help="Display name.")] = "",
) -> None:
    """Create a platform superuser."""
    settings = _settings()
    if password is None:
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Repeat: "):
            typer.echo("The passwords differ.", err=True)
            raise typer.Exit(1)
    passwords = Passwords(settings)
    created = asyncio.run(
        _as_owner(
            settings,
            lambda session: ensure_superuser(session, passwords, email, password, full_name),
        )
    )
    typer.echo("Superuser created." if created else "An account with that email exists already.")


@app.command("set-superuser")
def set_superuser_command(
    email: Annotated[str, typer.Option(help="The account's email.")],
    revoke: Annotated[bool, typer.Option("--revoke", help="Take the role away instead.")] = False,
) -> None:
    """Make an existing account a platform superuser (or, with --revoke, no longer one)."""
    settings = _settings()
    found = asyncio.run(
        _as_owner(settings, lambda session: set_superuser(session, email, not revoke))
    )
    if not found:
        typer.echo("No account has that email.", err=True)
        raise typer.Exit(1)
    typer.echo("No longer a superuser." if revoke else "Now a superuser.")


@app.command("bootstrap")
def bootstrap_command() -> None:
    """Create the first-party OAuth2 client and the BOOTSTRAP_ADMIN_* superuser when absent."""
    settings = _settings()
    passwords = Passwords(settings)
    asyncio.run(_as_owner(settings, lambda session: bootstrap(session, settings, passwords)))


@app.command("purge")
def purge_command() -> None:
    """Purge the trash past TRASH_RETENTION_DAYS, the tenants past their grace period, the
    idempotency keys older than a day and the finished webhook history past
    WEBHOOK_LOG_RETENTION_DAYS, as the app role; exit 1 when another worker is purging (the
    lease is held)."""
    settings = _settings()

    async def purge() -> PurgeReport | None:
        database = Database.from_settings(settings)
        try:
            return await run_purge(database, settings)
        finally:
            await database.dispose()

    report = asyncio.run(purge())
    if report is None:
        typer.echo("Another purge is running; nothing done.", err=True)
        raise typer.Exit(1)
    typer.echo(
        f"Purged {report.tenants} tenants, {report.projects} projects, {report.tasks} tasks, "
        f"{report.idempotency_keys} idempotency keys and {report.webhook_events} webhook events."
    )


@app.command("generate-secrets")
def generate_secrets() -> None:
    """Print fresh SECRET_KEY and JWT_PRIVATE_KEYS lines for a production `.env` file."""
    key = ECKey.generate_key("P-256", private=True, auto_kid=True)
    typer.echo(f"SECRET_KEY={secrets.token_urlsafe(48)}")
    typer.echo(f"JWT_PRIVATE_KEYS='{json.dumps({'keys': [key.as_dict(private=True)]})}'")


def _refuse_an_unfit_app_role(settings: Settings) -> None:
    """In production, one line and exit 1 when the app role escapes row-level security (the
    workers would refuse to start anyway, less legibly); elsewhere a warning."""

    async def check() -> None:
        database = Database.from_settings(settings)
        try:
            await check_app_role(database.engine, settings)
        finally:
            await database.dispose()

    try:
        asyncio.run(check())
    except AppRoleUnfit as exc:
        typer.echo(f"refusing to start: {exc}", err=True)
        raise typer.Exit(1) from exc


@app.command()
def serve(
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    migrate: Annotated[bool, typer.Option(help="Apply pending migrations first.")] = True,
) -> None:
    """Apply pending migrations, bootstrap, and serve on HOST:PORT."""
    settings = _settings()
    if migrate:
        upgrade("head")
        bootstrap_command()
    _refuse_an_unfit_app_role(settings)
    base = f"http://{settings.host}:{settings.port}"
    typer.echo(
        f"API docs:     {base}/docs\nAdmin panel:  {base}/admin\nHealth:       {base}/health/ready"
    )
    # uvicorn re-raises the SIGTERM it handled once it has shut down gracefully; with this no-op
    # handler in place, a graceful stop exits 0 (a process manager's success).
    signal.signal(signal.SIGTERM, lambda _signal, _frame: None)
    uvicorn.run(
        "backend.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        # A worker that misses this many seconds of health checks is replaced; uvicorn's 5 s
        # also catches a worker still starting on a busy machine, and restarts it forever.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
    )


WORKER_READY = "webhook dispatcher running; SIGTERM stops it"


class StopRequest:
    """SIGTERM or SIGINT, caught from the moment the worker command starts until the process
    ends: whenever one comes (during start-up, while it runs, while it stops), the worker stops
    cleanly and exits 0."""

    def __init__(self) -> None:
        self.requested = False
        self._wake: Callable[[], object] | None = None
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._receive)

    def _receive(self, _signum: int, _frame: object) -> None:
        self.requested = True
        if self._wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nothing to wake
                self._wake()

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        stopped = asyncio.Event()
        # A signal handler runs between two bytecodes of the main thread: wake the loop safely.
        self._wake = lambda: loop.call_soon_threadsafe(stopped.set)
        if not self.requested:
            await stopped.wait()


@app.command()
def worker() -> None:
    """Run the webhook dispatcher alone (set WEBHOOK_DISPATCHER_IN_PROCESS=false for `serve`).

    It prints one line once it runs. SIGTERM or SIGINT stops it: sends under way finish within
    SHUTDOWN_GRACE_SECONDS, and what is left is sent after the lease, by this or another worker.
    """
    stop = StopRequest()
    settings = _settings()
    _refuse_an_unfit_app_role(settings)
    asyncio.run(_run_worker(settings, stop))


async def _run_worker(settings: Settings, stop: StopRequest) -> None:
    database = Database.from_settings(settings)
    dispatcher = Dispatcher(database, settings, Mailer(settings))
    dispatcher.start()
    typer.echo(WORKER_READY)
    try:
        await stop.wait()
    finally:
        grace = settings.shutdown_grace_seconds
        deadline = time.monotonic() + grace
        await dispatcher.stop(grace)
        await finish_deliveries(max(0.0, deadline - time.monotonic()))
        await database.dispose()


if __name__ == "__main__":
    app()
