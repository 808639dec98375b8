"""The benchmark's stack: a throwaway PostgreSQL (the test harness), migrated and bootstrapped
with the `tenantdesk` command and seeded; the service (one worker, production settings, access
log on); and the two twins, each in a process of its own."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from pydantic import SecretStr

from backend.core.config import Environment, Settings, generate_private_key_pem
from backend.identity.keys import KeyRing
from tests.bench.twins import POOL_SIZE
from tests.bench.world import Caller, seed, with_tokens
from tests.harness.postgres import PostgresServer, free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID = "web"
STARTUP_SECONDS = 60.0
SIDES = ("app", "floor", "bare")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def rss_mb(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@dataclass
class Processes:
    """The service and its twins, stopped together."""

    running: list[subprocess.Popen[bytes]]

    def start(self, command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as output:
            process = subprocess.Popen(
                command, env=env, cwd=log.parent, stdout=output, stderr=subprocess.STDOUT
            )
        self.running.append(process)
        return process

    def stop(self) -> None:
        for process in self.running:
            process.terminate()
        for process in self.running:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited at start-up:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not start:\n{log.read_text()[-3000:]}")


@dataclass(frozen=True)
class Stack:
    urls: dict[str, str]
    pids: dict[str, int]
    callers: list[Caller]
    folder: Path

    def log_tail(self, side: str) -> str:
        return (self.folder / f"{side}.log").read_text()[-3000:]


def _base_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    return env


def _service_env(server: PostgresServer, port: int, private_key: str) -> dict[str, str]:
    return {
        **_base_env(),
        "ENVIRONMENT": "production",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "DATABASE_URL": server.app_url,
        "MIGRATIONS_DATABASE_URL": server.owner_url,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "JWT_PRIVATE_KEYS": private_key,
        # The grant under test would otherwise be throttled after ten sign-ins a minute.
        "LOGIN_RATE_LIMIT": "1000000/minute",
        "LOG_LEVEL": "INFO",
        # The twins' pool size, no fewer than wrk's connections: none opened and closed under load.
        "DATABASE_POOL_SIZE": str(POOL_SIZE),
        "DATABASE_MAX_OVERFLOW": "0",
    }


def _tenantdesk(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "backend.cli", *arguments]


def _run_quietly(command: list[str], env: dict[str, str], folder: Path) -> None:
    completed = subprocess.run(command, env=env, cwd=folder, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} failed:\n{completed.stderr[-3000:]}")


@contextmanager
def running_stack(tenants: int, tasks: int, folder: Path) -> Iterator[Stack]:
    server = PostgresServer.start()
    processes = Processes([])
    try:
        ports = {side: free_port() for side in SIDES}
        private_key = generate_private_key_pem()
        env = _service_env(server, ports["app"], private_key)
        _run_quietly(_tenantdesk("db", "upgrade"), env, folder)
        _run_quietly(_tenantdesk("bootstrap"), {**env, "DATABASE_URL": server.owner_url}, folder)
        started = time.monotonic()
        callers = asyncio.run(seed(_asyncpg_dsn(server.superuser_url), tenants, tasks))
        print(
            f"seeded {tenants} tenants x {tasks} tasks in {time.monotonic() - started:.0f} s",
            file=sys.stderr,
        )
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            environment=Environment.PRODUCTION,
            secret_key=SecretStr("unused"),
            jwt_private_keys=SecretStr(private_key),
            public_base_url=env["PUBLIC_BASE_URL"],
            access_token_ttl_seconds=24 * 3600,
        )
        key_ring = KeyRing(settings)
        service = processes.start(
            _tenantdesk("serve", "--no-migrate", "--workers", "1"), env, folder / "app.log"
        )
        twin_env = {
            **_base_env(),
            "BENCH_JWKS": json.dumps(key_ring.jwks()),
            "BENCH_ISSUER": settings.issuer,
        }
        dsn = {"bare": server.superuser_url, "floor": server.app_url}
        twins = {
            side: processes.start(
                [sys.executable, "-m", "tests.bench.twins", side],
                {**twin_env, "BENCH_DSN": _asyncpg_dsn(dsn[side]), "BENCH_PORT": str(ports[side])},
                folder / f"{side}.log",
            )
            for side in ("bare", "floor")
        }
        urls = {side: f"http://127.0.0.1:{port}" for side, port in ports.items()}
        _wait_until_up(urls["app"] + "/health/ready", service, folder / "app.log")
        for side, process in twins.items():
            _wait_until_up(urls[side] + "/api/v1/users/me", process, folder / f"{side}.log")
        pids = {"app": service.pid} | {side: process.pid for side, process in twins.items()}
        yield Stack(urls, pids, with_tokens(callers, key_ring, CLIENT_ID), folder)
    finally:
        processes.stop()
        server.stop()
