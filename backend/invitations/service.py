"""Inviting by email: create, list, resend and revoke. Services take the session, never commit.

Who may invite: tenant owners and admins (admins never to owner, nor manage owner invitations),
and a project's owners into their project, where the tenant role follows from the project role
(viewer for a project viewer, member otherwise). The same rule guards resending and revoking.

Sending needs a verified email address, and counts against the tenant's daily quota and the
invitation's resend cooldown (`limits.py`). Pending invitations whose inviter has since lost the
right to send them are revoked when that happens (`revoke_what_the_inviter_may_no_longer_send`).

Every status change is a compare-and-set (`UPDATE ... WHERE status IN (...)`), so a resend or a
revocation racing an acceptance cannot undo it: see `acceptance.claim`.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, false, not_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.audit import Actor
from backend.core.config import Settings
from backend.core.database import utcnow
from backend.core.errors import Conflict, Forbidden, NotFound
from backend.core.mail import Mailer, mail_one_time_link
from backend.core.pagination import PageRequest, fetch_page
from backend.identity.accounts import normalise_email
from backend.identity.models import User
from backend.invitations.details import InvitationDetails, find_details, format_expiry
from backend.invitations.limits import InvitationLimits
from backend.invitations.models import Invitation, InvitationStatus
from backend.invitations.schemas import InvitationOut
from backend.invitations.tokens import IssuedToken, issue_token
from backend.projects.access import ProjectCaller, project_caller
from backend.projects.models import ProjectMember
from tenants.audit import record_audit
from tenants.caller import TenantCaller
from tenants.models import Membership
from tenants.roles import (
    ProjectAction,
    ProjectRole,
    TenantAction,
    TenantRole,
    effective_project_role,
    may_assign_role,
    project_allows,
    tenant_allows,
)
from tenants.service import after_roles_changed

INVITATION_NOT_FOUND = "No such invitation."
SENDING_INVITATIONS = "sending invitations"
ACCEPT_PATH = "/invitations/accept"
# The tenant roles a project owner may hand out along with a project role.
PROJECT_OWNER_GRANTS = frozenset({TenantRole.MEMBER, TenantRole.VIEWER})
_REOPENABLE = (InvitationStatus.PENDING, InvitationStatus.EXPIRED)


def tenant_role_for(project_role: ProjectRole) -> TenantRole:
    """The tenant role a project invitation brings: a project viewer only views the tenant."""
    return TenantRole.VIEWER if project_role is ProjectRole.VIEWER else TenantRole.MEMBER


async def _get_invitation(session: AsyncSession, invitation_id: uuid.UUID) -> Invitation:
    invitation = await session.scalar(select(Invitation).where(Invitation.id == invitation_id))
    if invitation is None:
        raise NotFound(INVITATION_NOT_FOUND)
    return invitation


def authorise(caller: TenantCaller, role: TenantRole, project: ProjectCaller | None) -> None:
    """May the caller invite with `role` (into `project`, the caller on it), or manage such an
    invitation? The one decision for creating, listing, resending and revoking."""
    if caller.can(TenantAction.MANAGE_MEMBERS):
        if may_assign_role(caller.role, None, role):
            return
        raise Forbidden(
            f"Your role ({caller.role}) may not invite owners nor manage such invitations."
        )
    if project is None:
        caller.require(TenantAction.MANAGE_MEMBERS)
        return
    if project.can(ProjectAction.MANAGE) and role in PROJECT_OWNER_GRANTS:
        return
    raise Forbidden(f"Your project role ({project.role}) may not invite to this project.")


async def _caller_on(
    session: AsyncSession, caller: TenantCaller, project_id: uuid.UUID | None
) -> ProjectCaller | None:
    return None if project_id is None else await project_caller(session, caller, project_id)


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
    mail_one_time_link(
        session,
        mailer,
        settings,
        to=invitation.email,
        template="invitation",
        path=ACCEPT_PATH,
        token=token.value,
        inviter=details.inviter_name,
        tenant_name=details.tenant.name,
        project_name=details.project.name if details.project else None,
        role=invitation.role.value,
        project_role=invitation.project_role.value if invitation.project_role else None,
        email=invitation.email,
        expires_on=format_expiry(invitation),
    )


async def create_invitation(
    session: AsyncSession,
    caller: TenantCaller,
    *,
    email: str,
    role: TenantRole,
    project_id: uuid.UUID | None = None,
    project_role: ProjectRole | None = None,
    mailer: Mailer,
    settings: Settings,
    limits: InvitationLimits,
    on_project: ProjectCaller | None = None,
) -> Invitation:
    """Invite `email` into the tenant (and project), and mail them the link.

    `on_project` is the caller on the project `project_id` names, when already loaded
    (ProjectAccess); otherwise it is read here.
    """
    email = normalise_email(email)
    if on_project is None:
        on_project = await _caller_on(session, caller, project_id)
    authorise(caller, role, on_project)
    caller.require_verified_email(SENDING_INVITATIONS)
    await _ensure_not_member(session, email, project_id)
    await _ensure_no_other_pending(session, email, project_id)
    token = issue_token(caller.tenant_id)
    invitation = Invitation(
        email=email,
        role=role,
        project_id=project_id,
        project_role=project_role,
        token_hash=token.hash,
        status=InvitationStatus.PENDING,
        invited_by=caller.user_id,
        expires_at=utcnow() + timedelta(seconds=settings.invitation_ttl_seconds),
    )
    session.add(invitation)
    await _flush_one_pending(session, email)
    await limits.count_mail(caller.tenant_id, invitation.id)
    data, event = _audit_data(invitation), InvitationOut.model_validate(invitation)
    record_audit(
        session, caller.actor, "invitation.created", "invitation", invitation.id, data, event=event
    )
    # What the mail names is in hand: the tenant and the inviter from the access query, the
    # project from ProjectAccess or `project_caller`. No need to read them back.
    project = on_project.project if on_project is not None else None
    details = InvitationDetails(invitation, caller.tenant, project, caller.user)
    _mail_invitation(session, details, token, mailer, settings)
    return invitation


async def create_project_invitation(
    session: AsyncSession,
    caller: ProjectCaller,
    *,
    email: str,
    project_role: ProjectRole,
    mailer: Mailer,
    settings: Settings,
    limits: InvitationLimits,
) -> Invitation:
    """The project owner's way: the tenant role follows from `project_role`."""
    return await create_invitation(
        session,
        caller.tenant,
        email=email,
        role=tenant_role_for(project_role),
        project_id=caller.project.id,
        project_role=project_role,
        mailer=mailer,
        settings=settings,
        limits=limits,
        on_project=caller,
    )


