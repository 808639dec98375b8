"""An account's own export, and its erasure.

Both reach across tenants only in the two sanctioned ways: the SECURITY DEFINER functions of
the migrations (`user_tenants`, `actor_audit_events`, `actor_platform_audit_events`,
`erase_audit_actor`), and tenant by tenant inside each tenant's context. No FastAPI here.

What erasure leaves: audit events keep what happened, with an anonymous id wherever the account's
id or email stood (actor, target, or any string of `data`); so do the outbox's events (what
webhooks carry), whose members also lose their name. Invitations the person sent and that
are still pending are revoked, as when anyone leaves a tenant: nobody stands behind them any
more. Invitations addressed to their email are the tenant's own offers and stay as they are:
revoking them would tell the tenant that the person had an account and erased it.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Text, cast, delete, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.audit import Actor
from backend.core.database import utcnow
from backend.core.errors import BadRequest, Conflict, Forbidden
from backend.core.secrets import is_secret_name
from backend.identity import service as identity_service
from backend.identity.audit import record_platform_audit
from backend.identity.models import AdminSession, ApiKey, PlatformAuditEvent, RefreshToken, User
from backend.identity.passwords import Passwords
from backend.projects.models import Project, ProjectMember
from backend.projects.service import unassign_tasks_of_leaving_member
from tenants import service as tenancy
from tenants.idempotency import IdempotencyKey
from tenants.isolation import CrossTenantRead, cross_tenant_rows, enter_tenant, leave_tenant_sync
from tenants.models import AuditEvent, Membership, Tenant
from tenants.outbox import OutboxEvent
from tenants.roles import TenantRole

# The audit events a person acted in, whatever the tenant: their export.
ACTOR_AUDIT_EVENTS = CrossTenantRead(
    "actor_audit_events",
    AuditEvent.__table__,
    by="actor_user_id",
    columns=("tenant_id", "id", "action", "target_type", "target_id", "data", "created_at"),
)
# The platform audit events they acted in (the app role may only insert into that log).
ACTOR_PLATFORM_AUDIT_EVENTS = CrossTenantRead(
    "actor_platform_audit_events",
    PlatformAuditEvent.__table__,
    by="actor_user_id",
    columns=("id", "action", "target_type", "target_id", "data", "created_at"),
)
INCORRECT_PASSWORD = "The password is not correct."  # noqa: S105 (a message)
LAST_OWNER = (
    "You are the last owner of {tenants}: make someone else owner there, or delete the tenant, "
    "before erasing your account."
)


class IncorrectPassword(BadRequest):
    """A wrong password: a failed attempt for the sign-in throttle."""


def _public_columns(row: Any) -> dict[str, Any]:
    """The row's columns, less any named like a secret or what verifies one."""
    table = row.__table__
    return {c.name: getattr(row, c.key) for c in table.columns if not is_secret_name(c.name)}


async def _project_memberships(
    session: AsyncSession, tenant_ids: list[uuid.UUID], user_id: uuid.UUID
) -> list[dict[str, Any]]:
    found = []
    for tenant_id in tenant_ids:
        await enter_tenant(session, tenant_id)
        rows = await session.execute(
            select(ProjectMember.tenant_id, ProjectMember.project_id, Project.name)
            .add_columns(ProjectMember.role, ProjectMember.created_at)
            .join(Project, Project.id == ProjectMember.project_id)
            .where(ProjectMember.user_id == user_id)
            .order_by(ProjectMember.created_at, ProjectMember.project_id)
        )
        found += [dict(row._mapping) for row in rows]
    await session.run_sync(leave_tenant_sync)
    return found


