"""GET /api/v1/tenants/{id}/export: every row of the tenant as NDJSON, owners only, no secrets."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.database import Base
from backend.core.secrets import is_secret_name
from backend.identity.models import ClientRole
from backend.privacy.tenant_export import export_tables, exported_columns
from tenants.isolation import enter_tenant, is_tenant_table
from tenants.models import AuditEvent
from tenants.roles import ProjectRole, TenantRole
from tests.factories import InvitationFactory, persist
from tests.world import TenantWorld, build_tenant


async def _acme(db: AsyncSession) -> TenantWorld:
    world = await build_tenant(
        db, "acme", {"olive": TenantRole.OWNER, "adam": TenantRole.ADMIN, "mia": TenantRole.MEMBER}
    )
    await world.add_project(db, "Apollo", {"mia": ProjectRole.EDITOR})
    await world.add_task(db, "Apollo", assignee="mia")
    await world.add_task(db, "Apollo")
    await persist(db, InvitationFactory(tenant_id=world.id, email="nina@example.com"))
    await world.add_client(db, "robot", ClientRole.ADMIN)
    return world


def _lines(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines()]


def test_every_tenant_table_is_exported_without_secret_columns() -> None:
    tenant_tables = {
        table.name for table in Base.metadata.tables.values() if is_tenant_table(table)
    }
    assert {table.name for table in export_tables()} == tenant_tables | {"tenants"}
    for table in export_tables():
        kept = {column.name for column in exported_columns(table)}
        secret = {column.name for column in table.columns if is_secret_name(column.name)}
        assert kept == {column.name for column in table.columns} - secret, table.name
        assert not any(
            name.endswith("_hash") or "secret" in name or "token" in name for name in kept
        )
    assert "token_hash" not in {
        c.name for c in exported_columns(Base.metadata.tables["invitations"])
    }


async def test_the_owner_exports_every_row_in_a_stable_order_and_it_is_audited(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    acme = await _acme(db)
    other = await build_tenant(db, "globex", {"gus": TenantRole.OWNER})
    await other.add_project(db, "Secret")

    response = await client.get(f"{acme.url}/export", headers=acme.headers(app, "olive"))

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    lines = _lines(response)
    *rows, summary = lines
    assert summary["type"] == "summary"
    order = [table.name for table in export_tables()]
    types = [line["type"] for line in rows]
    assert types == sorted(types, key=order.index)
    counts = {name: types.count(name) for name in order}
    assert summary["counts"] == counts
    assert counts["tenants"] == 1
    assert counts["memberships"] == 3
    assert counts["projects"] == 1
    assert counts["tasks"] == 2
    assert counts["invitations"] == 1
    for name in order:  # rows by primary key
        table = Base.metadata.tables[name] if name != "tenants" else export_tables()[0]
        keys = [
            [str(line["data"][c.name]) for c in table.primary_key.columns]
            for line in rows
            if line["type"] == name
        ]
        assert keys == sorted(keys)
    assert all(
        line["data"].get("tenant_id", acme.id.hex) in (str(acme.id), acme.id.hex) for line in rows
    )
    assert "globex" not in response.text
    assert "Secret" not in response.text
    members = {
        line["data"]["email"]: line["data"] for line in rows if line["type"] == "memberships"
    }
    assert members["mia.acme@example.com"]["full_name"] == "mia"
    assert members["olive.acme@example.com"]["role"] == "owner"
    for line in rows:
        assert not [key for key in line["data"] if is_secret_name(key)], line

    again = await client.get(f"{acme.url}/export", headers=acme.headers(app, "olive"))
    varying = {"audit_events", "summary"}  # each export adds its own audit event
    assert [line for line in _lines(again) if line["type"] not in varying] == [
        line for line in lines if line["type"] not in varying
    ]
    await enter_tenant(db, acme.id)
    actions = (await db.scalars(select(AuditEvent.action))).all()
    assert actions.count("tenant.exported") == 2


@pytest.mark.parametrize("who", ["adam", "mia", "robot"])
async def test_only_owners_export(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, who: str
) -> None:
    acme = await _acme(db)
    response = await client.get(f"{acme.url}/export", headers=acme.headers(app, who))
    assert response.status_code == 403, response.text


async def test_strangers_get_404(app: FastAPI, client: httpx.AsyncClient, db: AsyncSession) -> None:
    acme = await _acme(db)
    other = await build_tenant(db, "globex", {"gus": TenantRole.OWNER})
    response = await client.get(f"{acme.url}/export", headers=other.headers(app, "gus"))
    assert response.status_code == 404, response.text


async def test_a_large_export_spans_many_batches(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.privacy import tenant_export

    monkeypatch.setattr(tenant_export, "BATCH_ROWS", 3)
    acme = await _acme(db)
    for _ in range(8):
        await acme.add_task(db, "Apollo")
    response = await client.get(f"{acme.url}/export", headers=acme.headers(app, "olive"))
    lines = _lines(response)
    task_ids = [line["data"]["id"] for line in lines if line["type"] == "tasks"]
    assert len(task_ids) == len(set(task_ids)) == 10
    assert task_ids == sorted(task_ids)
    assert lines[-1]["counts"]["tasks"] == 10


async def test_the_export_holds_the_trash_and_stays_open_while_the_tenant_awaits_deletion(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    acme = await _acme(db)
    headers = acme.headers(app, "olive")
    task = acme.tasks[1]
    deleted = await client.delete(f"{acme.project_url('Apollo')}/tasks/{task.id}", headers=headers)
    assert deleted.status_code == 204, deleted.text
    scheduled = await client.delete(acme.url, headers=headers)
    assert scheduled.status_code == 202, scheduled.text

    response = await client.get(f"{acme.url}/export", headers=headers)

    assert response.status_code == 200, response.text
    tasks = {
        line["data"]["id"]: line["data"] for line in _lines(response) if line["type"] == "tasks"
    }
    assert tasks[str(task.id)]["deleted_at"] is not None
    assert len(tasks) == 2
