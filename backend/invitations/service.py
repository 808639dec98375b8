"""Inviting by email: create, list, resend and revoke. Services take the session, never commit.

Who may invite: tenant owners and admins (admins never to owner, nor manage owner invitations),
and a project's owners into their project, where the tenant role follows from the project role
(viewer for a project viewer, member otherwise). The same rule guards resending and revoking.

Every status change is a compare-and-set (`UPDATE ... WHERE status IN (...)`), so a resend or a
revocation racing an acceptance cannot undo it: see `acceptance.claim`.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.config import Settings
from backend.core.database import utcnow
from backend.core.errors import Conflict, Forbidden, NotFound
from backend.core.mail import Mailer, render_mail
from backend.core.pagination import PageRequest, page_of, paginate
from backend.identity.bootstrap import normalise_email
from backend.identity.models import User
from backend.invitations.details import InvitationDetails, find_details, format_expiry
from backend.invitations.models import Invitation, InvitationStatus
from backend.invitations.tokens import IssuedToken, issue_token
from backend.projects.dependencies import PROJECT_NOT_FOUND
from backend.projects.models import Project, ProjectMember
from tenants.audit import Actor, record_audit
from tenants.models import Membership
from tenants.roles import (
    ProjectAction,
    ProjectRole,
    TenantAction,
    TenantRole,
    may_assign_role,
    project_allows,
)

if TYPE_CHECKING:
    from backend.projects.dependencies import ProjectAccessContext
    from tenants.dependencies import TenantAccessContext

INVITATION_NOT_FOUND = "No such invitation."
ACCEPT_PATH = "/invitations/accept"
# The tenant roles a project owner may hand out along with a project role.
PROJECT_OWNER_GRANTS = frozenset({TenantRole.MEMBER, TenantRole.VIEWER})
_REOPENABLE = (InvitationStatus.PENDING, InvitationStatus.EXPIRED)


def tenant_role_for(project_role: ProjectRole) -> TenantRole:
    """The tenant role a project invitation brings: a project viewer only views the tenant."""
    return TenantRole.VIEWER if project_role is ProjectRole.VIEWER else TenantRole.MEMBER


async def get_invitation(session: AsyncSession, invitation_id: uuid.UUID) -> Invitation:
    """An invitation of the context tenant, without any permission check (the admin panel's)."""
    invitation = await session.scalar(select(Invitation).where(Invitation.id == invitation_id))
    if invitation is None:
        raise NotFound(INVITATION_NOT_FOUND)
    return invitation


async def _caller_project(
    session: AsyncSession, access: TenantAccessContext, project_id: uuid.UUID
) -> tuple[Project, ProjectRole]:
    """The project with the caller's effective role on it; 404 when it does not exist or is not
    theirs."""
    membership = and_(
        ProjectMember.project_id == Project.id,
        ProjectMember.user_id == access.principal.user_id,
    )
    statement = (
        select(Project, ProjectMember.role)
        .outerjoin(ProjectMember, membership)
        .where(Project.id == project_id)
    )
    row = (await session.execute(statement)).one_or_none()
    role = access.project_role(row[1]) if row is not None else None
    if row is None or role is None:
        raise NotFound(PROJECT_NOT_FOUND)
    return row[0], role


async def authorise(
    session: AsyncSession,
    access: TenantAccessContext,
    role: TenantRole,
    project_id: uuid.UUID | None,
    *,
    project_role: ProjectRole | None = None,
) -> None:
    """May the caller invite with `role` (into `project_id`), or manage such an invitation?

    `project_role` is the caller's on that project when already known (ProjectAccess).
    """
    if project_id is not None and project_role is None:
        _, project_role = await _caller_project(session, access, project_id)
    if access.can(TenantAction.MANAGE_MEMBERS):
        if may_assign_role(access.role, None, role):
            return
        raise Forbidden(
            f"Your role ({access.role}) may not invite owners nor manage such invitations."
        )
    if project_id is None:
        access.require(TenantAction.MANAGE_MEMBERS)
    if project_allows(project_role, ProjectAction.MANAGE) and role in PROJECT_OWNER_GRANTS:
        return
    raise Forbidden(f"Your project role ({project_role}) may not invite to this project.")


def _same_target(email: str, project_id: uuid.UUID | None) -> ColumnElement[bool]:
    project = (
        Invitation.project_id.is_(None)
        if project_id is None
        else (Invitation.project_id == project_id)
    )
    return and_(Invitation.email == email, project)


async def _ensure_not_member(
    session: AsyncSession, email: str, project_id: uuid.UUID | None
) -> None:
    user_id = await session.scalar(select(User.id).where(User.email == email))
    if user_id is None:
        return
    if project_id is None:
        found = select(Membership.user_id).where(Membership.user_id == user_id)
        place = "tenant"
    else:
        found = select(ProjectMember.user_id).where(
            ProjectMember.project_id == project_id, ProjectMember.user_id == user_id
        )
        place = "project"
    if await session.scalar(found) is not None:
        raise Conflict(f"{email} is a member of this {place} already.")


async def _ensure_no_other_pending(
    session: AsyncSession, email: str, project_id: uuid.UUID | None
) -> None:
    """409 when a live invitation exists for the same target; lapsed ones are marked expired."""
    now = utcnow()
    target = _same_target(email, project_id)
    await session.execute(
        update(Invitation)
        .where(target, Invitation.status == InvitationStatus.PENDING, Invitation.expires_at <= now)
        .values(status=InvitationStatus.EXPIRED)
        .execution_options(synchronize_session=False)
    )
    pending = select(Invitation.id).where(target, Invitation.status == InvitationStatus.PENDING)
    if await session.scalar(pending) is not None:
        raise Conflict(f"{email} has a pending invitation here already: resend it instead.")


async def _flush_one_pending(session: AsyncSession, email: str) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:  # the partial unique index: the same invitation, concurrently
        raise Conflict(
            f"{email} has a pending invitation here already: resend it instead."
        ) from exc


def _audit_data(invitation: Invitation) -> dict[str, Any]:
    return {
        "email": invitation.email,
        "role": invitation.role.value,
        "project_id": str(invitation.project_id) if invitation.project_id else None,
        "project_role": invitation.project_role.value if invitation.project_role else None,
    }


def _mail_invitation(
    session: AsyncSession,
    details: InvitationDetails,
    token: IssuedToken,
    mailer: Mailer,
    settings: Settings,
) -> None:
    """Queue the mail for after the commit: nothing is sent for work that rolled back, and a
    failed delivery leaves the invitation in place, to be resent."""
    invitation = details.invitation
    link = f"{settings.public_base_url}{ACCEPT_PATH}?{urlencode({'token': token.value})}"
    mail = render_mail(
        invitation.email,
        "invitation",
        inviter=details.inviter_name,
        tenant_name=details.tenant.name,
        project_name=details.project.name if details.project else None,
        role=invitation.role.value,
        project_role=invitation.project_role.value if invitation.project_role else None,
        link=link,
        email=invitation.email,
        expires_on=format_expiry(invitation),
    )
    mailer.send_after_commit(session, mail)


async def create_invitation(
    session: AsyncSession,
    access: TenantAccessContext,
    *,
    email: str,
    role: TenantRole,
    project_id: uuid.UUID | None = None,
    project_role: ProjectRole | None = None,
    mailer: Mailer,
    settings: Settings,
    caller_project_role: ProjectRole | None = None,
    project: Project | None = None,
) -> Invitation:
    """Invite `email` into the tenant (and project), and mail them the link.

    `project` (the one `project_id` names) and `caller_project_role` are passed when already
    loaded (ProjectAccess); otherwise they are read here, in the query that checks the project.
    """
    email = normalise_email(email)
    if project_id is not None and (project is None or caller_project_role is None):
        project, caller_project_role = await _caller_project(session, access, project_id)
    await authorise(session, access, role, project_id, project_role=caller_project_role)
    await _ensure_not_member(session, email, project_id)
    await _ensure_no_other_pending(session, email, project_id)
    token = issue_token(access.tenant_id)
    invitation = Invitation(
        email=email,
        role=role,
        project_id=project_id,
        project_role=project_role,
        token_hash=token.hash,
        status=InvitationStatus.PENDING,
        invited_by=access.principal.user_id,
        expires_at=utcnow() + timedelta(seconds=settings.invitation_ttl_seconds),
    )
    session.add(invitation)
    await _flush_one_pending(session, email)
    data = _audit_data(invitation)
    record_audit(session, access.actor, "invitation.created", "invitation", invitation.id, data)
    # What the mail names is in hand: the tenant and the inviter from the access query, the
    # project from ProjectAccess or `_caller_project`. No need to read them back.
    details = InvitationDetails(invitation, access.tenant, project, access.principal.user)
    _mail_invitation(session, details, token, mailer, settings)
    return invitation


async def create_project_invitation(
    session: AsyncSession,
    access: ProjectAccessContext,
    *,
    email: str,
    project_role: ProjectRole,
    mailer: Mailer,
    settings: Settings,
) -> Invitation:
    """The project owner's way: the tenant role follows from `project_role`."""
    return await create_invitation(
        session,
        access.tenant,
        email=email,
        role=tenant_role_for(project_role),
        project_id=access.project.id,
        project_role=project_role,
        mailer=mailer,
        settings=settings,
        caller_project_role=access.role,
        project=access.project,
    )


async def manageable_invitation(
    session: AsyncSession, access: TenantAccessContext, invitation_id: uuid.UUID
) -> Invitation:
    """The invitation, when the caller may resend or revoke it (404 for another's project)."""
    invitation = await get_invitation(session, invitation_id)
    await authorise(session, access, invitation.role, invitation.project_id)
    return invitation


async def _compare_and_set(
    session: AsyncSession,
    invitation: Invitation,
    expected: tuple[InvitationStatus, ...],
    **values: Any,
) -> bool:
    """Update the row only while its status is still one of `expected`; refresh the object.

    One round trip when it succeeds: the row comes back through RETURNING, and
    `populate_existing` writes it onto `invitation`. When it fails, the object is refreshed so
    that the caller can tell which status won.
    """
    updated = await session.scalar(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.status.in_(expected))
        .values(**values)
        .returning(Invitation)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    if updated is None:
        await session.refresh(invitation)
        return False
    return True


async def resend_invitation(
    session: AsyncSession,
    invitation: Invitation,
    *,
    actor: Actor,
    mailer: Mailer,
    settings: Settings,
) -> Invitation:
    """Mail a new token with a new expiry; the old token stops working at once.

    Works for pending and expired invitations; accepted and revoked ones are 409. The tenant
    context must be the invitation's (the API's TenantAccess, or `enter_tenant` in the admin).
    """
    if invitation.status not in _REOPENABLE:
        raise Conflict(f"This invitation is {invitation.status.value}: invite again instead.")
    await _ensure_not_member(session, invitation.email, invitation.project_id)
    if invitation.status is InvitationStatus.EXPIRED:
        await _ensure_no_other_pending(session, invitation.email, invitation.project_id)
    token = issue_token(invitation.tenant_id)
    expires_at = utcnow() + timedelta(seconds=settings.invitation_ttl_seconds)
    values = {
        "token_hash": token.hash,
        "status": InvitationStatus.PENDING,
        "expires_at": expires_at,
    }
    if not await _compare_and_set(session, invitation, _REOPENABLE, **values):
        raise Conflict(f"This invitation is {invitation.status.value}: invite again instead.")
    record_audit(
        session, actor, "invitation.resent", "invitation", invitation.id, _audit_data(invitation)
    )
    # Read here, not reused: this function has only the invitation (the admin panel calls it
    # without an access context), and the inviter it names is whoever invited first, a user
    # nothing in the request has loaded.
    details = await find_details(session, Invitation.id == invitation.id)
    if details is None:
        raise RuntimeError("an invitation updated in this transaction must be found")
    _mail_invitation(session, details, token, mailer, settings)
    return invitation


async def revoke_invitation(
    session: AsyncSession, invitation: Invitation, *, actor: Actor
) -> Invitation:
    """Kill the invitation's token for good. Revoking twice is harmless; an accepted one is 409.

    The tenant context must be the invitation's, as for `resend_invitation`.
    """
    if invitation.status is InvitationStatus.REVOKED:
        return invitation
    if not await _compare_and_set(
        session, invitation, _REOPENABLE, status=InvitationStatus.REVOKED
    ):
        raise Conflict("This invitation has been accepted: remove the member instead.")
    record_audit(
        session, actor, "invitation.revoked", "invitation", invitation.id, _audit_data(invitation)
    )
    return invitation


async def list_invitations(
    session: AsyncSession,
    access: TenantAccessContext,
    page: PageRequest,
    *,
    project_id: uuid.UUID | None = None,
) -> tuple[list[Invitation], str | None]:
    """Newest first. Tenant owners and admins see all; a project owner their project's."""
    if not access.can(TenantAction.MANAGE_MEMBERS):
        if project_id is None:
            access.require(TenantAction.MANAGE_MEMBERS)
        else:
            _, project_role = await _caller_project(session, access, project_id)
            if not project_allows(project_role, ProjectAction.MANAGE):
                raise Forbidden(f"Your project role ({project_role}) may not see its invitations.")
    statement = select(Invitation)
    if project_id is not None:
        statement = statement.where(Invitation.project_id == project_id)
    statement = paginate(statement, Invitation.created_at, Invitation.id, page, newest_first=True)
    return page_of((await session.scalars(statement)).all(), page)