async def export_account(session: AsyncSession, user: User) -> dict[str, Any]:
    """What the service holds about `user`: profile, memberships (tenants and projects), sign-in
    sessions and API keys (never their secrets) and the audit events they acted in."""
    memberships = await tenancy.memberships_of_user(session, user.id)
    refresh = await session.scalars(
        select(RefreshToken).where(RefreshToken.user_id == user.id).order_by(RefreshToken.issued_at)
    )
    keys = await session.scalars(
        select(ApiKey).where(ApiKey.user_id == user.id).order_by(ApiKey.created_at, ApiKey.id)
    )
    panel = await session.scalars(
        select(AdminSession)
        .where(AdminSession.user_id == user.id)
        .order_by(AdminSession.created_at)
    )
    mine = cross_tenant_rows(session, ACTOR_AUDIT_EVENTS, user.id)
    events = await session.execute(select(mine).order_by(mine.c.created_at, mine.c.id))
    on_platform = cross_tenant_rows(session, ACTOR_PLATFORM_AUDIT_EVENTS, user.id)
    platform_events = await session.execute(
        select(on_platform).order_by(on_platform.c.created_at, on_platform.c.id)
    )
    return {
        "profile": _public_columns(user),
        "memberships": [m.model_dump() for m in memberships],
        "project_memberships": await _project_memberships(
            session, [m.tenant_id for m in memberships], user.id
        ),
        "sessions": [_public_columns(token) for token in refresh],
        "panel_sessions": [_public_columns(panel_session) for panel_session in panel],
        "api_keys": [_public_columns(key) for key in keys],
        "audit_events": [dict(row._mapping) for row in events],
        "platform_audit_events": [dict(row._mapping) for row in platform_events],
    }


