"""`docker-compose.yml`, checked without a Docker engine: every variable it gives the app is a
real setting, every app command parses as a `tenantdesk` command, and what it mounts exists.

General on purpose: it reads whatever services and variables the file has, so that it keeps
checking the file as the file changes.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from backend.cli import app as cli_app
from backend.core.config import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}
_VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")
SETTINGS = {name.upper() for name in Settings.model_fields}


def _app_services() -> dict[str, dict[str, Any]]:
    """The services built from this repository: they run the app and take its settings."""
    return {name: spec for name, spec in COMPOSE["services"].items() if "build" in spec}


def _interpolated(text: str) -> str:
    """`text` as compose would run it with an empty `.env`: defaults, or a stand-in value."""

    def value(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        return rest if kind in (":-", "-") else f"<{name}>"

    return _VARIABLE.sub(value, text)


def _environment(spec: dict[str, Any]) -> dict[str, str]:
    environment = spec.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {name: str(value) for name, value in environment.items()}


def _commands(spec: dict[str, Any]) -> list[list[str]]:
    """Each command a service runs: `sh -c "a && b"` is two."""
    command = spec["command"]
    words = shlex.split(command) if isinstance(command, str) else [str(w) for w in command]
    words = [_interpolated(word) for word in words]
    if words[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in re.split(r"&&|;", words[2])]
    return [words]


def test_the_file_has_app_services() -> None:
    assert {"migrate", "api"} <= set(_app_services())


@pytest.mark.parametrize("service", sorted(_app_services()))
def test_every_variable_given_to_the_app_is_a_real_setting(service: str) -> None:
    unknown = set(_environment(_app_services()[service])) - SETTINGS
    assert not unknown, f"{service} sets variables no setting reads: {sorted(unknown)}"


@pytest.mark.parametrize("service", sorted(_app_services()))
def test_every_app_setting_in_the_file_is_valid(service: str) -> None:
    environment = {
        name.lower(): _interpolated(value)
        for name, value in _environment(_app_services()[service]).items()
    }
    environment = {name: value for name, value in environment.items() if "<" not in value}
    Settings(_env_file=None, **environment)  # type: ignore[call-arg]


@pytest.mark.parametrize("service", sorted(_app_services()))
def test_every_app_command_parses_as_a_tenantdesk_command(service: str) -> None:
    group = typer.main.get_command(cli_app)
    for words in _commands(_app_services()[service]):
        assert words[0] == "tenantdesk", words
        command, rest = group, words[1:]
        while rest and hasattr(command, "get_command"):
            context = command.make_context(words[0], [], resilient_parsing=True)
            found = command.get_command(context, rest[0])
            assert found is not None, f"{service}: no command {rest[0]!r} in {words}"
            command, rest = found, rest[1:]
        command.make_context(command.name or words[0], rest)  # raises on an unknown option


def test_several_api_workers_share_the_rate_limits_through_redis() -> None:
    api = _app_services()["api"]
    words = _commands(api)[0]
    workers = int(words[words.index("--workers") + 1]) if "--workers" in words else 1
    assert workers > 1
    assert _environment(api).get("REDIS_URL", "").startswith("redis://")
    assert "redis" in api.get("depends_on", {})


def test_the_api_connects_as_the_app_role_and_migrations_as_the_owner() -> None:
    services = _app_services()
    assert "app_user:" in _environment(services["api"])["DATABASE_URL"]
    assert "app_owner:" in _environment(services["migrate"])["MIGRATIONS_DATABASE_URL"]
    assert "--no-migrate" in _commands(services["api"])[0]


def test_every_mounted_file_exists() -> None:
    for name, spec in COMPOSE["services"].items():
        for volume in spec.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (PROJECT_ROOT / source).exists(), f"{name} mounts a missing {source}"