async def _manageable_invitation(
    session: AsyncSession, caller: TenantCaller, invitation_id: uuid.UUID
) -> Invitation:
    """The invitation, when the caller may resend or revoke it (404 for another's project)."""
    invitation = await _get_invitation(session, invitation_id)
    authorise(caller, invitation.role, await _caller_on(session, caller, invitation.project_id))
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
    caller: TenantCaller,
    invitation_id: uuid.UUID,
    *,
    mailer: Mailer,
    settings: Settings,
    limits: InvitationLimits,
) -> Invitation:
    """Mail a new token with a new expiry; the old token stops working at once.

    Works for pending and expired invitations; accepted and revoked ones are 409.
    """
    invitation = await _manageable_invitation(session, caller, invitation_id)
    caller.require_verified_email(SENDING_INVITATIONS)
    if invitation.status not in _REOPENABLE:
        raise Conflict(f"This invitation is {invitation.status.value}: invite again instead.")
    await _ensure_not_member(session, invitation.email, invitation.project_id)
    if invitation.status is InvitationStatus.EXPIRED:
        await _ensure_no_other_pending(session, invitation.email, invitation.project_id)
    await limits.count_mail(caller.tenant_id, invitation.id)
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
        session,
        caller.actor,
        "invitation.resent",
        "invitation",
        invitation.id,
        _audit_data(invitation),
    )
    # Read here, not reused: the inviter the mail names is whoever invited first, a user nothing
    # in the request has loaded.
    details = await find_details(session, Invitation.id == invitation.id)
    if details is None:
        raise RuntimeError("an invitation updated in this transaction must be found")
    _mail_invitation(session, details, token, mailer, settings)
    return invitation


