"""Arranging tenants: people, roles, projects, tasks and service clients (the tenancy, projects,
invitations and admin tests start from it).

world = await build_tenant(db, "acme", members={"ada": TenantRole.OWNER})
project = await world.add_project(db, "Launch", members={"ada": ProjectRole.OWNER})
task = await world.add_task(db, project, assignee="ada")
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from backend.identity.api_keys import new_api_key
from backend.identity.models import ClientRole, OAuthClient, User
from backend.projects.models import Project, Task
from tenants.models import Tenant
from tenants.roles import ProjectRole, TenantRole
from tests.auth import bearer, client_bearer
from tests.factories import (
    ApiKeyFactory,
    MembershipFactory,
    OAuthClientFactory,
    ProjectFactory,
    ProjectMemberFactory,
    TaskFactory,
    TenantFactory,
    UserFactory,
    persist,
)


@dataclass
class TenantWorld:
    tenant: Tenant
    users: dict[str, User] = field(default_factory=dict)
    clients: dict[str, OAuthClient] = field(default_factory=dict)
    projects: dict[str, Project] = field(default_factory=dict)
    tasks: list[Task] = field(default_factory=list)

    @property
    def id(self) -> uuid.UUID:
        return self.tenant.id

    @property
    def url(self) -> str:
        return f"/api/v1/tenants/{self.tenant.id}"

    def project_url(self, name: str) -> str:
        return f"{self.url}/projects/{self.projects[name].id}"

    async def add_member(
        self, db: AsyncSession, name: str, role: TenantRole, user: User | None = None
    ) -> User:
        """A member: a new user called `name`, or an existing `user` from another tenant."""
        if user is None:
            user = UserFactory(email=f"{name}.{self.tenant.slug}@example.com", full_name=name)
            await persist(db, user)
        await persist(db, MembershipFactory(tenant_id=self.id, user_id=user.id, role=role))
        self.users[name] = user
        return user

    async def add_client(self, db: AsyncSession, name: str, role: ClientRole) -> OAuthClient:
        client = OAuthClientFactory(
            service=True,
            client_id=f"{name}-{uuid.uuid4()}",
            name=name,
            owner_tenant=self.tenant,
            role=role,
        )
        await persist(db, client)
        self.clients[name] = client
        return client

    async def add_api_key(
        self, db: AsyncSession, who: str, role: TenantRole, **values: object
    ) -> dict[str, str]:
        """Bearer headers carrying a new personal API key of member `who` in this tenant."""
        key = new_api_key()
        row = ApiKeyFactory(
            key=key, user=self.users[who], scope_tenant=self.tenant, role=role.value, **values
        )
        await persist(db, row)
        return {"Authorization": f"Bearer {key}"}

    async def add_project(
        self,
        db: AsyncSession,
        name: str,
        members: dict[str, ProjectRole] | None = None,
    ) -> Project:
        project = ProjectFactory(tenant_id=self.id, name=f"{self.tenant.slug} {name}")
        rows: list[object] = [project]
        rows += [
            ProjectMemberFactory(
                tenant_id=self.id, project_id=project.id, user_id=self.users[who].id, role=role
            )
            for who, role in (members or {}).items()
        ]
        await persist(db, *rows)
        self.projects[name] = project
        return project

    async def add_task(
        self, db: AsyncSession, project: str, assignee: str | None = None, **values: object
    ) -> Task:
        task = TaskFactory(
            tenant_id=self.id,
            project_id=self.projects[project].id,
            assignee_id=self.users[assignee].id if assignee else None,
            **{"title": f"{self.tenant.slug} task", **values},
        )
        await persist(db, task)
        self.tasks.append(task)
        return task

    def headers(self, app: FastAPI, who: str) -> dict[str, str]:
        """Bearer headers for a member (by name) or a service client (by name)."""
        if who in self.clients:
            return client_bearer(app, self.clients[who])
        return bearer(app, self.users[who])


async def build_tenant(
    db: AsyncSession, slug: str, members: dict[str, TenantRole] | None = None
) -> TenantWorld:
    tenant = await persist(db, TenantFactory(slug=slug, name=slug.title()))
    world = TenantWorld(tenant)
    for name, role in (members or {}).items():
        await world.add_member(db, name, role)
    return world
