"""The ORM filter fails closed for every kind of statement, on SQLite (where it is the only layer
under the dependencies) as on PostgreSQL: Core tables get the tenant filter or are refused, no
statement writes into or moves rows to another tenant, and SQL text naming a tenant table is
refused. Reading across tenants takes the listed ways only (tests/test_cross_tenant_callers.py).
"""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI
from sqlalchemy import (
    bindparam,
    column,
    delete,
    func,
    insert,
    literal_column,
    select,
    table,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from backend.identity.models import User
from backend.projects.models import Project, Task
from tenants.isolation import (
    PlatformWriteRefused,
    TenantContextMissing,
    TenantMismatch,
    cross_tenant_rows,
    enter_tenant,
    platform_session,
)
from tenants.models import USER_TENANTS, Membership, Tenant
from tenants.roles import ProjectRole, TenantRole
from tenants.statements import UnscopableStatement
from tests.world import TenantWorld, build_tenant

MEMBERSHIPS = Membership.__table__
PROJECTS = Project.__table__
TASKS = Task.__table__


@pytest.fixture
async def acme_and_globex(db: AsyncSession) -> tuple[TenantWorld, TenantWorld]:
    acme = await build_tenant(db, "acme", members={"ada": TenantRole.OWNER})
    globex = await build_tenant(db, "globex", members={"gus": TenantRole.OWNER})
    await globex.add_member(db, "ada", TenantRole.VIEWER, user=acme.users["ada"])
    for world, owner in ((acme, "ada"), (globex, "gus")):
        await world.add_project(db, "Launch", members={owner: ProjectRole.OWNER})
        await world.add_task(db, "Launch", assignee=owner)
    return acme, globex


@pytest.fixture
async def in_acme(
    db: AsyncSession, acme_and_globex: tuple[TenantWorld, TenantWorld]
) -> tuple[AsyncSession, TenantWorld, TenantWorld]:
    await enter_tenant(db, acme_and_globex[0].id)
    return db, *acme_and_globex


@pytest.mark.parametrize(
    "statement",
    [
        select(MEMBERSHIPS.c.tenant_id),
        select(MEMBERSHIPS).with_only_columns(MEMBERSHIPS.c.tenant_id),
        select(MEMBERSHIPS.alias("m").c.tenant_id),
        select(TASKS.c.tenant_id).join_from(
            PROJECTS,
            TASKS,
            (TASKS.c.tenant_id == PROJECTS.c.tenant_id) & (TASKS.c.project_id == PROJECTS.c.id),
        ),
        select(MEMBERSHIPS.c.tenant_id)
        .select_from(Tenant)
        .outerjoin(MEMBERSHIPS, MEMBERSHIPS.c.tenant_id == Tenant.id),
        select(Project.tenant_id).join(TASKS, TASKS.c.project_id == Project.id),
        select(Task.tenant_id),  # the hot path's column selects
        select(Membership.tenant_id).where(Membership.user_id.in_(select(Membership.user_id))),
    ],
    ids=["table", "table-columns", "alias", "join", "outer-join", "orm-join-core", "orm", "orm-in"],
)
async def test_core_selects_see_only_the_contexts_tenant(
    in_acme: tuple[AsyncSession, TenantWorld, TenantWorld], statement: object
) -> None:
    db, acme, _ = in_acme
    tenants = set((await db.execute(statement)).scalars()) - {None}  # type: ignore[call-overload]
    assert tenants == {acme.id}


async def test_core_statements_without_a_context_are_refused(
    db: AsyncSession, acme_and_globex: tuple[TenantWorld, TenantWorld]
) -> None:
    for statement in (
        select(MEMBERSHIPS),
        update(PROJECTS).values(name="x"),
        delete(TASKS),
        insert(PROJECTS).values(id=uuid.uuid4(), name="x", description=""),
    ):
        with pytest.raises(TenantContextMissing):
            await db.execute(statement)
        await db.rollback()


async def test_core_tables_where_no_filter_fits_are_refused(
    in_acme: tuple[AsyncSession, TenantWorld, TenantWorld],
) -> None:
    db, *_ = in_acme
    hidden = select(MEMBERSHIPS.c.tenant_id).scalar_subquery()
    for statement in (
        select(Tenant.id).where(Tenant.id.in_(select(MEMBERSHIPS.c.tenant_id))),
        select(func.count()).select_from(select(TASKS).subquery()),
        select(Tenant.id).where(Tenant.id == hidden),
        # the same table as an ORM entity outside and as a Core table inside
        select(Membership.tenant_id).where(Membership.user_id.in_(select(MEMBERSHIPS.c.user_id))),
        select(Task).where(Task.id.in_(select(TASKS.c.id))),
        update(Task).where(Task.id.in_(select(TASKS.c.id))).values(title="x"),
        insert(PROJECTS).from_select(
            ["tenant_id", "id"], select(PROJECTS.c.tenant_id, PROJECTS.c.id)
        ),
    ):
        with pytest.raises(UnscopableStatement):
            await db.execute(statement)


async def test_core_writes_touch_only_the_contexts_tenant(
    app: FastAPI, in_acme: tuple[AsyncSession, TenantWorld, TenantWorld]
) -> None:
    db, acme, globex = in_acme
    renamed = await db.execute(update(PROJECTS).values(name="renamed"))
    deleted = await db.execute(delete(TASKS))
    assert (renamed.rowcount, deleted.rowcount) == (1, 1)  # type: ignore[attr-defined]
    await db.execute(insert(PROJECTS).values(id=uuid.uuid4(), name="stamped", description=""))
    await db.execute(
        insert(PROJECTS),
        [{"id": uuid.uuid4(), "name": "many", "description": "", "tenant_id": acme.id}],
    )
    await db.commit()
    async with platform_session(app.state.database) as platform:
        rows = (await platform.execute(select(Project.tenant_id, Project.name))).all()
        tasks = (await platform.execute(select(Task.tenant_id))).scalars().all()
    assert sorted(rows, key=str) == sorted(
        [(acme.id, "renamed"), (acme.id, "stamped"), (acme.id, "many"),
         (globex.id, "globex Launch")], key=str,
    )  # fmt: skip
    assert tasks == [globex.id]


@pytest.mark.parametrize(
    "statement",
    [
        "orm-insert-values",
        "core-insert-values",
        "core-insert-parameters",
        "orm-update-moves",
        "core-update-moves",
    ],
)
async def test_no_statement_writes_into_or_moves_to_another_tenant(
    in_acme: tuple[AsyncSession, TenantWorld, TenantWorld], statement: str
) -> None:
    db, _, globex = in_acme
    row = {"id": uuid.uuid4(), "name": "planted", "description": "", "tenant_id": globex.id}
    attempts = {
        "orm-insert-values": lambda: db.execute(insert(Project).values(**row)),
        "core-insert-values": lambda: db.execute(insert(PROJECTS).values(**row)),
        "core-insert-parameters": lambda: db.execute(insert(PROJECTS), [row]),
        "orm-update-moves": lambda: db.execute(update(Project).values(tenant_id=globex.id)),
        "core-update-moves": lambda: db.execute(update(PROJECTS).values(tenant_id=globex.id)),
    }
    with pytest.raises(TenantMismatch):
        await attempts[statement]()


@pytest.mark.parametrize(
    "statement",
    [
        text("SELECT count(*) FROM memberships"),
        text("select * from Tasks where 1 = 1"),
        select(literal_column("count(*)")).select_from(text("projects")),
        select(table("invitations", column("tenant_id"))),
        select(literal_column("audit_events.action")),
    ],
    ids=["text", "text-case", "text-from", "lightweight-table", "literal-column"],
)
async def test_sql_text_naming_a_tenant_table_is_refused_even_in_a_context(
    in_acme: tuple[AsyncSession, TenantWorld, TenantWorld], statement: object
) -> None:
    db, *_ = in_acme
    with pytest.raises(UnscopableStatement):
        await db.execute(statement)  # type: ignore[call-overload]


async def test_sql_text_naming_no_tenant_table_runs(db: AsyncSession) -> None:
    assert await db.scalar(text("SELECT 1")) == 1
    assert await db.scalar(text("SELECT count(*) FROM tenants")) == 0


async def test_a_users_own_tenants_are_read_across_tenants_without_a_context(
    db: AsyncSession, acme_and_globex: tuple[TenantWorld, TenantWorld]
) -> None:
    acme, globex = acme_and_globex
    mine = cross_tenant_rows(db, USER_TENANTS, acme.users["ada"].id)
    rows = (await db.execute(select(mine.c.tenant_id, mine.c.role))).all()
    assert set(rows) == {(acme.id, TenantRole.OWNER), (globex.id, TenantRole.VIEWER)}


async def test_the_platform_session_reads_every_tenant_and_writes_nothing(
    app: FastAPI, acme_and_globex: tuple[TenantWorld, TenantWorld]
) -> None:
    acme, globex = acme_and_globex
    async with platform_session(app.state.database) as platform:
        projects = (await platform.scalars(select(Project))).all()
        assert {project.tenant_id for project in projects} == {acme.id, globex.id}
        projects[0].name = "changed"
        with pytest.raises(PlatformWriteRefused):
            await platform.flush()
        await platform.rollback()
        with pytest.raises(PlatformWriteRefused):
            await platform.execute(update(Project).values(name="changed"))
        with pytest.raises(UnscopableStatement):
            await platform.execute(text("SELECT count(*) FROM projects"))


async def test_an_orm_subquery_of_a_tenant_table_is_scoped_inside_a_global_query(
    in_acme: tuple[AsyncSession, TenantWorld, TenantWorld],
) -> None:
    db, acme, _ = in_acme
    members = select(User.email).where(User.id.in_(select(Membership.user_id)))
    assert set(await db.scalars(members)) == {acme.users["ada"].email}


async def test_a_statement_built_once_is_scoped_to_each_executions_tenant(
    db: AsyncSession, acme_and_globex: tuple[TenantWorld, TenantWorld]
) -> None:
    """The filter builds a statement's scoped form once, with the tenant as a parameter given
    at each execution: the same statement object reads each context's rows, and only those."""
    tenant_ids = [world.id for world in acme_and_globex]
    built_once = select(Task.tenant_id).where(Task.title != bindparam("title"))
    seen = []
    for tenant_id in tenant_ids:
        await enter_tenant(db, tenant_id)
        seen.append(set((await db.execute(built_once, {"title": "none"})).scalars()))
    assert seen == [{tenant_id} for tenant_id in tenant_ids]
