"""The `tenantdesk` command line: every command documents itself, and it can migrate a database
and create a superuser from nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backend.cli import app as cli

PROJECT_ROOT = Path(__file__).resolve().parent.parent
COMMANDS = [[], ["db"], ["db", "upgrade"], ["db", "downgrade"], ["db", "current"],
            ["create-superuser"], ["set-superuser"], ["bootstrap"], ["serve"],
            ["generate-secrets"], ["purge"]]  # fmt: skip


def run_cli(
    *args: str,
    cwd: Path,
    input_text: str | None = None,
    environment: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """`tenantdesk ARGS` in development on SQLite in `cwd`, unless `environment` says otherwise."""
    variables = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    variables.update(PYTHONPATH=str(PROJECT_ROOT), ENVIRONMENT="development")
    variables.update(environment or {})
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", *args],
        cwd=cwd,
        env=variables,
        input=input_text,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_migrate_then_create_a_superuser_asking_for_the_password(tmp_path: Path) -> None:
    assert run_cli("db", "upgrade", cwd=tmp_path).returncode == 0
    assert (tmp_path / "var" / "app.db").exists()
    current = run_cli("db", "current", cwd=tmp_path)
    assert "(head)" in current.stdout

    created = run_cli(
        "create-superuser",
        "--email",
        "Root@Example.com",
        cwd=tmp_path,
        input_text="a long admin password\na long admin password\n",
    )
    assert created.returncode == 0, created.stderr
    assert "Superuser created." in created.stdout
    again = run_cli("create-superuser", "--email", "root@example.com", "--password", "x" * 12,
                    cwd=tmp_path)  # fmt: skip
    assert "exists already" in again.stdout


def test_purge_runs_on_a_migrated_database(tmp_path: Path) -> None:
    assert run_cli("db", "upgrade", cwd=tmp_path).returncode == 0

    purged = run_cli("purge", cwd=tmp_path)

    assert purged.returncode == 0, purged.stderr
    nothing = "Purged 0 tenants, 0 projects, 0 tasks, 0 idempotency keys and 0 webhook events."
    assert nothing in purged.stdout


def test_generated_secrets_are_accepted_by_production_settings(tmp_path: Path) -> None:
    from backend.core.config import Settings, finalise_secrets
    from backend.identity.keys import KeyRing

    printed = run_cli("generate-secrets", cwd=tmp_path).stdout
    env_file = tmp_path / ".env"
    env_file.write_text(printed + "ENVIRONMENT=production\n")
    settings = finalise_secrets(Settings(_env_file=env_file))  # type: ignore[call-arg]
    key_ring = KeyRing(settings)
    token = key_ring.issue_access_token(subject="someone", client_id="web")
    assert key_ring.verify_access_token(token).subject == "someone"
