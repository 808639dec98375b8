"""Proof of isolation: random API operations, with ids from every tenant, never cross tenants.

Hypothesis draws sequences of calls by users (some in two tenants with different roles) and
service clients, each aimed at one tenant's path but with project, task, user and client ids
drawn from all tenants. After every call:

- the answer names nothing of another tenant (no id, no marker from its names);
- no other tenant's rows changed (compared in full, read past RLS as the superuser);
- a caller outside the path's tenant got 404 (401 for a revoked client) and changed nothing.

It runs on both databases. On PostgreSQL it runs a second time with the ORM filter removed, to
show that row-level security alone keeps tenants apart.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import event as hypothesis_event
from hypothesis import strategies as st
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from backend.core.database import AppSession
from backend.identity.models import ClientRole, OAuthClient, User
from backend.models import metadata
from backend.projects.models import Project
from tenants import isolation
from tenants.models import Tenant
from tenants.roles import ProjectRole, TenantRole
from tests.conftest import _reset_data
from tests.factories import UserFactory, persist
from tests.world import TenantWorld, build_tenant

TENANT_TABLES = [table for table in metadata.sorted_tables if "tenant_id" in table.c]
MEMBERSHIPS = {  # tenant index -> person -> role; "dana" and "eric" belong to two tenants
    0: {"ann": TenantRole.OWNER, "dana": TenantRole.MEMBER, "eric": TenantRole.ADMIN},
    1: {"bob": TenantRole.OWNER, "dana": TenantRole.VIEWER, "eric": TenantRole.MEMBER},
    2: {"cyd": TenantRole.OWNER},
}
PEOPLE = ["ann", "bob", "cyd", "dana", "eric"]
CLIENTS = ["robot0", "robot1", "robot2"]  # robot<i> is tenant i's admin client


@dataclass
class Universe:
    """Three tenants, their people and robots, and what each tenant owns."""

    worlds: list[TenantWorld]
    people: dict[str, User]
    markers: list[str]
    owned: list[set[str]] = field(default_factory=list)  # ids no other tenant may see
    project_of_task: dict[str, uuid.UUID] = field(default_factory=dict)

    def pick(self, kind: str, index: int) -> str:
        pools = {
            "project": [str(p.id) for w in self.worlds for p in w.projects.values()],
            "task": [str(t.id) for w in self.worlds for t in w.tasks],
            "user": [str(u.id) for u in self.people.values()] + [str(uuid.uuid4())],
            "client": [c.client_id for w in self.worlds for c in w.clients.values()],
        }
        pool = pools[kind]
        return pool[index % len(pool)]

    def headers(self, app: FastAPI, actor: str) -> dict[str, str]:
        if actor in CLIENTS:
            return self.worlds[int(actor[-1])].headers(app, actor)
        return next(w.headers(app, actor) for w in self.worlds if actor in w.users)


async def build_universe(db: AsyncSession) -> Universe:
    run = uuid.uuid4().hex[:8]
    markers = [f"mk{index}x{run}" for index in range(3)]
    # Neutral emails: a person of two tenants must not carry a tenant's marker.
    people = {name: UserFactory(email=f"{name}.{run}@example.com") for name in PEOPLE}
    await persist(db, *people.values())
    worlds = []
    for index, marker in enumerate(markers):
        world = await build_tenant(db, marker)
        for name, role in MEMBERSHIPS[index].items():
            await world.add_member(db, name, role, user=people[name])
        await world.add_client(db, f"robot{index}", ClientRole.ADMIN)
        workers = {n: ProjectRole.EDITOR for n, r in MEMBERSHIPS[index].items() if r != "owner"}
        for project in ("alpha", "beta"):
            await world.add_project(db, f"{marker} {project}", members=workers)
            for assignee in (next(iter(workers), None), None):
                await world.add_task(db, f"{marker} {project}", assignee=assignee)
        worlds.append(world)
    universe = Universe(worlds, people, markers)
    universe.owned = [
        {str(w.id)}
        | {str(p.id) for p in w.projects.values()}
        | {str(t.id) for t in w.tasks}
        | {c.client_id for c in w.clients.values()}
        # People of one tenant only: the others' member lists and logs never name them.
        | {str(w.users[name].id) for name in w.users if len(home_tenants(name)) == 1}
        for w in worlds
    ]
    universe.project_of_task = {str(t.id): t.project_id for w in worlds for t in w.tasks}
    return universe


@dataclass(frozen=True)
class Operation:
    actor: str
    tenant: int
    kind: str
    first: int
    second: int
    role: str

    def request(self, universe: Universe) -> tuple[str, str, dict[str, Any] | None]:
        """(method, url, json body) aimed at tenant `tenant`, with ids drawn from all tenants."""
        pick = universe.pick
        base = universe.worlds[self.tenant].url
        project = f"{base}/projects/{pick('project', self.first)}"
        task_id = pick("task", self.second)
        if self.first % 2:  # under the task's own project (still in this path's tenant)
            project = f"{base}/projects/{universe.project_of_task[task_id]}"
        task = f"{project}/tasks/{task_id}"
        name = f"{universe.markers[self.tenant]} renamed"
        assignee = pick("user", self.second) if self.second % 3 else None
        tenant_role = self.role if self.role != "editor" else "member"
        project_role = self.role if self.role in ("owner", "editor", "viewer") else "viewer"
        return {
            "list my tenants": ("GET", "/api/v1/tenants", None),
            "get tenant": ("GET", base, None),
            "rename tenant": ("PATCH", base, {"name": name}),
            "delete tenant": ("DELETE", base, None),
            "list members": ("GET", f"{base}/members", None),
            "change member": (
                "PATCH",
                f"{base}/members/{pick('user', self.first)}",
                {"role": tenant_role},
            ),
            "remove member": ("DELETE", f"{base}/members/{pick('user', self.first)}", None),
            "audit log": ("GET", f"{base}/audit-events", None),
            "list clients": ("GET", f"{base}/clients", None),
            "create client": ("POST", f"{base}/clients", {"name": name, "role": "viewer"}),
            "revoke client": ("DELETE", f"{base}/clients/{pick('client', self.first)}", None),
            "list projects": ("GET", f"{base}/projects", None),
            "create project": ("POST", f"{base}/projects", {"name": name}),
            "get project": ("GET", project, None),
            "rename project": ("PATCH", project, {"name": name}),
            "delete project": ("DELETE", project, None),
            "project members": ("GET", f"{project}/members", None),
            "put project member": (
                "PUT",
                f"{project}/members/{pick('user', self.second)}",
                {"role": project_role},
            ),
            "remove project member": (
                "DELETE",
                f"{project}/members/{pick('user', self.second)}",
                None,
            ),
            "create task": ("POST", f"{project}/tasks", {"title": name, "assignee_id": assignee}),
            "list tasks": (
                "GET",
                f"{project}/tasks",
                {"assignee_id": assignee} if assignee else None,
            ),
            "get task": ("GET", task, None),
            "edit task": ("PATCH", task, {"title": name, "assignee_id": assignee}),
            "delete task": ("DELETE", task, None),
        }[self.kind]


KINDS = [
    "list my tenants",
    "get tenant",
    "rename tenant",
    "delete tenant",
    "list members",
    "change member",
    "remove member",
    "audit log",
    "list clients",
    "create client",
    "revoke client",
    "list projects",
    "create project",
    "get project",
    "rename project",
    "delete project",
    "project members",
    "put project member",
    "remove project member",
    "create task",
    "list tasks",
    "get task",
    "edit task",
    "delete task",
]


def home_tenants(actor: str) -> list[int]:
    if actor in CLIENTS:
        return [int(actor[-1])]
    return [index for index, members in MEMBERSHIPS.items() if actor in members]


@st.composite
def operation(draw: st.DrawFn) -> Operation:
    """Mostly aimed at one of the actor's own tenants, where most of the damage could be done."""
    actor = draw(st.sampled_from(PEOPLE + CLIENTS))
    return Operation(
        actor=actor,
        tenant=draw(st.one_of(st.sampled_from(home_tenants(actor)), st.integers(0, 2))),
        kind=draw(st.sampled_from(KINDS)),
        first=draw(st.integers(0, 10_000)),
        second=draw(st.integers(0, 10_000)),
        role=draw(st.sampled_from(["owner", "admin", "member", "viewer", "editor"])),
    )


