"""The audit log: written with the change, read newest first, page by page, by managers only."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from backend.identity.models import ClientRole
from tenants.roles import ProjectRole, TenantRole
from tests.world import build_tenant


async def test_changes_are_logged_with_their_actor_newest_first_page_by_page(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    acme = await build_tenant(
        db, "acme", members={"ada": TenantRole.OWNER, "max": TenantRole.MEMBER}
    )
    await acme.add_client(db, "robot", ClientRole.ADMIN)
    ada, robot = acme.headers(app, "ada"), acme.headers(app, "robot")
    await client.patch(acme.url, json={"name": "Acme 2"}, headers=ada)
    await client.patch(
        f"{acme.url}/members/{acme.users['max'].id}", json={"role": "viewer"}, headers=robot
    )
    project = (await client.post(f"{acme.url}/projects", json={"name": "P"}, headers=ada)).json()
    await client.put(
        f"{acme.url}/projects/{project['id']}/members/{acme.users['max'].id}",
        json={"role": "editor"},
        headers=ada,
    )
    await client.delete(f"{acme.url}/projects/{project['id']}", headers=robot)

    url = f"{acme.url}/audit-events"
    first = (await client.get(url, params={"limit": 3}, headers=ada)).json()
    rest = (
        await client.get(url, params={"limit": 3, "cursor": first["next_cursor"]}, headers=ada)
    ).json()

    events = first["items"] + rest["items"]
    assert [e["action"] for e in events] == [
        "project.deleted",
        "project_member.added",
        "project.created",
        "member.role_changed",
        "tenant.updated",
    ]
    assert rest["next_cursor"] is None
    by_action = {e["action"]: e for e in events}
    assert by_action["project.deleted"]["actor_client_id"] == acme.clients["robot"].client_id
    assert by_action["project.deleted"]["actor_user_id"] is None
    assert by_action["tenant.updated"]["actor_user_id"] == str(acme.users["ada"].id)
    assert by_action["project_member.added"]["data"] == {
        "project_id": project["id"],
        "role": ProjectRole.EDITOR.value,
    }


async def test_members_cannot_read_the_audit_log(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    acme = await build_tenant(db, "acme", members={"max": TenantRole.MEMBER})
    response = await client.get(f"{acme.url}/audit-events", headers=acme.headers(app, "max"))
    assert response.status_code == 403
