"""Tenant and membership operations. Services take the session and never commit.

Each function that acts for a `TenantCaller` decides here whether the caller may (the matrix of
`tenants.roles`, and the rules that depend on the data: the last owner, admins and owners) and
records its audit event, so that the API and the admin panel get the same decision and the same
event. The few that take an `Actor` instead act on an authority decided elsewhere: an accepted
invitation (`add_member`), the platform admin (`set_tenant_status`), any signed-in user
(`create_tenant`).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.audit import Actor, apply_changes
from backend.core.conditional import (
    ANY_VERSION,
    Preconditions,
    delete_at_version,
    entity_tag,
    flush_at_version,
    flush_unique,
)
from backend.core.database import utcnow
from backend.core.errors import Conflict, Forbidden, NotFound
from backend.core.pagination import PageRequest, fetch_page
from backend.core.statements import AnySelect
from backend.identity.models import User
from tenants.access import TENANT_NOT_FOUND
from tenants.audit import record_audit
from tenants.caller import TenantCaller
from tenants.isolation import TenantMismatch, cross_tenant_rows, current_tenant_id, enter_tenant
from tenants.models import USER_TENANTS, Membership, Tenant, TenantStatus
from tenants.roles import TenantAction, TenantRole, may_assign_role
from tenants.schemas import MemberOut, MembershipSummary, TenantOut

MEMBER_NOT_FOUND = "No member of this tenant has this id."
_RANK = {TenantRole.VIEWER: 0, TenantRole.MEMBER: 1, TenantRole.ADMIN: 2, TenantRole.OWNER: 3}
SLUG_TAKEN = "This slug is taken."

# Work that must happen before a membership row goes, registered by the layers above (the
# projects layer unassigns the member's tasks): the tenants layer cannot import them.
MemberCleanup = Callable[[AsyncSession, uuid.UUID], Awaitable[None]]
_member_cleanups: list[MemberCleanup] = []


def before_member_removed(cleanup: MemberCleanup) -> MemberCleanup:
    """Register `cleanup(session, user_id)`, run in the tenant's context before a removal."""
    _member_cleanups.append(cleanup)
    return cleanup


# Work that must follow any loss of rights in a tenant (a demotion, a removal, in the tenant or
# one of its projects), registered by the layers above: the invitations layer revokes what the
# person may no longer have sent.
RolesChanged = Callable[[AsyncSession, Actor, uuid.UUID], Awaitable[None]]
_roles_changed_hooks: list[RolesChanged] = []


def after_roles_changed(hook: RolesChanged) -> RolesChanged:
    """Register `hook(session, actor, user_id)`, run in the tenant's context after the user's
    tenant or project role changed, or they left."""
    _roles_changed_hooks.append(hook)
    return hook


async def roles_changed(session: AsyncSession, actor: Actor, user_id: uuid.UUID) -> None:
    for hook in _roles_changed_hooks:
        await hook(session, actor, user_id)


