"""`tenantdesk worker`: the dispatcher alone, in a process of its own, stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from sqlalchemy.ext.asyncio import AsyncSession

from backend.cli import WORKER_READY
from backend.core.config import Settings
from backend.webhooks.signing import generate_secret
from tests.factories import OutboxEventFactory, WebhookEndpointFactory, persist
from tests.harness.receiver import Receiver
from tests.harness.service import PROJECT_ROOT
from tests.world import TenantWorld

STARTUP_SECONDS = 60.0
STOP_SECONDS = 30.0


async def test_the_worker_delivers_and_stops_on_sigterm(
    settings: Settings, db: AsyncSession, acme: TenantWorld, receiver: Receiver
) -> None:
    secret = generate_secret()
    event = OutboxEventFactory(tenant_id=acme.id, type="task.created")
    await persist(db, WebhookEndpointFactory(tenant_id=acme.id, url=receiver.url, secret=secret))
    environment = {
        **{k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")},
        "PYTHONPATH": str(PROJECT_ROOT),
        "ENVIRONMENT": "test",
        "DATABASE_URL": settings.database_url,
        "MIGRATIONS_DATABASE_URL": settings.migrations_database_url or settings.database_url,
        "SECRET_KEY": settings.secret_key_value(),
        "JWT_PRIVATE_KEYS": settings.jwt_private_keys_value(),
        "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
        "WEBHOOK_POLL_INTERVAL_SECONDS": "0.2",
        "LOG_LEVEL": "WARNING",
    }
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "backend.cli",
        "worker",
        cwd=PROJECT_ROOT,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        started = await _output_until_ready(worker)
        await persist(db, event)
        [arrived] = await receiver.wait_for(1, timeout=60.0)
        worker.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(worker.wait(), STOP_SECONDS)
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
    assert worker.stdout is not None
    output = started + (await worker.stdout.read()).decode()

    assert code == 0, output
    assert arrived.verified(secret)["id"] == str(event.id)
    assert secret not in output


async def _output_until_ready(worker: asyncio.subprocess.Process) -> str:
    """What the worker printed up to its line saying it runs (its SIGTERM handler is in place
    by then); fails if it exits or stays silent for `STARTUP_SECONDS`."""
    assert worker.stdout is not None
    lines = []
    async with asyncio.timeout(STARTUP_SECONDS):
        while not lines or lines[-1].rstrip() != WORKER_READY:
            line = (await worker.stdout.readline()).decode()
            assert line, f"the worker exited before it ran: {''.join(lines)}"
            lines.append(line)
    return "".join(lines)
