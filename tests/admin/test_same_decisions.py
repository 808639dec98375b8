"""The admin panel's writes get the API's decision, for every tenant role, and audit one event.

Each write is made twice by the same person: first through the admin view's own write method
(in a transaction rolled back afterwards), with the panel's scope for that role, then through
the API with a token. Both reach the same service function, which decides: the outcomes match.
The panel admits only owners and admins; members and viewers are driven here too, to show that
the decision is the service's and not the panel's grants.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from admin.base import AdminView
from admin.scoping import AdminScope, bound_scope
from backend.core.errors import Problem
from tenants.isolation import enter_tenant
from tenants.models import AuditEvent
from tenants.roles import TenantRole
from tests.admin.conftest import AdminWorld

ALLOWED = "allowed"
ACTORS = {
    TenantRole.OWNER: "olive",
    TenantRole.ADMIN: "adam",
    TenantRole.MEMBER: "mia",  # an editor of Apollo
    TenantRole.VIEWER: "vic",  # in no project
}


@dataclass(frozen=True)
class Write:
    """One write: the admin view and its call, and the same write as an API request."""

    view: str
    admin: Callable[[AdminView, AsyncSession, AdminScope, AdminWorld], Awaitable[Any]]
    api: Callable[[AdminWorld], tuple[str, str, dict[str, Any] | None]]


def _pk(world: AdminWorld, row: Any) -> str:
    return world.pk(row)


async def _fetch(view: AdminView, session: AsyncSession, pk: str) -> Any:
    return await view.fetch(session, pk)


def _member_pk(world: AdminWorld, name: str) -> str:
    return f"{world.acme.id};{world.acme.users[name].id}"


async def _update(
    view: AdminView, session: AsyncSession, scope: AdminScope, pk: str, data: dict[str, Any]
) -> None:
    await view.update_row(session, scope, await _fetch(view, session, pk), data)


async def _delete(view: AdminView, session: AsyncSession, scope: AdminScope, pk: str) -> None:
    await view.delete_row(session, scope, await _fetch(view, session, pk))


async def _act(
    action: Callable[[AsyncSession, AdminScope, Any], Awaitable[None]],
    view: AdminView,
    session: AsyncSession,
    scope: AdminScope,
    pk: str,
) -> None:
    """A custom action on one row, as `AdminView.run_action` applies it."""
    await action(session, scope, await _fetch(view, session, pk))


def _apollo(world: AdminWorld) -> Any:
    return world.acme.projects["Apollo"]


WRITES: dict[str, Write] = {
    "rename the tenant": Write(
        "tenant",
        lambda v, s, sc, w: _update(v, s, sc, str(w.acme.id), {"name": "Acme 2", "slug": "acme"}),
        lambda w: ("PATCH", w.acme.url, {"name": "Acme 2"}),
    ),
    "change a member's role": Write(
        "membership",
        lambda v, s, sc, w: _update(v, s, sc, _member_pk(w, "tom"), {"role": "viewer"}),
        lambda w: ("PATCH", f"{w.acme.url}/members/{w.acme.users['tom'].id}", {"role": "viewer"}),
    ),
    "demote an owner": Write(
        "membership",
        lambda v, s, sc, w: _update(v, s, sc, _member_pk(w, "olive"), {"role": "member"}),
        lambda w: (
            "PATCH",
            f"{w.acme.url}/members/{w.acme.users['olive'].id}",
            {"role": "member"},
        ),
    ),
    "remove a member": Write(
        "membership",
        lambda v, s, sc, w: _delete(v, s, sc, _member_pk(w, "tom")),
        lambda w: ("DELETE", f"{w.acme.url}/members/{w.acme.users['tom'].id}", None),
    ),
    "create a project": Write(
        "project",
        lambda v, s, sc, w: v.create_row(
            s, sc, {"tenant_id": w.acme.id, "name": "Hermes", "description": ""}
        ),
        lambda w: ("POST", f"{w.acme.url}/projects", {"name": "Hermes"}),
    ),
    "edit a project": Write(
        "project",
        lambda v, s, sc, w: _update(
            v, s, sc, _pk(w, _apollo(w)), {"name": "Apollo 11", "description": ""}
        ),
        lambda w: ("PATCH", w.acme.project_url("Apollo"), {"name": "Apollo 11"}),
    ),
    "delete a project": Write(
        "project",
        lambda v, s, sc, w: _delete(v, s, sc, _pk(w, _apollo(w))),
        lambda w: ("DELETE", w.acme.project_url("Apollo"), None),
    ),
    "add a project member": Write(
        "project-member",
        lambda v, s, sc, w: v.create_row(
            s,
            sc,
            {
                "tenant_id": w.acme.id,
                "project_id": _apollo(w).id,
                "user_id": w.acme.users["tom"].id,
                "role": "viewer",
            },
        ),
        lambda w: (
            "PUT",
            f"{w.acme.project_url('Apollo')}/members/{w.acme.users['tom'].id}",
            {"role": "viewer"},
        ),
    ),
    "create a task": Write(
        "task",
        lambda v, s, sc, w: v.create_row(
            s,
            sc,
            {
                "tenant_id": w.acme.id,
                "project_id": _apollo(w).id,
                "title": "Fuel",
                "status": "todo",
            },
        ),
        lambda w: ("POST", f"{w.acme.project_url('Apollo')}/tasks", {"title": "Fuel"}),
    ),
    "edit a task": Write(
        "task",
        lambda v, s, sc, w: _update(
            v,
            s,
            sc,
            _pk(w, w.acme.tasks[0]),
            {"title": "Refuel", "status": "doing", "assignee_id": None},
        ),
        lambda w: (
            "PATCH",
            f"{w.acme.project_url('Apollo')}/tasks/{w.acme.tasks[0].id}",
            {"title": "Refuel", "status": "doing", "assignee_id": None},
        ),
    ),
    "delete a task": Write(
        "task",
        lambda v, s, sc, w: _delete(v, s, sc, _pk(w, w.acme.tasks[0])),
        lambda w: ("DELETE", f"{w.acme.project_url('Apollo')}/tasks/{w.acme.tasks[0].id}", None),
    ),
    "resend an invitation": Write(
        "invitation",
        lambda v, s, sc, w: _act(v.resend_row, v, s, sc, _pk(w, w.invitations["acme"])),
        lambda w: ("POST", f"{w.acme.url}/invitations/{w.invitations['acme'].id}/resend", None),
    ),
    "revoke an invitation": Write(
        "invitation",
        lambda v, s, sc, w: _act(v.revoke_row, v, s, sc, _pk(w, w.invitations["acme"])),
        lambda w: ("DELETE", f"{w.acme.url}/invitations/{w.invitations['acme'].id}", None),
    ),
}


def _view(app: FastAPI, identity: str) -> AdminView:
    [view] = [v for v in app.state.admin.views if getattr(v, "identity", None) == identity]
    return view


async def _events(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(AuditEvent)) or 0


async def _through_the_panel(
    app: FastAPI, world: AdminWorld, role: TenantRole, write: Write
) -> tuple[str | int, int]:
    """The decision of the admin view's write, and how many audit events it recorded; rolled
    back, so that the API meets the same rows."""
    user = world.acme.users[ACTORS[role]]
    scope = AdminScope(
        user_id=user.id,
        email=user.email,
        tenant_id=world.acme.id,
        tenant_name=world.acme.tenant.name,
        role=role,
    )
    view = _view(app, write.view)
    async with app.state.database.session_factory() as session:
        await enter_tenant(session, world.acme.id)
        before = await _events(session)
        with bound_scope(scope):
            try:
                await write.admin(view, session, scope, world)
                outcome: str | int = ALLOWED
            except Problem as refused:
                outcome = refused.status
        recorded = await _events(session) - before if outcome == ALLOWED else 0
        await session.rollback()
    return outcome, recorded


async def _through_the_api(
    app: FastAPI, client: httpx.AsyncClient, world: AdminWorld, role: TenantRole, write: Write
) -> str | int:
    method, url, body = write.api(world)
    response = await client.request(
        method, url, json=body, headers=world.acme.headers(app, ACTORS[role])
    )
    return ALLOWED if response.is_success else response.status_code


@pytest.mark.parametrize("role", list(ACTORS))
@pytest.mark.parametrize("name", list(WRITES))
async def test_the_panel_and_the_api_decide_alike(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: AsyncSession,
    world: AdminWorld,
    role: TenantRole,
    name: str,
) -> None:
    await world.acme.add_member(db, "vic", TenantRole.VIEWER)
    await world.acme.add_member(db, "tom", TenantRole.MEMBER)
    write = WRITES[name]

    panel, recorded = await _through_the_panel(app, world, role, write)
    api = await _through_the_api(app, client, world, role, write)

    assert panel == api
    assert recorded == (1 if panel == ALLOWED else 0)
