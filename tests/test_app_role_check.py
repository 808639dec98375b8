"""At start-up the service checks the role it connects as: in production it refuses to start, with
one clear line, when that role is a superuser, has BYPASSRLS or owns a table; elsewhere it warns.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from backend.core.app_role import AppRoleUnfit, check_app_role
from backend.core.config import Environment, Settings
from backend.core.database import create_engine
from backend.main import create_app
from tests.conftest import DatabaseUrls
from tests.test_cli import run_cli

pytestmark = pytest.mark.postgres_only

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _as(settings: Settings, url: str, environment: Environment) -> Settings:
    return settings.model_copy(update={"database_url": url, "environment": environment})


@pytest.mark.parametrize(
    ("who", "faults"),
    [
        ("owner", ["owns", "tables"]),
        ("superuser", ["is a superuser", "has BYPASSRLS"]),
    ],
)
async def test_production_refuses_an_app_role_that_escapes_row_level_security(
    settings: Settings, migrated: DatabaseUrls, who: str, faults: list[str]
) -> None:
    production = _as(settings, getattr(migrated, who), Environment.PRODUCTION)
    application = create_app(production)
    with pytest.raises(AppRoleUnfit) as refusal:
        async with application.router.lifespan_context(application):
            pytest.fail("the app started")
    message = str(refusal.value)
    assert "\n" not in message
    for fault in faults:
        assert fault in message


async def test_elsewhere_it_warns_and_starts(
    settings: Settings, migrated: DatabaseUrls, caplog: pytest.LogCaptureFixture
) -> None:
    development = _as(settings, migrated.owner, Environment.DEVELOPMENT)
    engine = create_engine(migrated.owner, development)
    with caplog.at_level(logging.WARNING, logger="backend.core.app_role"):
        await check_app_role(engine, development)
    await engine.dispose()
    [warning] = [r.getMessage() for r in caplog.records if r.name == "backend.core.app_role"]
    assert "connects as app_owner, which owns" in warning


async def test_the_real_app_role_passes(settings: Settings, migrated: DatabaseUrls) -> None:
    production = _as(settings, migrated.app, Environment.PRODUCTION)
    engine = create_engine(migrated.app, production)
    await check_app_role(engine, production)  # no refusal
    await engine.dispose()


def test_serve_refuses_with_one_line(settings: Settings, migrated: DatabaseUrls) -> None:
    production = {
        "ENVIRONMENT": "production",
        "DATABASE_URL": migrated.owner,
        "MIGRATIONS_DATABASE_URL": migrated.owner,
        "SECRET_KEY": settings.secret_key_value(),
        "JWT_PRIVATE_KEYS": settings.jwt_private_keys_value(),
        "PORT": "1",  # never reached
    }
    result = run_cli("serve", "--no-migrate", cwd=PROJECT_ROOT, environment=production)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("refusing to start: DATABASE_URL connects as app_owner, which owns")
