"""The panel and the trash: deleted rows only behind the "In the trash" filter, a restore action
through the service, and a platform admin's restore or purge of a tenant pending deletion."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from tenants.models import Tenant
from tests.admin.conftest import AdminBrowser, AdminWorld
from tests.admin.test_actions import fresh, platform_events, signed_in, tenant_events
from tests.auth import bearer


async def test_deleted_rows_show_only_in_the_trash_and_come_back_by_the_restore_action(
    browser_client: AdminBrowser,
    client: httpx.AsyncClient,
    app: FastAPI,
    world: AdminWorld,
    db: AsyncSession,
) -> None:
    olive = bearer(app, world.acme.users["olive"])
    apollo, task = world.acme.projects["Apollo"], world.acme.tasks[0]
    assert (await client.delete(world.acme.project_url("Apollo"), headers=olive)).status_code == 204
    root = await signed_in(browser_client, "root@example.com")

    for view, name in (("project", apollo.name), ("task", task.title)):
        default = await root.get(f"/admin/{view}/list")
        in_trash = await root.get(f"/admin/{view}/list", params={"trash": "yes"})
        assert default.status_code == in_trash.status_code == 200
        assert name not in default.text, view
        assert name in in_trash.text, view
    details = await root.get(f"/admin/project/details/{world.pk(apollo)}")
    assert details.status_code == 200
    assert "deleted by" in details.text

    restored = await root.action("project", "restore", world.pk(apollo))

    assert restored.status_code == 302
    assert (await client.get(world.acme.project_url("Apollo"), headers=olive)).status_code == 200
    tasks = await client.get(f"{world.acme.project_url('Apollo')}/tasks", headers=olive)
    assert [t["id"] for t in tasks.json()["items"]] == [str(task.id)]
    [event] = [e for e in await tenant_events(db, world.acme.id) if e.action == "project.restored"]
    assert event.actor_user_id == world.root.id


async def test_a_tenant_admin_restores_a_task_of_their_tenant_only(
    browser_client: AdminBrowser,
    client: httpx.AsyncClient,
    app: FastAPI,
    world: AdminWorld,
) -> None:
    for tenant, owner in ((world.acme, "olive"), (world.globex, "gina")):
        url = f"{tenant.project_url(next(iter(tenant.projects)))}/tasks/{tenant.tasks[0].id}"
        assert (
            await client.delete(url, headers=bearer(app, tenant.users[owner]))
        ).status_code == 204
    adam = await signed_in(browser_client, world.acme.users["adam"].email)

    listed = await adam.get("/admin/task/list", params={"trash": "yes"})
    mine = await adam.action("task", "restore", world.pk(world.acme.tasks[0]))
    theirs = await adam.action("task", "restore", world.pk(world.globex.tasks[0]))

    assert (
        world.globex.tasks[0].title not in listed.text
        or world.globex.tasks[0].title == world.acme.tasks[0].title
    )
    assert (mine.status_code, theirs.status_code) == (302, 404)
    olive = bearer(app, world.acme.users["olive"])
    url = f"{world.acme.project_url('Apollo')}/tasks/{world.acme.tasks[0].id}"
    assert (await client.get(url, headers=olive)).status_code == 200


async def test_a_platform_admin_restores_or_purges_a_tenant_pending_deletion(
    browser_client: AdminBrowser,
    client: httpx.AsyncClient,
    app: FastAPI,
    world: AdminWorld,
    db: AsyncSession,
) -> None:
    olive, gina = bearer(app, world.acme.users["olive"]), bearer(app, world.globex.users["gina"])
    assert (await client.delete(world.acme.url, headers=olive)).status_code == 202
    assert (await client.delete(world.globex.url, headers=gina)).status_code == 202
    root = await signed_in(browser_client, "root@example.com")

    restored = await root.action("tenant", "restore", str(world.acme.id))
    purged = await root.action("tenant", "purge", str(world.globex.id))

    assert (restored.status_code, purged.status_code) == (302, 302)
    assert (await client.get(f"{world.acme.url}/projects", headers=olive)).status_code == 200
    assert await fresh(db, Tenant, Tenant.id == world.globex.id) is None
    assert (await client.get(world.globex.url, headers=gina)).status_code == 404
    events = [(e.action, e.target_id, e.actor_user_id) for e in await platform_events(db)]
    assert ("tenant.purged", str(world.globex.id), world.root.id) in events


async def test_an_active_tenant_is_not_purged_from_the_panel(
    browser_client: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    root = await signed_in(browser_client, "root@example.com")

    refused = await root.action("tenant", "purge", str(world.acme.id))

    assert refused.status_code == 302
    assert "error=" in refused.headers["location"]
    assert await fresh(db, Tenant, Tenant.id == world.acme.id) is not None
    assert not [e for e in await platform_events(db) if e.action == "tenant.purged"]
