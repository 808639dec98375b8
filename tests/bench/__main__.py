"""`scripts/bench`: the service against its twins, alternating, and the ratios between them.

It starts a throwaway PostgreSQL (the test harness), migrates and bootstraps it with the
`tenantdesk` command, seeds N tenants x M tasks, starts the service (one worker, production
settings, access log on) beside the bare and floor twins (`twins.py`), checks that every side
answers each scenario alike, and drives them in turn with `wrk`, for each round. It prints a
table, then one JSON line. Each side's figures are its best round: the rounds alternate the
sides, so that load from elsewhere on the machine does not favour one of them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx
from pydantic import SecretStr

from backend.core.config import Environment, Settings, generate_private_key_pem
from backend.identity.keys import KeyRing
from tests.bench.load import LoadResult, Target, run_wrk
from tests.bench.world import PASSWORD, Caller, seed, with_tokens
from tests.harness.postgres import PostgresServer, free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID = "web"
STARTUP_SECONDS = 60.0
SIDES = ("app", "floor", "bare")


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    method: str
    target: Callable[[Caller], Target]
    status: int
    with_twins: bool = True
    content_type: str = "application/json"


SCENARIOS = (
    Scenario(
        "list_tasks",
        "list 50 tasks",
        "GET",
        lambda c: Target(f"{c.project_path}/tasks", c.token),
        200,
    ),
    Scenario(
        "get_task",
        "get one task",
        "GET",
        lambda c: Target(f"{c.project_path}/tasks/{c.task_id}", c.token),
        200,
    ),
    Scenario(
        "create_task",
        "create a task",
        "POST",
        lambda c: Target(f"{c.project_path}/tasks", c.token, '{"title": "A benchmark task"}'),
        201,
    ),
    Scenario("me", "GET /users/me", "GET", lambda c: Target("/api/v1/users/me", c.token), 200),
    Scenario(
        "login",
        "password grant (logins/s)",
        "POST",
        lambda c: Target(
            "/oauth/token",
            body=urlencode(
                {
                    "grant_type": "password",
                    "client_id": CLIENT_ID,
                    "username": c.email,
                    "password": PASSWORD,
                }
            ),
        ),
        200,
        with_twins=False,
        content_type="application/x-www-form-urlencoded",
    ),
)


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--tasks", type=int, default=1000, help="tasks per tenant")
    parser.add_argument("--large", action="store_true", help="1,000 tenants x 1,000 tasks")
    parser.add_argument("--seconds", type=float, default=10, help="per side and round")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--scenarios", default=",".join(s.name for s in SCENARIOS), help="comma-separated"
    )
    parser.add_argument(
        "--profile", type=Path, help="record the service with py-spy (raw format) into this folder"
    )
    arguments = parser.parse_args(argv)
    if arguments.large:
        arguments.tenants, arguments.tasks = 1000, 1000
    return arguments


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
    service: subprocess.Popen[bytes]
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
    }


def _tenantdesk(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "backend.cli", *arguments]


def _run_quietly(command: list[str], env: dict[str, str], folder: Path) -> None:
    completed = subprocess.run(command, env=env, cwd=folder, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} failed:\n{completed.stderr[-3000:]}")


@contextmanager
def running_stack(arguments: argparse.Namespace, folder: Path) -> Iterator[Stack]:
    server = PostgresServer.start()
    processes = Processes([])
    try:
        ports = {side: free_port() for side in SIDES}
        private_key = generate_private_key_pem()
        env = _service_env(server, ports["app"], private_key)
        _run_quietly(_tenantdesk("db", "upgrade"), env, folder)
        _run_quietly(_tenantdesk("bootstrap"), {**env, "DATABASE_URL": server.owner_url}, folder)
        started = time.monotonic()
        callers = asyncio.run(
            seed(_asyncpg_dsn(server.superuser_url), arguments.tenants, arguments.tasks)
        )
        print(
            f"seeded {arguments.tenants} tenants x {arguments.tasks} tasks "
            f"in {time.monotonic() - started:.0f} s",
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
        yield Stack(urls, service, with_tokens(callers, key_ring, CLIENT_ID), folder)
    finally:
        processes.stop()
        server.stop()


def _answers(stack: Stack, side: str, scenario: Scenario) -> dict[str, object]:
    target = scenario.target(stack.callers[0])
    headers = {"content-type": scenario.content_type}
    if target.token:
        headers["authorization"] = f"Bearer {target.token}"
    response = httpx.request(
        scenario.method, stack.urls[side] + target.path, content=target.body, headers=headers
    )
    if response.status_code != scenario.status:
        raise RuntimeError(
            f"{side} answered {scenario.name} with {response.status_code}:\n{stack.log_tail(side)}"
        )
    return response.json()


def _shape(body: object) -> object:
    """The keys of an answer (and of its first list item), to compare the sides' answers."""
    if isinstance(body, dict):
        return {key: _shape(value) for key, value in body.items()}
    if isinstance(body, list):
        return [len(body), _shape(body[0])] if body else [0]
    return None


