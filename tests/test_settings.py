"""Configuration: secrets kept under var/ in development, refused when missing in production."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend.core.config import Settings, finalise_secrets

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def test_development_generates_secrets_once_and_keeps_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    first = finalise_secrets(Settings(_env_file=None))  # type: ignore[call-arg]
    second = finalise_secrets(Settings(_env_file=None))  # type: ignore[call-arg]
    assert first.secret_key_value() == second.secret_key_value()
    assert first.jwt_private_keys_value() == second.jwt_private_keys_value()
    assert "PRIVATE KEY" in (tmp_path / "var" / "jwt_private_key.pem").read_text()
    assert (tmp_path / "var" / "secret_key").stat().st_mode & 0o077 == 0


def test_dotenv_is_read_when_present(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "PORT=9123\nALLOW_SIGNUP=false\nCORS_ORIGINS=https://a.example, https://b.example\n"
    )
    settings = Settings(_env_file=env_file)  # type: ignore[call-arg]
    assert settings.port == 9123
    assert settings.allow_signup is False
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.migrations_database_url == settings.database_url


def test_the_app_role_must_be_a_plain_identifier() -> None:
    with pytest.raises(ValueError, match="identifier"):
        Settings(_env_file=None, database_app_role="app; DROP TABLE users")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("present", "missing"),
    [({}, "SECRET_KEY"), ({"SECRET_KEY": "s" * 40}, "JWT_PRIVATE_KEYS")],
)
def test_production_refuses_to_start_without_a_secret(
    tmp_path: Path, present: dict[str, str], missing: str
) -> None:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECRET_KEY", "JWT_PRIVATE_KEYS", "ENVIRONMENT"}
    }
    environment.update(present, ENVIRONMENT="production", PYTHONPATH=str(PROJECT_ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "backend.cli", "db", "current"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"configuration error: {missing} must be set when ENVIRONMENT=production"
    ]


def test_public_base_url_follows_host_and_port_unless_set() -> None:
    derived = Settings(_env_file=None, port=8765)  # type: ignore[call-arg]
    assert derived.public_base_url == "http://127.0.0.1:8765"
    explicit = Settings(_env_file=None, public_base_url="https://api.example.com/")  # type: ignore[call-arg]
    assert explicit.public_base_url == "https://api.example.com"
