"""The tenant export streams in constant memory: 100,000 tasks grow the serving worker's resident
memory by less than 50 MB. Measured on `tenantdesk serve`, a process of its own."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.database import utcnow
from backend.projects.models import Task, TaskStatus
from tenants.roles import TenantRole
from tests.factories import DEFAULT_PASSWORD
from tests.harness.service import ServiceProcess
from tests.world import TenantWorld, build_tenant

TASKS = 100_000
MIB = 1024 * 1024


async def _seed_tasks(harness_db: AsyncSession, world: TenantWorld, count: int) -> None:
    """Rows straight into the table, below the app: the export is under test, not the create."""
    project_id = world.projects["Big"].id
    now = utcnow()
    for start in range(0, count, 10_000):
        rows: list[dict[str, Any]] = [
            {
                "tenant_id": world.id,
                "id": uuid.uuid4(),
                "project_id": project_id,
                "title": f"task {n} " + "x" * 60,
                "description": "a description of some length " * 4,
                "status": TaskStatus.TODO,
                "created_at": now,
                "updated_at": now,
                "version": 1,
            }
            for n in range(start, min(start + 10_000, count))
        ]
        await harness_db.execute(insert(Task.__table__), rows)
    await harness_db.commit()


def _export(url: str, token: str, lines: list[int], sampling: threading.Event) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.stream("GET", url, headers=headers, timeout=600) as response:
        assert response.status_code == 200, response.read()
        last = ""
        for line in response.iter_lines():
            lines[0] += 1
            last = line
    sampling.set()
    lines.append(json.loads(last)["counts"]["tasks"])


def _peak_rss_while(served: ServiceProcess, done: threading.Event) -> int:
    peak = served.rss_bytes()
    while not done.is_set():
        peak = max(peak, served.rss_bytes())
        time.sleep(0.02)
    return max(peak, served.rss_bytes())


async def test_an_export_of_100_000_tasks_keeps_the_workers_memory_flat(
    app: FastAPI, db: AsyncSession, harness_db: AsyncSession, served: ServiceProcess
) -> None:
    big = await build_tenant(db, "big", {"olive": TenantRole.OWNER})
    await big.add_project(db, "Big")
    small = await build_tenant(db, "small")
    await small.add_member(db, "olive", TenantRole.OWNER, user=big.users["olive"])
    await _seed_tasks(harness_db, big, TASKS)
    async with httpx.AsyncClient(base_url=served.url, timeout=60) as http:
        signed_in = await http.post(
            "/oauth/token",
            data={
                "grant_type": "password",
                "client_id": "web",
                "username": big.users["olive"].email,
                "password": DEFAULT_PASSWORD,
            },
        )
        assert signed_in.status_code == 200, signed_in.text
        token = signed_in.json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(2):  # warm the export path up, on a small tenant
            warm = await http.get(f"/api/v1/tenants/{small.id}/export", headers=headers)
            assert warm.status_code == 200, warm.text

    before = served.rss_bytes()
    lines, done = [0], threading.Event()
    reader = threading.Thread(
        target=_export, args=(f"{served.url}/api/v1/tenants/{big.id}/export", token, lines, done)
    )
    reader.start()
    peak = await asyncio.to_thread(_peak_rss_while, served, done)
    await asyncio.to_thread(reader.join, 600)

    assert lines[1:] == [TASKS], "the export did not finish with every task"
    assert lines[0] > TASKS
    growth = peak - before
    assert growth < 50 * MIB, f"the worker grew by {growth / MIB:.1f} MiB"
    print(f"exported {lines[0]} lines; RSS {before / MIB:.1f} -> peak {peak / MIB:.1f} MiB")