operations = st.lists(operation(), min_size=1, max_size=12)


async def snapshot(engine: AsyncEngine, universe: Universe) -> list[list[tuple[str, ...]]]:
    """Every row of each tenant (tenant row, tenant tables, its service clients), read past RLS."""
    tenant_ids = [world.id for world in universe.worlds]
    rows: list[list[tuple[str, ...]]] = [[] for _ in tenant_ids]
    async with engine.connect() as connection:
        for table, tenant_column in [
            (Tenant.__table__, Tenant.__table__.c.id),
            (OAuthClient.__table__, OAuthClient.__table__.c.owner_tenant_id),
            *[(table, table.c.tenant_id) for table in TENANT_TABLES],
        ]:
            result = await connection.execute(
                select(table, tenant_column.label("owner")).where(tenant_column.in_(tenant_ids))
            )
            for row in result:
                rows[tenant_ids.index(row.owner)].append((table.name, *map(str, row)))
    return [sorted(tenant_rows) for tenant_rows in rows]


def is_inside(
    snap: list[list[tuple[str, ...]]], universe: Universe, actor: str, tenant: int
) -> bool:
    """Whether the actor belongs to the tenant at the time of the snapshot."""
    if actor in CLIENTS:
        client_id = universe.worlds[int(actor[-1])].clients[actor].client_id
        return any(
            r[0] == "oauth_clients" and r[1] == client_id and r[8] == "None" for r in snap[tenant]
        )
    user_id = str(universe.people[actor].id)
    return any(r[0] == "memberships" and r[2] == user_id for r in snap[tenant])