def _check_sides_agree(stack: Stack, scenarios: list[Scenario]) -> None:
    for scenario in scenarios:
        sides = SIDES if scenario.with_twins else ("app",)
        shapes = {side: _shape(_answers(stack, side, scenario)) for side in sides}
        if len({json.dumps(shape, sort_keys=True) for shape in shapes.values()}) != 1:
            raise RuntimeError(f"the sides answer {scenario.name} differently: {shapes}")


def _profiled(
    folder: Path | None, name: str, pid: int, seconds: float
) -> subprocess.Popen[bytes] | None:
    if folder is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    command = ["py-spy", "record", "--format", "raw", "-p", str(pid), "-d", str(round(seconds))]
    command += ["-o", str(folder / f"{name}.txt")]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure(
    stack: Stack, scenarios: list[Scenario], arguments: argparse.Namespace
) -> dict[str, dict[str, LoadResult]]:
    best: dict[str, dict[str, LoadResult]] = {s.name: {} for s in scenarios}
    for round_index in range(arguments.rounds):
        for scenario in scenarios:
            sides = SIDES if scenario.with_twins else ("app",)
            if round_index % 2:
                sides = tuple(reversed(sides))
            targets = [scenario.target(caller) for caller in stack.callers]
            for side in sides:
                profiler = None
                if side == "app" and round_index == arguments.rounds - 1:
                    profiler = _profiled(
                        arguments.profile, scenario.name, stack.service.pid, arguments.seconds
                    )
                result = run_wrk(
                    stack.urls[side],
                    scenario.method,
                    targets,
                    seconds=arguments.seconds,
                    connections=arguments.connections,
                    content_type=scenario.content_type,
                )
                if profiler is not None:
                    profiler.wait()
                kept = best[scenario.name].get(side)
                if kept is None or result.requests_per_second > kept.requests_per_second:
                    best[scenario.name][side] = result
    return best


def _ratio(numerator: LoadResult, denominator: LoadResult | None) -> float | None:
    if denominator is None or not denominator.requests_per_second:
        return None
    return round(numerator.requests_per_second / denominator.requests_per_second, 3)


def report(
    results: dict[str, dict[str, LoadResult]],
    scenarios: list[Scenario],
    arguments: argparse.Namespace,
    argv: list[str],
    rss_mb: float | None,
) -> dict[str, object]:
    rows = []
    for scenario in scenarios:
        sides = results[scenario.name]
        app = sides["app"]
        if not scenario.with_twins:
            rows.append(
                {
                    "name": scenario.name,
                    "title": scenario.title,
                    "app": {"logins_per_second": round(app.requests_per_second, 1)}
                    | {"errors": app.errors},
                }
            )
            continue
        rows.append(
            {
                "name": scenario.name,
                "title": scenario.title,
                **{side: result.as_json() for side, result in sides.items()},
                "app_to_bare": _ratio(app, sides.get("bare")),
                "app_to_floor": _ratio(app, sides.get("floor")),
                "floor_to_bare": _ratio(sides["floor"], sides.get("bare")),
            }
        )
    return {
        "command": shlex.join(["scripts/bench", *argv]),
        "tenants": arguments.tenants,
        "tasks_per_tenant": arguments.tasks,
        "seconds": arguments.seconds,
        "connections": arguments.connections,
        "rounds": arguments.rounds,
        "service_rss_mb": rss_mb,
        "scenarios": rows,
    }


def _cell(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(summary: dict[str, object]) -> str:
    lines = [
        f"{'scenario':<28}{'side':<7}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'x bare':>8}{'x floor':>9}"
    ]
    scenarios = summary["scenarios"]
    assert isinstance(scenarios, list)
    for row in scenarios:
        title = row["title"]
        for side in SIDES:
            figures = row.get(side)
            if figures is None:
                continue
            rate = figures.get("requests_per_second", figures.get("logins_per_second"))
            is_app = side == "app"
            lines.append(
                f"{title:<28}{side:<7}{_cell(rate, 1):>9}{_cell(figures.get('p50_ms'), 1):>9}"
                f"{_cell(figures.get('p99_ms'), 1):>9}{figures['errors']:>8}"
                f"{_cell(row.get('app_to_bare') if is_app else None, 3):>8}"
                f"{_cell(row.get('app_to_floor') if is_app else None, 3):>9}"
            )
            title = ""
    lines.append(f"service RSS after the run: {_cell(summary['service_rss_mb'], 0)} MB")
    return "\n".join(lines)


def _rss_mb(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def main(argv: list[str]) -> int:
    arguments = _arguments(argv)
    wanted = set(arguments.scenarios.split(","))
    scenarios = [s for s in SCENARIOS if s.name in wanted]
    with (
        tempfile.TemporaryDirectory(prefix="tenantdesk-bench-") as folder,
        running_stack(arguments, Path(folder)) as stack,
    ):
        _check_sides_agree(stack, scenarios)
        results = measure(stack, scenarios, arguments)
        rss = _rss_mb(stack.service.pid)
    summary = report(results, scenarios, arguments, argv, rss)
    print(table(summary))
    print(json.dumps(summary))
    failed = any(r.errors for sides in results.values() for r in sides.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