async def revoke_all_credentials(session: AsyncSession, user: User) -> None:
    """Every credential the account holds, in one place: sign-in sessions (refresh-token
    families), access tokens issued until now, admin panel sessions and personal API keys."""
    await identity_service.end_every_session(session, user)
    await session.execute(
        update(ApiKey)
        .where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


async def _last_owned(session: AsyncSession, tenants: list[tuple[uuid.UUID, str]]) -> list[str]:
    """The names of the tenants among `tenants` (owned by the caller) that have no other owner."""
    alone = []
    for tenant_id, name in tenants:
        await enter_tenant(session, tenant_id)
        owners = await session.scalar(
            select(func.count()).where(Membership.role == TenantRole.OWNER)
        )
        if owners == 1:
            alone.append(name)
    return alone


async def _leave_tenant(session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID) -> None:
    await enter_tenant(session, tenant_id)
    await unassign_tasks_of_leaving_member(session, user_id)
    await session.execute(delete(ProjectMember).where(ProjectMember.user_id == user_id))
    await session.execute(delete(Membership).where(Membership.user_id == user_id))
    # As for anyone who leaves: their pending invitations are revoked (audited as theirs, then
    # made anonymous with the rest).
    await tenancy.roles_changed(session, Actor(user_id=user_id), user_id)
    await session.flush()  # their audit events belong to this tenant


async def _anonymise_audit_events(
    session: AsyncSession, user: User, anonymous_id: uuid.UUID
) -> None:
    """The account's id and email, as actor, target or anywhere in the data of audit events
    and outbox events, become `anonymous_id` (`scrub`); its own `user.updated` events lose the
    name they recorded. The answers kept for its retries (idempotency keys, also those sent
    with its API keys) are deleted."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.erase_audit_actor(user.id, anonymous_id)))
        return
    # SQLite has no row-level security to cross: the same writes, tenant by tenant.
    for tenant_id in (await session.scalars(select(Tenant.id))).all():
        await enter_tenant(session, tenant_id)
        await _erase_from_log(session, AuditEvent, user, anonymous_id)
        await _scrub_data(session, OutboxEvent, user, anonymous_id)
    await session.run_sync(leave_tenant_sync)
    await _erase_from_log(session, PlatformAuditEvent, user, anonymous_id)
    by_its_keys = select(literal("api_key:") + ApiKey.key_hash).where(ApiKey.user_id == user.id)
    await session.execute(
        delete(IdempotencyKey).where(
            or_(
                IdempotencyKey.principal == f"user:{user.id}",
                IdempotencyKey.principal.in_(by_its_keys),
            )
        )
    )


def scrub(value: Any, erased: frozenset[str], by: str) -> Any:
    """`value` (JSON) with every string equal to one of `erased` (case aside) replaced by `by`,
    and the `full_name` of an object holding such a string (a member as the API shows it) null;
    the same rewrite as the PostgreSQL function `scrub_erased` (migration 0010)."""
    if isinstance(value, dict):
        names_them = any(isinstance(v, str) and v.lower() in erased for v in value.values())
        return {
            key: None if names_them and key == "full_name" else scrub(item, erased, by)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [scrub(item, erased, by) for item in value]
    if isinstance(value, str) and value.lower() in erased:
        return by
    return value


async def _erase_from_log(
    session: AsyncSession,
    model: type[AuditEvent] | type[PlatformAuditEvent],
    user: User,
    anonymous_id: uuid.UUID,
) -> None:
    """`erase_audit_actor` of migration 0010, for one log (SQLite)."""
    user_id, anonymous = str(user.id), str(anonymous_id)
    await session.execute(
        update(model)
        .where(model.actor_user_id == user.id)
        .values(actor_user_id=None, anonymous_actor_id=anonymous_id)
    )
    own = await session.execute(
        select(model.id, model.data).where(model.target_type == "user", model.target_id == user_id)
    )
    for event_id, data in own.all():
        if "full_name" in data:
            without_name = {key: item for key, item in data.items() if key != "full_name"}
            await session.execute(
                update(model).where(model.id == event_id).values(data=without_name)
            )
    await session.execute(
        update(model).where(model.target_id == user_id).values(target_id=anonymous)
    )
    await _scrub_data(session, model, user, anonymous_id)


async def _scrub_data(
    session: AsyncSession,
    model: type[AuditEvent] | type[PlatformAuditEvent] | type[OutboxEvent],
    user: User,
    anonymous_id: uuid.UUID,
) -> None:
    """`scrub` on the `data` of the rows of `model` that name the account (SQLite)."""
    erased = frozenset({str(user.id), user.email.lower()})
    as_text = func.lower(cast(model.data, Text))
    naming = await session.execute(
        select(model.id, model.data).where(or_(*(as_text.contains(value) for value in erased)))
    )
    for row_id, data in naming.all():
        scrubbed = scrub(data, erased, str(anonymous_id))
        await session.execute(update(model).where(model.id == row_id).values(data=scrubbed))


async def erase_account(
    session: AsyncSession, passwords: Passwords, user: User, password: str
) -> uuid.UUID:
    """Erase `user`, who confirmed with their password; the anonymous id their audit events now
    carry. 400 for a wrong password, 409 naming the tenants they are the last owner of."""
    matches, _upgraded = await passwords.verify(password, user.password_hash)
    if not matches:
        raise IncorrectPassword(
            INCORRECT_PASSWORD,
            extra={"errors": [{"loc": ["body", "password"], "msg": "incorrect"}]},
        )
    if user.is_superuser:
        raise Forbidden("A platform admin's account is erased only after the right is revoked.")
    memberships = await tenancy.memberships_of_user(session, user.id)
    owned = [(m.tenant_id, m.tenant_name) for m in memberships if m.role == TenantRole.OWNER]
    if alone := await _last_owned(session, owned):
        raise Conflict(LAST_OWNER.format(tenants=", ".join(sorted(alone))))
    await revoke_all_credentials(session, user)
    for membership in memberships:
        await _leave_tenant(session, membership.tenant_id, user.id)
    await session.run_sync(leave_tenant_sync)
    anonymous_id = uuid.uuid4()
    await _anonymise_audit_events(session, user, anonymous_id)
    record_platform_audit(session, Actor(), "user.erased", "user", anonymous_id)
    await session.flush()
    session.expunge(user)
    await session.execute(delete(User).where(User.id == user.id))
    return anonymous_id
