"""`scripts/bench --admin`: the admin panel's pages at scale, as a platform admin and as an admin
of the biggest tenant.

It starts a throwaway PostgreSQL (the test harness), migrates and bootstraps it, seeds N tenants
x M tasks and a crowd of U users, all members of the first tenant (`admin_world.py`; default
1,000 x 1,000 and 100,000: a million tasks), and starts the service (one worker, production
settings). It signs in to the panel as each admin, requests every page type of the main views
(list, search, details, edit, create, and the pickers' look-ups) once to warm up and then
`--repeat` times, and prints a table and one JSON line: for each page, the median milliseconds
a request took, the service's CPU milliseconds per request (its own time, which the machine's
other load does not inflate as much; the database's is not in it), and the page's kilobytes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx

from backend.core.config import generate_private_key_pem
from tests.bench.admin_world import (
    SUPERUSER_EMAIL,
    TENANT_ADMIN_EMAIL,
    AdminWorld,
    analyze,
    crowd_email,
    seed_admin_world,
)
from tests.bench.stack import (
    Processes,
    _asyncpg_dsn,
    _run_quietly,
    _service_env,
    _tenantdesk,
    _wait_until_up,
    cpu_seconds,
)
from tests.bench.world import PASSWORD
from tests.harness.postgres import PostgresServer, free_port

_CSRF_META = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')
PAGE_TIMEOUT_SECONDS = 120.0


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench --admin", description=__doc__)
    parser.add_argument("--admin", action="store_true", required=True)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=1000, help="tasks per tenant")
    parser.add_argument("--users", type=int, default=100_000, help="members of the first tenant")
    parser.add_argument("--repeat", type=int, default=5, help="timed requests per page")
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="keep the seeded database in DIR and reuse it on the next run with the same DIR "
        "(migrated to the head again; the size arguments of the first run stand)",
    )
    return parser.parse_args(argv)


class Panel:
    """A signed-in panel session. Production cookies are `Secure`, which an HTTP client keeps
    to itself over plain HTTP: the cookies are carried by hand."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=PAGE_TIMEOUT_SECONDS)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = self.http.request(method, path, headers=headers, **kwargs)
        for header in response.headers.get_list("set-cookie"):
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return response

    def sign_in(self, email: str) -> None:
        page = self.request("GET", "/admin/login")
        match = _CSRF_META.search(page.text)
        if match is None:
            raise RuntimeError(f"no CSRF token on the sign-in page ({page.status_code})")
        data = {"username": email, "password": PASSWORD, "csrf_token": match.group(1)}
        response = self.request(
            "POST", "/admin/login", data=data, headers={"Origin": self.base_url}
        )
        if response.status_code != 302:
            raise RuntimeError(f"{email} could not sign in: {response.status_code}")


@dataclass(frozen=True)
class Page:
    view: str
    kind: str
    path: str
    params: dict[str, str]


@dataclass(frozen=True)
class Timing:
    signed_in_as: str
    view: str
    kind: str
    status: int
    ms: float
    cpu_ms: float
    kb: float


