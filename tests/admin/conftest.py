"""The admin panel's test world and a client that signs in to it like a browser.

Two tenants, each with its own rows of every kind:
  acme:   olive owner · adam admin · mia member; project Apollo (olive owner, mia editor),
          a task assigned to mia, a pending invitation to new.acme@example.com
  globex: gina owner · gus member; project Zeus (gina owner), a task, a pending invitation
A platform superuser, root@example.com.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from backend.invitations.models import Invitation
from backend.projects.models import Project
from tenants.roles import ProjectRole, TenantRole
from tests.factories import DEFAULT_PASSWORD, InvitationFactory, UserFactory, persist
from tests.world import TenantWorld, build_tenant

ORIGIN = "https://testserver"
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')


def csrf_in(html: str) -> str:
    match = _CSRF_META.search(html)
    assert match, "every admin page carries the session's CSRF token"
    return match.group(1)


class AdminBrowser:
    """An httpx client used the way the panel's pages use it: token and Origin on every write."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def token(self) -> str:
        return csrf_in((await self.http.get("/admin/login")).text)

    async def login(self, email: str, password: str = DEFAULT_PASSWORD) -> httpx.Response:
        data = {"username": email, "password": password}
        return await self.post("/admin/login", data)

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.http.get(url, **kwargs)

    async def post(self, url: str, data: dict[str, Any]) -> httpx.Response:
        data = {**data, "csrf_token": await self.token()}
        return await self.http.post(url, data=data, headers={"Origin": ORIGIN})

    async def delete(self, view: str, *pks: str) -> httpx.Response:
        headers = {"Origin": ORIGIN, "X-CSRF-Token": await self.token()}
        params = {"pks": ",".join(pks)}
        return await self.http.delete(f"/admin/{view}/delete", params=params, headers=headers)

    async def action(self, view: str, name: str, *pks: str) -> httpx.Response:
        """A custom action as the page runs it: a GET navigation, so a Referer and no Origin."""
        params = {"pks": ",".join(pks), "csrf_token": await self.token()}
        headers = {"Referer": f"{ORIGIN}/admin/{view}/list"}
        return await self.http.get(f"/admin/{view}/action/{name}", params=params, headers=headers)


@pytest.fixture
def browser_client(client: httpx.AsyncClient) -> AdminBrowser:
    return AdminBrowser(client)


@dataclass
class AdminWorld:
    acme: TenantWorld
    globex: TenantWorld
    root: Any
    invitations: dict[str, Invitation]

    def pk(self, row: Any) -> str:
        """SQLAdmin's identifier of a tenant row: `<tenant_id>;<id>`."""
        return f"{row.tenant_id};{row.id}"


async def add_invitation(
    db: AsyncSession, world: TenantWorld, email: str, role: TenantRole = TenantRole.MEMBER
) -> Invitation:
    inviter = next(iter(world.users.values()))
    invitation = InvitationFactory(tenant=world.tenant, email=email, inviter=inviter, role=role)
    await persist(db, invitation)
    return invitation


@pytest.fixture
async def world(db: AsyncSession, owner_db: AsyncSession) -> AdminWorld:
    acme = await build_tenant(
        db,
        "acme",
        members={"olive": TenantRole.OWNER, "adam": TenantRole.ADMIN, "mia": TenantRole.MEMBER},
    )
    await acme.add_project(db, "Apollo", {"olive": ProjectRole.OWNER, "mia": ProjectRole.EDITOR})
    await acme.add_task(db, "Apollo", assignee="mia")
    globex = await build_tenant(
        db, "globex", members={"gina": TenantRole.OWNER, "gus": TenantRole.MEMBER}
    )
    await globex.add_project(db, "Zeus", {"gina": ProjectRole.OWNER})
    await globex.add_task(db, "Zeus", assignee="gina")
    # Only the schema owner makes superusers (`tenantdesk create-superuser`).
    root = await persist(owner_db, UserFactory(email="root@example.com", is_superuser=True))
    invitations = {
        "acme": await add_invitation(db, acme, "new.acme@example.com"),
        "globex": await add_invitation(db, globex, "new.globex@example.com"),
    }
    return AdminWorld(acme, globex, root, invitations)


def project(world: TenantWorld, name: str) -> Project:
    return world.projects[name]