async def revoke_invitation(
    session: AsyncSession, caller: TenantCaller, invitation_id: uuid.UUID
) -> Invitation:
    """Kill the invitation's token for good. Revoking twice is harmless; an accepted one is 409."""
    invitation = await _manageable_invitation(session, caller, invitation_id)
    if invitation.status is InvitationStatus.REVOKED:
        return invitation
    if not await _compare_and_set(
        session, invitation, _REOPENABLE, status=InvitationStatus.REVOKED
    ):
        raise Conflict("This invitation has been accepted: remove the member instead.")
    data = _audit_data(invitation)
    record_audit(session, caller.actor, "invitation.revoked", "invitation", invitation.id, data)
    return invitation


async def list_invitations(
    session: AsyncSession,
    caller: TenantCaller,
    page: PageRequest,
    *,
    project_id: uuid.UUID | None = None,
) -> tuple[list[Invitation], str | None]:
    """Newest first. Tenant owners and admins see all; a project owner their project's."""
    if not caller.can(TenantAction.MANAGE_MEMBERS):
        if project_id is None:
            caller.require(TenantAction.MANAGE_MEMBERS)
        else:
            on_project = await project_caller(session, caller, project_id)
            if not on_project.can(ProjectAction.MANAGE):
                raise Forbidden(
                    f"Your project role ({on_project.role}) may not see its invitations."
                )
    statement = select(Invitation)
    if project_id is not None:
        statement = statement.where(Invitation.project_id == project_id)
    return await fetch_page(
        session, statement, Invitation.created_at, Invitation.id, page, newest_first=True
    )


@after_roles_changed
async def revoke_what_the_inviter_may_no_longer_send(
    session: AsyncSession, actor: Actor, user_id: uuid.UUID
) -> None:
    """Revoke the user's pending invitations that their roles, as they now stand, would not let
    them send: an invitation must not outlive the right that granted it.

    Owners and admins keep what they may still assign; a member keeps invitations into projects
    they still own; anyone else (a viewer, someone who left) keeps none.
    """
    tenant_role = await session.scalar(select(Membership.role).where(Membership.user_id == user_id))
    still_allowed: ColumnElement[bool] = false()
    if tenant_role is not None and tenant_allows(tenant_role, TenantAction.MANAGE_MEMBERS):
        assignable = [role for role in TenantRole if may_assign_role(tenant_role, None, role)]
        still_allowed = Invitation.role.in_(assignable)
    elif tenant_role is not None and project_allows(
        effective_project_role(tenant_role, ProjectRole.OWNER), ProjectAction.MANAGE
    ):
        owned = select(ProjectMember.project_id).where(
            ProjectMember.user_id == user_id, ProjectMember.role == ProjectRole.OWNER
        )
        still_allowed = and_(
            Invitation.project_id.is_not(None),
            Invitation.project_id.in_(owned),
            Invitation.role.in_(PROJECT_OWNER_GRANTS),
        )
    revoked = await session.scalars(
        update(Invitation)
        .where(
            Invitation.invited_by == user_id,
            Invitation.status == InvitationStatus.PENDING,
            not_(still_allowed),
        )
        .values(status=InvitationStatus.REVOKED)
        .returning(Invitation)
        .execution_options(synchronize_session=False)
    )
    for invitation in revoked:
        data = {**_audit_data(invitation), "reason": "the inviter lost the right to invite"}
        record_audit(session, actor, "invitation.revoked", "invitation", invitation.id, data)