def _pages(world: AdminWorld, platform: bool) -> list[Page]:
    big = world.big
    task = f"{big.tenant_id};{big.task_id}"
    membership = f"{big.tenant_id};{world.crowd_user_id}"
    project = f"{big.tenant_id};{big.project_id}"
    someone = crowd_email(world.users // 2).split("@")[0]

    def page(view: str, kind: str, path: str = "", **params: str) -> Page:
        return Page(view, kind, f"/admin/{view}/{path or kind}", params)

    pages = [
        page("task", "list"),
        page("task", "search", "list", search="Task 777"),
        page("task", "details", f"details/{task}"),
        page("task", "edit", f"edit/{task}"),
        page("task", "create"),
        page("task", "lookup", "ajax/lookup", name="assignee_id", term=someone),
        page("task", "lookup", "ajax/lookup", name="project_id", term="Launch"),
        page("membership", "list"),
        page("membership", "search", "list", search=someone),
        page("membership", "details", f"details/{membership}"),
        page("membership", "edit", f"edit/{membership}"),
        page("project", "list"),
        page("project", "search", "list", search="Launch"),
        page("project", "details", f"details/{project}"),
        page("project", "edit", f"edit/{project}"),
        page("project", "create"),
    ]
    if platform:
        pages += [
            page("task", "lookup", "ajax/lookup", name="tenant_id", term="tenant-42"),
            page("membership", "create"),
            page("membership", "lookup", "ajax/lookup", name="user", term=someone),
            page("user", "list"),
            page("user", "search", "list", search=someone),
            page("user", "details", f"details/{world.crowd_user_id}"),
            page("user", "edit", f"edit/{world.crowd_user_id}"),
            page("tenant", "list"),
            page("tenant", "search", "list", search="tenant-42"),
            page("tenant", "details", f"details/{big.tenant_id}"),
            page("tenant", "edit", f"edit/{big.tenant_id}"),
            page("tenant", "create"),
        ]
    return pages


def _time(panel: Panel, page: Page, repeat: int, signed_in_as: str, pid: int) -> Timing:
    panel.request("GET", page.path, params=page.params)  # warm-up: caches, plans, pool
    durations, response = [], None
    cpu_before = cpu_seconds(pid)
    for _ in range(repeat):
        started = time.perf_counter()
        response = panel.request("GET", page.path, params=page.params)
        durations.append((time.perf_counter() - started) * 1000)
    assert response is not None
    kind = page.kind if page.kind != "lookup" else f"lookup {page.params['name']}"
    return Timing(
        signed_in_as,
        page.view,
        kind,
        response.status_code,
        round(statistics.median(durations), 1),
        round((cpu_seconds(pid) - cpu_before) * 1000 / repeat, 1),
        round(len(response.content) / 1024, 1),
    )


def measure(base_url: str, pid: int, world: AdminWorld, repeat: int) -> list[Timing]:
    timings = []
    for email, platform, name in (
        (SUPERUSER_EMAIL, True, "platform"),
        (TENANT_ADMIN_EMAIL, False, "tenant"),
    ):
        panel = Panel(base_url)
        panel.sign_in(email)
        timings += [_time(panel, page, repeat, name, pid) for page in _pages(world, platform)]
    return timings


@contextmanager
def admin_stack(
    arguments: argparse.Namespace, folder: Path
) -> Iterator[tuple[str, int, AdminWorld]]:
    kept: Path | None = arguments.keep
    server = PostgresServer.start(kept.resolve() / "postgres" if kept else None)
    world_file = kept / "world.json" if kept else None
    processes = Processes([])
    try:
        port = free_port()
        env = _service_env(server, port, generate_private_key_pem())
        _run_quietly(_tenantdesk("db", "upgrade"), env, folder)
        if world_file is not None and world_file.exists():
            world = AdminWorld.from_json(world_file.read_text())
            asyncio.run(analyze(_asyncpg_dsn(server.superuser_url)))
            print(f"reused the database kept in {kept}", file=sys.stderr)
        else:
            world = _seeded(server, arguments, folder, env)
            if world_file is not None:
                world_file.write_text(world.to_json())
        log = folder / "app.log"
        service = processes.start(_tenantdesk("serve", "--no-migrate", "--workers", "1"), env, log)
        base_url = f"http://127.0.0.1:{port}"
        _wait_until_up(base_url + "/health/ready", service, log)
        yield base_url, service.pid, world
    finally:
        processes.stop()
        server.stop(keep=kept is not None)


def _seeded(
    server: PostgresServer, arguments: argparse.Namespace, folder: Path, env: dict[str, str]
) -> AdminWorld:
    _run_quietly(_tenantdesk("bootstrap"), {**env, "DATABASE_URL": server.owner_url}, folder)
    started = time.monotonic()
    world = asyncio.run(
        seed_admin_world(
            _asyncpg_dsn(server.superuser_url), arguments.tenants, arguments.tasks, arguments.users
        )
    )
    print(f"seeded in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return world


HEADER = f"{'signed in as':<14}{'view':<12}{'page':<20}{'status':>7}{'ms':>9}{'cpu ms':>9}{'KB':>9}"


def table(timings: list[Timing]) -> str:
    lines = [HEADER]
    lines += [
        f"{t.signed_in_as:<14}{t.view:<12}{t.kind:<20}{t.status:>7}{t.ms:>9.1f}"
        f"{t.cpu_ms:>9.1f}{t.kb:>9.1f}"
        for t in timings
    ]
    slowest = max(timings, key=lambda t: t.ms)
    heaviest = max(timings, key=lambda t: t.kb)
    lines.append(f"slowest: {slowest.view} {slowest.kind} ({slowest.signed_in_as}) {slowest.ms} ms")
    lines.append(
        f"heaviest: {heaviest.view} {heaviest.kind} ({heaviest.signed_in_as}) {heaviest.kb} KB"
    )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    arguments = _arguments(argv)
    with (
        tempfile.TemporaryDirectory(prefix="tenantdesk-admin-bench-") as folder,
        admin_stack(arguments, Path(folder)) as (base_url, pid, world),
    ):
        timings = measure(base_url, pid, world, arguments.repeat)
    result = {
        "command": shlex.join(["scripts/bench", *argv]),
        "tenants": arguments.tenants,
        "tasks_per_tenant": arguments.tasks,
        "users": arguments.users,
        "repeat": arguments.repeat,
        "slowest_ms": max(t.ms for t in timings),
        "heaviest_kb": max(t.kb for t in timings),
        "pages": [asdict(t) for t in timings],
    }
    print(table(timings))
    print(json.dumps(result))
    return 1 if any(t.status != 200 for t in timings) else 0