async def ensure_tenant_context(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Enter `tenant_id` unless already there; refuse to switch silently from another tenant."""
    current = current_tenant_id(session)
    if current is None:
        await enter_tenant(session, tenant_id)
    elif current != tenant_id:
        raise TenantMismatch("the session is scoped to another tenant")


# `memberships_of_user`'s statement for each database (the cross-tenant read differs), built
# once: `GET /users/me` runs it on every call, and building it cost as much as running it.
_MEMBERSHIPS_OF_USER: dict[str, AnySelect] = {}


async def memberships_of_user(session: AsyncSession, user_id: uuid.UUID) -> list[MembershipSummary]:
    """Every tenant the user belongs to: the one read that spans tenants by design."""
    dialect = session.get_bind().dialect.name
    statement = _MEMBERSHIPS_OF_USER.get(dialect)
    if statement is None:
        mine = cross_tenant_rows(session, USER_TENANTS, bindparam("membership_user_id"))
        statement = _MEMBERSHIPS_OF_USER[dialect] = (
            select(mine.c.tenant_id, Tenant.name, mine.c.role)
            .join(Tenant, Tenant.id == mine.c.tenant_id)
            .order_by(Tenant.name, Tenant.id)
        )
    rows = (await session.execute(statement, {"membership_user_id": user_id})).all()
    return [MembershipSummary(tenant_id=t, tenant_name=n, role=r) for t, n, r in rows]


async def tenants_of_user(
    session: AsyncSession, user_id: uuid.UUID, page: PageRequest
) -> tuple[list[tuple[Tenant, TenantRole]], str | None]:
    """A page of the user's tenants with their role in each, oldest tenant first."""
    mine = cross_tenant_rows(session, USER_TENANTS, user_id)
    statement = select(Tenant, mine.c.role).join(mine, mine.c.tenant_id == Tenant.id)
    rows, cursor = await fetch_page(
        session,
        statement,
        Tenant.created_at,
        Tenant.id,
        page,
        key=lambda row: (row[0].created_at, row[0].id),
    )
    return [(tenant, role) for tenant, role in rows], cursor


async def _flush_unique_slug(
    session: AsyncSession, precondition: Preconditions = ANY_VERSION
) -> None:
    # The slug is the tenants table's one unique column.
    await flush_unique(session, SLUG_TAKEN, precondition)


async def create_tenant(
    session: AsyncSession, actor: Actor, name: str, slug: str, *, owner_id: uuid.UUID | None
) -> Tenant:
    """A new tenant, with `owner_id` as its first owner (any signed-in user may create one);
    None when a platform admin creates it for others to join. The session enters it."""
    tenant = Tenant(id=uuid.uuid4(), name=name, slug=slug, status=TenantStatus.ACTIVE)
    session.add(tenant)
    await _flush_unique_slug(session)
    await enter_tenant(session, tenant.id)
    if owner_id is not None:
        session.add(Membership(user_id=owner_id, role=TenantRole.OWNER))
    record_audit(
        session, actor, "tenant.created", "tenant", tenant.id, {"name": name, "slug": slug}
    )
    await session.flush()
    return tenant


def tenant_out(tenant: Tenant, role: TenantRole) -> TenantOut:
    return TenantOut(
        id=tenant.id,
        slug=tenant.slug,
        name=tenant.name,
        status=tenant.status,
        purge_after=tenant.purge_after,
        created_at=tenant.created_at,
        role=role,
    )


def tenant_tag(tenant: Tenant, role: TenantRole) -> str:
    """The entity tag of the tenant as a caller with `role` is shown it."""
    return entity_tag(tenant.version, tenant_out(tenant, role))


def read_tenant(caller: TenantCaller) -> Tenant:
    """The caller's tenant (every member may read it)."""
    caller.require(TenantAction.READ)
    return caller.tenant


async def update_tenant(
    session: AsyncSession,
    caller: TenantCaller,
    *,
    name: str | None,
    slug: str | None,
    precondition: Preconditions = ANY_VERSION,
) -> Tenant:
    """Rename the tenant or change its slug (owners and admins)."""
    caller.require(TenantAction.MANAGE)
    tenant = caller.tenant
    precondition.require_match(tenant_tag(tenant, caller.role))
    sent = {field: value for field, value in (("name", name), ("slug", slug)) if value is not None}
    changes = apply_changes(tenant, sent)
    if not changes:
        return tenant
    record_audit(session, caller.actor, "tenant.updated", "tenant", tenant.id, changes)
    await _flush_unique_slug(session, precondition)
    return tenant


async def set_tenant_status(
    session: AsyncSession, tenant_id: uuid.UUID, status: TenantStatus, actor: Actor
) -> Tenant:
    """Suspend or reactivate a tenant (the admin panel); a suspended tenant's API answers 403."""
    await ensure_tenant_context(session, tenant_id)
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(TENANT_NOT_FOUND)
    if tenant.status is not status:
        previous, tenant.status = tenant.status, status
        data = {"status": {"from": previous.value, "to": status.value}}
        action = "tenant.suspended" if status is TenantStatus.SUSPENDED else "tenant.reactivated"
        record_audit(session, actor, action, "tenant", tenant_id, data)
        await session.flush()
    return tenant


def _member_statement() -> AnySelect:
    return select(
        Membership.user_id, User.email, User.full_name, Membership.role, Membership.created_at
    ).join(User, User.id == Membership.user_id)


def member_tag(membership: Membership, member: MemberOut) -> str:
    return entity_tag(membership.version, member)


async def read_member(
    session: AsyncSession, caller: TenantCaller, user_id: uuid.UUID
) -> tuple[MemberOut, str]:
    """One member of the tenant, with its entity tag."""
    caller.require(TenantAction.READ)
    membership, email, full_name = await _member_row(session, user_id)
    member = _member_out(membership, email, full_name)
    return member, member_tag(membership, member)


async def _member_row(session: AsyncSession, user_id: uuid.UUID) -> tuple[Membership, str, str]:
    statement = (
        select(Membership, User.email, User.full_name)
        .join(User, User.id == Membership.user_id)
        .where(Membership.user_id == user_id)
    )
    row = (await session.execute(statement)).first()
    if row is None:
        raise NotFound(MEMBER_NOT_FOUND)
    membership, email, full_name = row
    return membership, email, full_name


def _member_out(membership: Membership, email: str, full_name: str) -> MemberOut:
    return MemberOut(
        user_id=membership.user_id,
        email=email,
        full_name=full_name,
        role=membership.role,
        created_at=membership.created_at,
    )


async def list_members(
    session: AsyncSession, caller: TenantCaller, page: PageRequest
) -> tuple[list[MemberOut], str | None]:
    """A page of the tenant's members, in the order they joined."""
    caller.require(TenantAction.READ)
    rows, cursor = await fetch_page(
        session, _member_statement(), Membership.created_at, Membership.user_id, page
    )
    return [MemberOut.model_validate(row, from_attributes=True) for row in rows], cursor


async def add_member(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID, role: TenantRole, actor: Actor
) -> Membership:
    """Make `user_id` a member of the tenant with `role` (accepting an invitation does this).

    Idempotent: an existing membership is returned as it is, its role unchanged (an invitation
    never silently promotes or demotes). The authority is the invitation, checked when it was
    made; `grant_membership` is the same for a caller who adds someone directly.
    """
    await ensure_tenant_context(session, tenant_id)
    existing = await session.scalar(select(Membership).where(Membership.user_id == user_id))
    if existing is not None:
        return existing
    user = await session.get(User, user_id)  # in the session already where the caller has it
    if user is None:
        raise NotFound("No account has this id.")
    membership = Membership(user_id=user_id, role=role, created_at=utcnow())
    session.add(membership)
    member = _member_out(membership, user.email, user.full_name)
    data = {"role": role.value}
    record_audit(session, actor, "member.added", "user", user_id, data, event=member)
    await session.flush()
    return membership


async def grant_membership(
    session: AsyncSession, caller: TenantCaller, user_id: uuid.UUID, role: TenantRole
) -> Membership:
    """Add an existing account to the tenant with `role`, as `caller` (the admin panel)."""
    _require_may_assign(caller, None, role)
    if await session.get(User, user_id) is None:
        raise NotFound("No account has this id.")
    return await add_member(session, caller.tenant_id, user_id, role, caller.actor)


async def _ensure_another_owner(session: AsyncSession, user_id: uuid.UUID) -> None:
    """409 unless an owner other than `user_id` remains.

    The owners are read through a write that changes nothing: it takes the lock on every
    database (SQLite ignores FOR UPDATE), so two owners leaving at once are served one by one
    and the second sees that it would be the last.
    """
    owners = await session.scalars(
        update(Membership)
        .where(Membership.role == TenantRole.OWNER)
        .values(role=Membership.role)
        .returning(Membership.user_id)
    )
    if not set(owners) - {user_id}:
        raise Conflict("A tenant keeps at least one owner: make someone else owner first.")


def _require_may_assign(
    caller: TenantCaller, current: TenantRole | None, new: TenantRole | None
) -> None:
    caller.require(TenantAction.MANAGE_MEMBERS)
    if not may_assign_role(caller.role, current, new):
        raise Forbidden(
            f"Your role ({caller.role}) may not change an owner's membership nor grant owner."
        )


async def change_member_role(
    session: AsyncSession,
    caller: TenantCaller,
    user_id: uuid.UUID,
    role: TenantRole,
    *,
    precondition: Preconditions = ANY_VERSION,
) -> tuple[MemberOut, str]:
    """Change a member's role; the answer (the member and its new entity tag) is built from
    the row the change read and wrote, so nothing is read back."""
    caller.require(TenantAction.MANAGE_MEMBERS)
    membership, email, full_name = await _member_row(session, user_id)
    before = _member_out(membership, email, full_name)
    precondition.require_match(member_tag(membership, before))
    previous = membership.role
    _require_may_assign(caller, previous, role)
    after = before.model_copy(update={"role": role})
    if previous is not role:
        if previous is TenantRole.OWNER:
            await _ensure_another_owner(session, user_id)
        membership.role = role
        data = {"role": {"from": previous.value, "to": role.value}}
        record_audit(
            session, caller.actor, "member.role_changed", "user", user_id, data, event=after
        )
        await flush_at_version(session, precondition)
        if _RANK[role] < _RANK[previous]:  # a promotion takes no right away
            await roles_changed(session, caller.actor, user_id)
    return after, member_tag(membership, after)


async def remove_member(
    session: AsyncSession,
    caller: TenantCaller,
    user_id: uuid.UUID,
    *,
    precondition: Preconditions = ANY_VERSION,
) -> None:
    """Remove a member, or let the caller leave (`user_id` is theirs); never the last owner.

    Their project memberships go with it (ON DELETE CASCADE), and the registered cleanups run
    first (their tasks are unassigned).
    """
    leaving = caller.user_id == user_id
    if not leaving:
        caller.require(TenantAction.MANAGE_MEMBERS)
    membership, email, full_name = await _member_row(session, user_id)
    member = _member_out(membership, email, full_name)
    if precondition.expects_version:
        precondition.require_match(member_tag(membership, member))
    role, version = membership.role, membership.version
    if not leaving:
        _require_may_assign(caller, role, None)
    if role is TenantRole.OWNER:
        await _ensure_another_owner(session, user_id)
    for cleanup in _member_cleanups:
        await cleanup(session, user_id)
    where = Membership.user_id == user_id
    await delete_at_version(session, Membership, where, version, precondition)
    action = "member.left" if leaving else "member.removed"
    data = {"role": role.value}
    # Leaving is a removal to the tenant's other systems: one event type for both.
    record_audit(
        session,
        caller.actor,
        action,
        "user",
        user_id,
        data,
        event=member,
        event_type="member.removed",
    )
    await roles_changed(session, caller.actor, user_id)
