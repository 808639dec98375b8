"""Every PostgreSQL transaction of the app starts with its tenant setting, in its first round trip.

The setting goes in the same simple-protocol message as BEGIN (`BEGIN; SET LOCAL ...`), empty
when there is no tenant, so that a value left on a pooled connection at session level never
applies. Seen on the wire's two paths: asyncpg's query log has every simple-protocol message
(one message, one round trip), and SQLAlchemy's cursor events every prepared statement.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from backend.core.config import Settings
from backend.core.database import Database
from tenants.isolation import enter_tenant
from tenants.roles import ProjectRole, TenantRole
from tests.world import TenantWorld, build_tenant

pytestmark = pytest.mark.postgres_only


PREPARED = "prepared: "


@asynccontextmanager
async def driver_queries(engine: AsyncEngine) -> AsyncIterator[list[str]]:
    """What the driver sends while the block runs, in order: simple-protocol messages as they
    are, prepared statements marked `PREPARED`."""
    sent: list[str] = []

    def log(record: Any) -> None:
        sent.append(record.query)

    def prepared(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(PREPARED + statement)

    def attach(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        record.driver_connection.add_query_logger(log)

    def detach(_dbapi_connection: Any, record: Any) -> None:
        record.driver_connection.remove_query_logger(log)

    event.listen(engine.sync_engine, "checkout", attach)
    event.listen(engine.sync_engine, "checkin", detach)
    event.listen(engine.sync_engine, "after_cursor_execute", prepared)
    try:
        yield sent
        # asyncpg hands each query to its loggers with `call_soon`: let the last ones (the
        # COMMIT that ends the request) reach the list before it is read.
        await asyncio.sleep(0)
    finally:
        event.remove(engine.sync_engine, "checkout", attach)
        event.remove(engine.sync_engine, "checkin", detach)
        event.remove(engine.sync_engine, "after_cursor_execute", prepared)


def transactions(sent: list[str]) -> list[list[str]]:
    """The queries grouped by transaction, each starting with its BEGIN."""
    grouped: list[list[str]] = []
    for query in sent:
        if query.startswith("BEGIN"):
            grouped.append([])
        if grouped:
            grouped[-1].append(query)
    return grouped


@pytest.fixture
async def acme(db: AsyncSession) -> TenantWorld:
    world = await build_tenant(db, "acme", members={"olga": TenantRole.OWNER})
    await world.add_project(db, "Launch", members={"olga": ProjectRole.OWNER})
    return world


async def test_a_tenant_request_sends_begin_and_its_tenant_in_one_round_trip(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    async with driver_queries(app.state.database.engine) as sent:
        response = await client.get(f"{acme.url}/projects", headers=acme.headers(app, "olga"))
    assert response.status_code == 200, response.text

    [(first, *queries, last)] = transactions(sent)
    assert first.startswith(f"BEGIN; SET LOCAL app.tenant_id = '{acme.id}'")
    assert queries
    assert all(query.startswith(PREPARED + "SELECT") for query in queries)
    assert last == "COMMIT;"


async def test_a_task_read_is_one_query_that_keeps_both_filters_on_the_task(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld, db: AsyncSession
) -> None:
    """The access query brings the task with it (three round trips in all), and the task's
    join still compares its tenant and hides it once deleted."""
    task = await acme.add_task(db, "Launch", title="Ship it")
    path = f"{acme.url}/projects/{acme.projects['Launch'].id}/tasks/{task.id}"
    async with driver_queries(app.state.database.engine) as sent:
        response = await client.get(path, headers=acme.headers(app, "olga"))
    assert response.status_code == 200, response.text

    [(first, query, last)] = transactions(sent)
    assert first.startswith("BEGIN; SET LOCAL app.tenant_id")
    assert last == "COMMIT;"
    join = query.split("LEFT OUTER JOIN tasks ON ", 1)[1]
    assert "tasks.tenant_id = $" in join
    assert "tasks.deleted_at IS NULL" in join


async def test_a_transaction_without_a_tenant_still_clears_the_setting_first(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    async with driver_queries(app.state.database.engine) as sent:
        response = await client.get("/api/v1/users/me", headers=acme.headers(app, "olga"))
    assert response.status_code == 200, response.text
    for transaction in transactions(sent):
        assert transaction[0].startswith("BEGIN; SET LOCAL app.tenant_id = ")


async def test_entering_a_tenant_mid_transaction_sets_it_in_one_round_trip(
    database: Database, acme: TenantWorld
) -> None:
    async with driver_queries(database.engine) as sent, database.session_factory() as session:
        assert await session.scalar(text("SELECT current_setting('app.tenant_id', true)")) == ""
        await enter_tenant(session, acme.id)
        setting = text("SELECT current_setting('app.tenant_id', true)")
        assert await session.scalar(setting) == str(acme.id)
        await session.rollback()
    begin, read_before, setting, read_after, end = transactions(sent)[0]
    assert begin.startswith("BEGIN; SET LOCAL app.tenant_id = ''")
    assert read_before.startswith(PREPARED)
    assert read_after.startswith(PREPARED)
    assert setting.startswith(f"SET LOCAL app.tenant_id = '{acme.id}'")
    assert end == "ROLLBACK;"


@pytest.fixture
async def one_connection(settings: Settings, app: FastAPI) -> AsyncIterator[Database]:
    """The app's database with a pool of exactly one connection, so that it is reused."""
    pool_of_one = settings.model_copy(update={"database_pool_size": 1, "database_max_overflow": 0})
    database = Database.from_settings(pool_of_one)
    yield database
    await database.dispose()


async def test_a_session_level_setting_leaks_into_no_later_transaction(
    one_connection: Database, db: AsyncSession, acme: TenantWorld
) -> None:
    globex = await build_tenant(db, "globex", members={"gus": TenantRole.OWNER})
    await globex.add_project(db, "Secret")
    async with one_connection.session_factory() as session:
        # What an injected statement could leave behind on a pooled connection.
        poison = text("SELECT set_config('app.tenant_id', :tenant, false)")
        await session.execute(poison, {"tenant": str(globex.id)})
        await session.commit()

    async with one_connection.session_factory() as session:
        connection = await session.connection()
        setting = await connection.exec_driver_sql("SELECT current_setting('app.tenant_id', true)")
        assert setting.scalar() == ""
        projects = await connection.exec_driver_sql("SELECT count(*) FROM projects")
        assert projects.scalar() == 0

    async with one_connection.session_factory() as session:
        await enter_tenant(session, acme.id)
        connection = await session.connection()
        names = await connection.exec_driver_sql("SELECT name FROM projects")
        assert names.scalars().all() == ["acme Launch"]