def refused_status(snap: list[list[tuple[str, ...]]], universe: Universe, actor: str) -> int:
    """A stranger to a tenant gets 404; a service client that is revoked (or whose tenant is
    gone) is signed in nowhere any more: 401."""
    if actor in CLIENTS and not is_inside(snap, universe, actor, int(actor[-1])):
        return 401
    return 404


def assert_names_no_other_tenant(
    universe: Universe, tenant: int | None, actor: str, text: str
) -> None:
    for other in range(3):
        if other == tenant or (tenant is None and actor in MEMBERSHIPS[other]):
            continue
        assert universe.markers[other] not in text, f"tenant {other}'s names leaked"
        leaked = [owned for owned in universe.owned[other] if owned in text]
        assert not leaked, f"tenant {other}'s ids leaked: {leaked}"


def remember_new_ids(universe: Universe, tenant: int, response: httpx.Response) -> None:
    if response.status_code == 201:
        body = response.json()
        universe.owned[tenant].add(str(body.get("id") or body.get("client_id")))


async def run_operations(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: AsyncSession,
    superuser_engine: AsyncEngine,
    sequence: list[Operation],
) -> None:
    # Each example from an empty database, so that a failure replays (and shrinks) exactly.
    await _reset_data(superuser_engine, superuser_engine.dialect.name)
    universe = await build_universe(db)
    before = await snapshot(superuser_engine, universe)
    for operation in sequence:
        method, url, body = operation.request(universe)
        params = body if method == "GET" else None
        response = await client.request(
            method,
            url,
            json=None if method == "GET" else body,
            params=params,
            headers=universe.headers(app, operation.actor),
        )
        assert response.status_code < 500, response.text
        hypothesis_event(f"answered {response.status_code}")  # --hypothesis-show-statistics
        after = await snapshot(superuser_engine, universe)
        step = f"{operation} -> {response.status_code}"
        if operation.kind == "list my tenants":
            assert after == before, step
            assert_names_no_other_tenant(universe, None, operation.actor, response.text)
            continue
        tenant = operation.tenant
        assert_names_no_other_tenant(universe, tenant, operation.actor, response.text)
        for other in range(3):
            if other != tenant:
                assert after[other] == before[other], f"{step} changed tenant {other}"
        if not is_inside(before, universe, operation.actor, tenant):
            assert response.status_code == refused_status(before, universe, operation.actor), step
            assert after == before, step
        remember_new_ids(universe, tenant, response)
        before = after


ISOLATION_SETTINGS = settings(
    max_examples=25,
    deadline=timedelta(seconds=30),
    database=None,  # no example database written into the work tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@ISOLATION_SETTINGS
@given(sequence=operations)
async def test_no_operation_reads_or_changes_another_tenant(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: AsyncSession,
    superuser_engine: AsyncEngine,
    sequence: list[Operation],
) -> None:
    await run_operations(app, client, db, superuser_engine, sequence)


@pytest.fixture
def orm_filter_off() -> Iterator[None]:
    """Remove isolation layer 2 (the ORM filter) for one test; restored afterwards."""
    listener = isolation._scope_statement_to_tenant
    event.remove(AppSession, "do_orm_execute", listener)
    try:
        yield
    finally:
        event.listen(AppSession, "do_orm_execute", listener)


@pytest.mark.postgres_only
@ISOLATION_SETTINGS
@given(sequence=operations)
async def test_row_level_security_alone_keeps_tenants_apart(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: AsyncSession,
    superuser_engine: AsyncEngine,
    orm_filter_off: None,
    sequence: list[Operation],
) -> None:
    # The filter is really off: a tenant query with no context no longer raises, and RLS
    # answers it with nothing.
    async with app.state.database.session_factory() as session:
        assert (await session.scalars(select(Project))).all() == []
    await run_operations(app, client, db, superuser_engine, sequence)
