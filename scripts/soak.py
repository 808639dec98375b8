"""Soak: the service on a throwaway PostgreSQL under 64 connections for 60 s, mixing reads,
writes, sign-ins and refreshes. Passes with 0 5xx, 0 connection errors, and the worker's RSS
growing less than 10% between the 20th and the last second. Run through `scripts/soak`."""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from backend.core.config import generate_private_key_pem  # noqa: E402
from tests.harness.postgres import PostgresServer  # noqa: E402
from tests.harness.service import ServiceProcess  # noqa: E402

PASSWORD = "a soak test passphrase"  # noqa: S105 (a throwaway account of the soak)
MAX_RSS_GROWTH = 0.10


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    connection_errors: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)

    def record(self, kind: str, answer: httpx.Response) -> None:
        self.statuses[answer.status_code] += 1
        self.by_kind[kind] += 1
        if answer.status_code >= 500:
            self.server_errors.append(f"{kind} {answer.status_code} {answer.text[:200]}")


@dataclass
class Account:
    email: str
    access: str = ""
    refresh: str = ""
    projects: str = ""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def token(http: httpx.AsyncClient, form: dict[str, str]) -> httpx.Response:
    return await http.post("/oauth/token", data={"client_id": "web", **form})


async def prepare(http: httpx.AsyncClient, number: int) -> Account:
    account = Account(f"soak-{number}-{uuid.uuid4().hex[:6]}@example.com")
    body = {"email": account.email, "password": PASSWORD, "full_name": f"Soak {number}"}
    created = await http.post("/api/v1/users", json=body)
    if created.status_code != 201:
        raise RuntimeError(f"sign-up failed: {created.status_code} {created.text}")
    grant = {"grant_type": "password", "username": account.email, "password": PASSWORD}
    tokens = (await token(http, grant)).json()
    account.access, account.refresh = tokens["access_token"], tokens["refresh_token"]
    slug = f"soak-{number}-{uuid.uuid4().hex[:6]}"
    tenant = await http.post(
        "/api/v1/tenants", json={"name": slug, "slug": slug}, headers=bearer(account)
    )
    account.projects = f"/api/v1/tenants/{tenant.json()['id']}/projects"
    return account


def bearer(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.access}"}


async def one_request(http: httpx.AsyncClient, account: Account, tally: Tally) -> None:
    roll = random.random()  # noqa: S311 (a traffic mix, not a secret)
    if roll < 0.60:
        kind, answer = "read", await http.get(account.projects, headers=bearer(account))
    elif roll < 0.85:
        name = f"p {uuid.uuid4().hex[:10]}"
        kind = "write"
        answer = await http.post(account.projects, json={"name": name}, headers=bearer(account))
    elif roll < 0.93:
        grant = {"grant_type": "password", "username": account.email, "password": PASSWORD}
        kind, answer = "sign-in", await token(http, grant)
    else:
        kind = "refresh"
        grant = {"grant_type": "refresh_token", "refresh_token": account.refresh}
        answer = await token(http, grant)
        if answer.status_code == 200:
            account.access = answer.json()["access_token"]
            account.refresh = answer.json()["refresh_token"]
    tally.record(kind, answer)


async def connection_loop(base_url: str, account: Account, tally: Tally, deadline: float) -> None:
    # One connection each, kept alive, with an account of its own: a refresh rotates the token,
    # and a second use of a rotated refresh token would end the session.
    async with httpx.AsyncClient(
        base_url=base_url, timeout=60.0, limits=httpx.Limits(max_connections=1)
    ) as http:
        while time.monotonic() < deadline:
            try:
                await one_request(http, account, tally)
            except httpx.TransportError as exc:
                tally.connection_errors.append(repr(exc))


async def soak(service: ServiceProcess, connections: int, seconds: float) -> int:
    tally = Tally()
    async with httpx.AsyncClient(base_url=service.url, timeout=60.0) as http:
        accounts = [await prepare(http, number) for number in range(connections)]
    started = time.monotonic()
    deadline = started + seconds
    loops = [
        asyncio.create_task(connection_loop(service.url, account, tally, deadline))
        for account in accounts
    ]
    await asyncio.sleep(min(20.0, seconds / 3))
    rss_at_20 = rss_kib(service.process.pid)
    await asyncio.gather(*loops)
    rss_at_end = rss_kib(service.process.pid)
    elapsed = time.monotonic() - started
    growth = (rss_at_end - rss_at_20) / rss_at_20
    total = sum(tally.statuses.values())
    print(f"connections {connections}, {elapsed:.0f} s, {total} requests ({total / elapsed:.0f}/s)")
    print(f"by kind: {dict(tally.by_kind)}; by status: {dict(sorted(tally.statuses.items()))}")
    print(f"5xx: {len(tally.server_errors)}; connection errors: {len(tally.connection_errors)}")
    print(f"worker RSS: {rss_at_20} KiB at 20 s, {rss_at_end} KiB at the end: {growth:+.1%}")
    for problem in (tally.server_errors + tally.connection_errors)[:5]:
        print("  ", problem)
    healthy = not tally.server_errors and not tally.connection_errors
    return 0 if healthy and growth < MAX_RSS_GROWTH else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60.0)
    arguments = parser.parse_args()
    postgres = PostgresServer.start()
    workdir = Path(tempfile.mkdtemp(prefix="tenantdesk-soak-"))
    service = None
    try:
        environment = {
            "DATABASE_URL": postgres.app_url,
            "MIGRATIONS_DATABASE_URL": postgres.owner_url,
            "SECRET_KEY": "soak-secret-key-" + "x" * 32,
            "JWT_PRIVATE_KEYS": generate_private_key_pem(),
            "LOGIN_RATE_LIMIT": "1000000/minute",
            "DATABASE_POOL_SIZE": "20",
            "DATABASE_MAX_OVERFLOW": "10",
            "LOG_LEVEL": "WARNING",
        }
        service = ServiceProcess.start(workdir, environment)
        return asyncio.run(soak(service, arguments.connections, arguments.seconds))
    finally:
        if service is not None:
            service.kill()
        postgres.stop()


if __name__ == "__main__":
    sys.exit(main())
