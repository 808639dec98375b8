"""Every endpoint, called by every kind of caller, answers what the matrix in roles.py says.

Callers: each tenant role without a project role, each project role (held by a tenant member),
a tenant viewer holding a project editor role (capped at viewer), a stranger from another tenant,
a service client of each role, and members acting through personal API keys (with the lower of
the key's role and their own). Expected statuses are derived from `tenants.roles`, the one
place the matrix lives; `test_the_matrix_is_the_one_of_the_design` pins that data to DESIGN.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from backend.identity.api_keys import new_api_key
from backend.identity.models import ClientRole, OAuthClient
from tenants.models import Tenant
from tenants.roles import (
    CLIENT_PROJECT_ROLE,
    PROJECT_PERMISSIONS,
    TENANT_PERMISSIONS,
    ProjectAction,
    ProjectRole,
    TenantAction,
    TenantRole,
    effective_project_role,
    project_allows,
    tenant_allows,
    weaker_role,
)
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
    WebhookDeliveryFactory,
    persist,
)


@dataclass(frozen=True)
class Caller:
    name: str
    tenant_role: TenantRole | None = None  # None: a stranger to the tenant
    project_role: ProjectRole | None = None
    is_client: bool = False
    # Acting through a personal API key of this role in the tenant.
    key_role: TenantRole | None = None

    @property
    def role(self) -> TenantRole | None:
        """The tenant role it acts with."""
        if self.tenant_role is None or self.key_role is None:
            return self.tenant_role
        return weaker_role(self.tenant_role, self.key_role)

    @property
    def is_person_signed_in(self) -> bool:
        return not self.is_client and self.key_role is None

    def effective_project_role(self) -> ProjectRole | None:
        assert self.role is not None
        if self.is_client:
            return CLIENT_PROJECT_ROLE[self.role]
        return effective_project_role(self.role, self.project_role)


CALLERS = [
    Caller("tenant-owner", TenantRole.OWNER),
    Caller("tenant-admin", TenantRole.ADMIN),
    Caller("tenant-member", TenantRole.MEMBER),
    Caller("tenant-viewer", TenantRole.VIEWER),
    Caller("project-owner", TenantRole.MEMBER, ProjectRole.OWNER),
    Caller("project-editor", TenantRole.MEMBER, ProjectRole.EDITOR),
    Caller("project-viewer", TenantRole.MEMBER, ProjectRole.VIEWER),
    Caller("capped-viewer", TenantRole.VIEWER, ProjectRole.EDITOR),
    Caller("stranger"),
    Caller("client-admin", TenantRole.ADMIN, is_client=True),
    Caller("client-member", TenantRole.MEMBER, is_client=True),
    Caller("client-viewer", TenantRole.VIEWER, is_client=True),
    Caller("key-admin-of-owner", TenantRole.OWNER, key_role=TenantRole.ADMIN),
    Caller("key-viewer-of-admin", TenantRole.ADMIN, key_role=TenantRole.VIEWER),
    # A member who held a higher role when the key was made: the key acts as a member.
    Caller("key-owner-of-editor", TenantRole.MEMBER, ProjectRole.EDITOR, TenantRole.OWNER),
]

Action = TenantAction | ProjectAction | None  # None: any signed-in user, no tenant involved


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    action: Action
    success: int
    body: dict[str, Any] | None = None
    # Service clients (and API keys) never manage service clients, whatever their role.
    people_only: bool = False
    # Who succeeds, when no single action of the matrix says (the trash).
    allows: Callable[[Caller], bool] | None = None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def sees_the_trash(caller: Caller) -> bool:
    """Tenant owners and admins (admin clients too) see the trash; project owners theirs."""
    if caller.role is None:
        return False
    if tenant_allows(caller.role, TenantAction.SEE_ALL_PROJECTS):
        return True
    return not caller.is_client and caller.effective_project_role() is ProjectRole.OWNER


T = "/api/v1/tenants/{tenant}"
P = T + "/projects/{project}"
W = T + "/webhooks/{webhook}"
ENDPOINTS = [
    Endpoint("POST", "/api/v1/tenants", None, 201, {"name": "New", "slug": "new-tenant"}),
    Endpoint("GET", "/api/v1/tenants", None, 200),
    Endpoint("GET", T, TenantAction.READ, 200),
    Endpoint("PATCH", T, TenantAction.MANAGE, 200, {"name": "Renamed"}),
    # Scheduled for deletion (202); restoring an active tenant is 409 once the role allows.
    Endpoint("DELETE", T, TenantAction.DELETE, 202),
    Endpoint("POST", T + "/restore", TenantAction.DELETE, 409),
    Endpoint("GET", T + "/trash", TenantAction.READ, 200, allows=sees_the_trash),
    Endpoint("GET", T + "/export", TenantAction.EXPORT, 200),
    Endpoint("GET", T + "/members", TenantAction.READ, 200),
    Endpoint("GET", T + "/members/{target}", TenantAction.READ, 200),
    Endpoint(
        "PATCH", T + "/members/{target}", TenantAction.MANAGE_MEMBERS, 200, {"role": "viewer"}
    ),
    Endpoint("DELETE", T + "/members/{target}", TenantAction.MANAGE_MEMBERS, 204),
    Endpoint("GET", T + "/audit-events", TenantAction.MANAGE, 200),
    Endpoint(
        "POST", T + "/clients", TenantAction.MANAGE, 201, {"name": "bot", "role": "member"}, True
    ),
    Endpoint("GET", T + "/clients", TenantAction.MANAGE, 200, people_only=True),
    Endpoint("DELETE", T + "/clients/{client}", TenantAction.MANAGE, 204, people_only=True),
    Endpoint("POST", T + "/projects", TenantAction.CREATE_PROJECT, 201, {"name": "New"}),
    Endpoint("GET", T + "/projects", TenantAction.READ, 200),
    Endpoint("GET", P, ProjectAction.READ, 200),
    Endpoint("PATCH", P, ProjectAction.EDIT, 200, {"name": "Renamed"}),
    Endpoint("DELETE", P, ProjectAction.MANAGE, 204),
    Endpoint("POST", T + "/projects/{trashed_project}/restore", ProjectAction.MANAGE, 200),
    Endpoint("GET", P + "/members", ProjectAction.READ, 200),
    Endpoint("GET", P + "/members/{target}", ProjectAction.READ, 200),
    Endpoint("PUT", P + "/members/{newcomer}", ProjectAction.MANAGE, 201, {"role": "editor"}),
    Endpoint("DELETE", P + "/members/{target}", ProjectAction.MANAGE, 204),
    Endpoint("POST", P + "/tasks", ProjectAction.EDIT, 201, {"title": "New"}),
    Endpoint("GET", P + "/tasks", ProjectAction.READ, 200),
    Endpoint("GET", P + "/tasks/{task}", ProjectAction.READ, 200),
    Endpoint("PATCH", P + "/tasks/{task}", ProjectAction.EDIT, 200, {"status": "done"}),
    Endpoint("DELETE", P + "/tasks/{task}", ProjectAction.EDIT, 204),
    Endpoint(
        "POST",
        T + "/webhooks",
        TenantAction.MANAGE,
        201,
        {"url": "http://127.0.0.1:9/hook", "events": ["*"]},
    ),
    Endpoint("GET", T + "/webhooks", TenantAction.MANAGE, 200),
    Endpoint("GET", W, TenantAction.MANAGE, 200),
    Endpoint("PATCH", W, TenantAction.MANAGE, 200, {"description": "Renamed"}),
    Endpoint("DELETE", W, TenantAction.MANAGE, 204),
    Endpoint("POST", W + "/ping", TenantAction.MANAGE, 202),
    Endpoint("POST", W + "/rotate-secret", TenantAction.MANAGE, 200),
    Endpoint("GET", W + "/deliveries", TenantAction.MANAGE, 200),
    Endpoint("POST", W + "/deliveries/{delivery}/retry", TenantAction.MANAGE, 202),
    Endpoint("POST", P + "/tasks/{trashed_task}/restore", ProjectAction.EDIT, 200),
]


def expected_status(endpoint: Endpoint, caller: Caller) -> int:
    action = endpoint.action
    if action is None:  # the account's endpoints: a signed-in user only
        return endpoint.success if caller.is_person_signed_in else 403
    if caller.role is None:
        return 404
    if endpoint.people_only and not caller.is_person_signed_in:
        return 403
    if endpoint.allows is not None:
        return endpoint.success if endpoint.allows(caller) else 403
    if isinstance(action, TenantAction):
        return endpoint.success if tenant_allows(caller.role, action) else 403
    project_role = caller.effective_project_role()
    if project_role is None:
        return 404
    return endpoint.success if project_allows(project_role, action) else 403


@dataclass
class Arranged:
    ids: dict[str, uuid.UUID | str]
    headers: dict[str, dict[str, str]]


async def arrange(app: FastAPI, db: AsyncSession) -> Arranged:
    """One tenant with a project, a task, a member to act on and one to add, and every caller."""
    tenant, elsewhere = TenantFactory(), TenantFactory()
    project = ProjectFactory(tenant_id=tenant.id)
    # In the trash, with the same members as `project`.
    trashed = ProjectFactory(tenant_id=tenant.id, in_trash=True)
    people = {caller.name: UserFactory() for caller in CALLERS if not caller.is_client}
    target, newcomer = UserFactory(), UserFactory()
    await persist(db, *people.values(), target, newcomer, tenant, elsewhere)
    clients = {
        caller.name: _service_client(tenant, caller.tenant_role)
        for caller in CALLERS
        if caller.is_client
    }
    doomed = _service_client(tenant, TenantRole.MEMBER)
    await persist(db, *clients.values(), doomed)

    memberships = [
        MembershipFactory(
            tenant_id=elsewhere.id, user_id=people["stranger"].id, role=TenantRole.OWNER
        ),
        MembershipFactory(tenant_id=tenant.id, user_id=target.id, role=TenantRole.MEMBER),
        MembershipFactory(tenant_id=tenant.id, user_id=newcomer.id, role=TenantRole.MEMBER),
    ]
    project_members = [
        ProjectMemberFactory(
            tenant_id=tenant.id, project_id=project.id, user_id=target.id, role=ProjectRole.EDITOR
        )
    ]
    for caller in CALLERS:
        if caller.is_client or caller.tenant_role is None:
            continue
        user_id = people[caller.name].id
        memberships.append(
            MembershipFactory(tenant_id=tenant.id, user_id=user_id, role=caller.tenant_role)
        )
        if caller.project_role is not None:
            project_members += [
                ProjectMemberFactory(
                    tenant_id=tenant.id,
                    project_id=project_id,
                    user_id=user_id,
                    role=caller.project_role,
                )
                for project_id in (project.id, trashed.id)
            ]
    task = TaskFactory(tenant_id=tenant.id, project_id=project.id, assignee_id=target.id)
    trashed_task = TaskFactory(tenant_id=tenant.id, project_id=project.id, in_trash=True)
    # Parents first: rows of unrelated mappers are not ordered by their foreign keys.
    await persist(db, *memberships, project, trashed)
    await persist(db, *project_members, task, trashed_task)
    delivery = await persist(db, WebhookDeliveryFactory(tenant_id=tenant.id, failed=True))

    keys = {caller.name: new_api_key() for caller in CALLERS if caller.key_role is not None}
    await persist(
        db,
        *(
            ApiKeyFactory(
                key=keys[caller.name],
                user_id=people[caller.name].id,
                scope_tenant_id=tenant.id,
                role=caller.key_role.value,
            )
            for caller in CALLERS
            if caller.key_role is not None
        ),
    )

    headers = {name: bearer(app, user) for name, user in people.items()}
    headers |= {name: client_bearer(app, client) for name, client in clients.items()}
    headers |= {name: {"Authorization": f"Bearer {key}"} for name, key in keys.items()}
    ids = {
        "tenant": tenant.id,
        "project": project.id,
        "task": task.id,
        "trashed_project": trashed.id,
        "trashed_task": trashed_task.id,
        "target": target.id,
        "newcomer": newcomer.id,
        "client": doomed.client_id,
        "webhook": delivery.endpoint_id,
        "delivery": delivery.id,
    }
    return Arranged(ids, headers)


def _service_client(tenant: Tenant, role: TenantRole | None) -> OAuthClient:
    return OAuthClientFactory(
        service=True, name="robot", owner_tenant=tenant, role=ClientRole(role)
    )


@pytest.mark.parametrize("caller", CALLERS, ids=lambda caller: caller.name)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
async def test_each_endpoint_answers_each_caller_as_the_matrix_says(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, endpoint: Endpoint, caller: Caller
) -> None:
    arranged = await arrange(app, db)

    response = await client.request(
        endpoint.method,
        endpoint.path.format(**arranged.ids),
        json=endpoint.body,
        headers=arranged.headers[caller.name],
    )

    assert response.status_code == expected_status(endpoint, caller), response.text


def test_every_route_of_the_api_is_walked(app: FastAPI) -> None:
    walked = {(e.method, e.path.replace("{tenant}", "{tenant_id}")) for e in ENDPOINTS}
    placeholders = {
        "{project}": "{project_id}",
        "{task}": "{task_id}",
        "{trashed_project}": "{project_id}",
        "{trashed_task}": "{task_id}",
        "{target}": "{user_id}",
        "{newcomer}": "{user_id}",
        "{client}": "{client_id}",
        "{webhook}": "{webhook_id}",
        "{delivery}": "{delivery_id}",
    }
    for short, full in placeholders.items():
        walked = {(method, path.replace(short, full)) for method, path in walked}
    routes = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/api/v1/tenants") and "invitations" not in path
        for method in operations
    }
    assert routes == walked


def test_the_matrix_is_the_one_of_the_design() -> None:
    """DESIGN.md's tables, spelled out: a change to roles.py must be a change to the design."""
    o, a, m, v = TenantRole
    assert {
        TenantAction.READ: {o, a, m, v},
        TenantAction.MANAGE: {o, a},
        TenantAction.DELETE: {o},
        TenantAction.EXPORT: {o},
        TenantAction.MANAGE_MEMBERS: {o, a},
        TenantAction.CREATE_PROJECT: {o, a, m},
        TenantAction.SEE_ALL_PROJECTS: {o, a},
    } == TENANT_PERMISSIONS
    po, pe, pv = ProjectRole
    assert {
        ProjectAction.READ: {po, pe, pv},
        ProjectAction.EDIT: {po, pe},
        ProjectAction.MANAGE: {po},
    } == PROJECT_PERMISSIONS
    assert {a: po, m: pe, v: pv} == CLIENT_PROJECT_ROLE
    assert effective_project_role(a, None) is po
    assert effective_project_role(v, pe) is pv
    assert effective_project_role(m, None) is None
