"""Fixtures of the webhook tests: a real receiver on loopback, Acme, and dispatchers.

Acme: olive owner · adam admin · mia member; project Apollo (olive owner). Every URL a test
sends to is the receiver's, on 127.0.0.1: nothing leaves this machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.config import Settings
from backend.webhooks.dispatcher import DISPATCHER_TASK, Dispatcher
from backend.webhooks.models import WebhookDelivery
from backend.webhooks.targets import Resolver
from tenants.isolation import enter_tenant
from tenants.roles import ProjectRole, TenantRole
from tests.harness.receiver import Receiver, start_receiver
from tests.world import TenantWorld, build_tenant

# Short enough for tests: the retry schedule and the poll interval. The attempt timeout stays at
# its default (10 s): the receiver shares the tests' event loop, and on a loaded machine a short
# timeout would turn a slow answer into a retry, a second copy that no test expects. The test of
# the timeout shortens it.
FAST = {
    "webhook_retry_schedule_seconds": [0.2, 0.2],
    "webhook_poll_interval_seconds": 0.05,
}


@pytest.fixture(scope="session")
async def webhook_receiver() -> AsyncIterator[Receiver]:
    receiver = await start_receiver()
    yield receiver
    await receiver.stop()


@pytest.fixture
def receiver(webhook_receiver: Receiver) -> Receiver:
    webhook_receiver.reset()
    return webhook_receiver


@pytest.fixture
async def acme(db: AsyncSession) -> TenantWorld:
    people = {"olive": TenantRole.OWNER, "adam": TenantRole.ADMIN, "mia": TenantRole.MEMBER}
    world = await build_tenant(db, "acme", people)
    await world.add_project(db, "Apollo", {"olive": ProjectRole.OWNER})
    return world


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    return settings.model_copy(update=FAST)


MakeDispatcher = Callable[..., Dispatcher]


STOP_SECONDS = 10.0


@pytest.fixture
async def make_dispatcher(app: FastAPI, fast_settings: Settings) -> AsyncIterator[MakeDispatcher]:
    """Dispatchers on the test database (`resolver=`, and settings overrides as keywords).

    Every one is stopped after the test, whether it passed or not, and its tasks are awaited (or
    cancelled past `STOP_SECONDS`): a dispatcher left running would go on handing out the events
    of later tests, whose databases it shares.
    """
    made: list[Dispatcher] = []

    def make(resolver: Resolver | None = None, **overrides: Any) -> Dispatcher:
        settings = fast_settings.model_copy(update=overrides)
        dispatcher = Dispatcher(app.state.database, settings, app.state.mailer, resolver=resolver)
        made.append(dispatcher)
        return dispatcher

    try:
        yield make
    finally:
        for dispatcher in made:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(dispatcher.stop(1.0), STOP_SECONDS)
        await _cancel_dispatcher_tasks()


@pytest.fixture(autouse=True)
async def no_dispatcher_outlives_its_test() -> AsyncIterator[None]:
    """Fails the test that leaves a dispatcher's loop running, and ends that loop."""
    yield
    assert await _cancel_dispatcher_tasks() == 0, "a webhook dispatcher outlived its test"


async def _cancel_dispatcher_tasks() -> int:
    """Cancel and await whatever dispatcher loop still runs in this event loop; how many."""
    loops = {task for task in asyncio.all_tasks() if task.get_name() == DISPATCHER_TASK}
    for task in loops:
        task.cancel()
    if loops:
        await asyncio.wait(loops)
    return len(loops)


async def run_until(
    dispatcher: Dispatcher,
    done: Callable[[], bool],
    timeout: float = 30.0,  # noqa: ASYNC109 (a deadline across passes)
) -> None:
    """Dispatcher passes (waiting for their sends) until `done()`; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("the dispatcher did not get there in time")
        await dispatcher.run_once()
        await dispatcher.drain()
        if not done():
            await asyncio.sleep(0.02)


async def create_task(client: httpx.AsyncClient, app: FastAPI, world: TenantWorld) -> dict:
    """A task in Apollo, created by olive through the API: a `task.created` event."""
    project = world.projects["Apollo"].id
    response = await client.post(
        f"/api/v1/tenants/{world.id}/projects/{project}/tasks",
        json={"title": "Fuel"},
        headers=world.headers(app, "olive"),
    )
    assert response.status_code == 201
    return response.json()


async def register(
    client: httpx.AsyncClient,
    app: FastAPI,
    world: TenantWorld,
    url: str,
    who: str = "olive",
    events: list[str] | None = None,
) -> dict[str, Any]:
    """`who` registers `url` for `events` (all by default); the answer, secret included."""
    response = await client.post(
        f"/api/v1/tenants/{world.id}/webhooks",
        json={"url": url, "events": events or ["*"], "description": "test"},
        headers=world.headers(app, who),
    )
    assert response.status_code == 201, response.text
    return response.json()


async def delivery_rows(db: AsyncSession, world: TenantWorld) -> list[WebhookDelivery]:
    """The world's webhook deliveries as they are now in the database."""
    await enter_tenant(db, world.id)
    fresh = select(WebhookDelivery).execution_options(populate_existing=True)
    found = list(await db.scalars(fresh))
    await db.commit()
    return found
