"""Migrations are the only way the schema is made: they go up, down and up again, a second
upgrade changes nothing and keeps the data, and autogenerate finds nothing they miss."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.core.config import Settings
from backend.core.database import create_engine
from backend.models import metadata
from tests.conftest import DatabaseUrls, run_alembic

TENANT_ID = uuid.uuid4()


@pytest.fixture
async def scratch_owner_url(
    migrated: DatabaseUrls, superuser_engine: AsyncEngine, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A fresh, empty database of the suite's kind, owned by the schema owner."""
    if migrated.kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('migrations') / 'scratch.db'}"
        return
    name = f"scratch_{uuid.uuid4().hex[:12]}"
    owner = make_url(migrated.owner)
    autocommit = superuser_engine.execution_options(isolation_level="AUTOCOMMIT")
    async with autocommit.connect() as connection:
        await connection.execute(text(f"CREATE DATABASE {name} OWNER {owner.username}"))
    yield owner.set(database=name).render_as_string(hide_password=False)
    async with autocommit.connect() as connection:
        await connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))


async def _tables(url: str) -> set[str]:
    engine = create_engine(url, Settings(_env_file=None))  # type: ignore[call-arg]
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def _execute(url: str, *statements: str) -> list[object]:
    engine = create_engine(url, Settings(_env_file=None))  # type: ignore[call-arg]
    try:
        async with engine.begin() as connection:
            results = [await connection.execute(text(s)) for s in statements]
            return [result.scalar() if result.returns_rows else None for result in results]
    finally:
        await engine.dispose()


async def test_upgrade_downgrade_upgrade_keeps_data_and_schema(scratch_owner_url: str) -> None:
    await run_alembic(scratch_owner_url, "upgrade", "head")
    assert {"users", "tenants", "tasks", "alembic_version"} <= await _tables(scratch_owner_url)

    await _execute(
        scratch_owner_url,
        "INSERT INTO tenants (id, slug, name, status, created_at) "
        f"VALUES ('{TENANT_ID.hex}', 'kept', 'Kept', 'active', CURRENT_TIMESTAMP)",
    )
    await run_alembic(scratch_owner_url, "upgrade", "head")
    assert await _execute(scratch_owner_url, "SELECT count(*) FROM tenants") == [1]

    await run_alembic(scratch_owner_url, "downgrade", "base")
    assert await _tables(scratch_owner_url) <= {"alembic_version"}

    await run_alembic(scratch_owner_url, "upgrade", "head")
    assert set(metadata.tables) <= await _tables(scratch_owner_url)


async def test_autogenerate_finds_no_difference_from_the_models(scratch_owner_url: str) -> None:
    await run_alembic(scratch_owner_url, "upgrade", "head")
    engine = create_engine(scratch_owner_url, Settings(_env_file=None))  # type: ignore[call-arg]
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), metadata
                )
            )
    finally:
        await engine.dispose()
    assert differences == []


def test_nothing_outside_tests_creates_the_schema_by_hand() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    offenders = [
        str(path.relative_to(root))
        for folder in ("backend", "tenants", "admin", "alembic")
        for path in (root / folder).rglob("*.py")
        if "create_all(" in path.read_text()
    ]
    assert offenders == []
