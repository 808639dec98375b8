"""Accepting an invitation by its token: preview, accept as a signed-in user, or as a new user.

A token names its tenant (see tokens.py), so every lookup enters that tenant first and never
reads across tenants. Acceptance writes the membership, the project membership, the invitation's
status and the audit events in the request's one transaction; the status moves by a
compare-and-set (`claim`), so of two concurrent acceptances exactly one wins.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.audit import Actor
from backend.core.database import utcnow
from backend.core.errors import Conflict, Forbidden, Gone, NotFound
from backend.identity.accounts import create_user, normalise_email
from backend.identity.models import User
from backend.identity.passwords import Passwords
from backend.identity.service import verify_credentials
from backend.invitations.details import InvitationDetails, find_details
from backend.invitations.models import Invitation, InvitationStatus
from backend.invitations.schemas import InvitationOut
from backend.invitations.tokens import parse_token
from backend.projects import service as projects_service
from tenants import service as tenants_service
from tenants.access import TENANT_SUSPENDED, pending_deletion_detail
from tenants.audit import record_audit
from tenants.isolation import enter_tenant
from tenants.models import Membership, TenantStatus
from tenants.roles import ProjectRole, TenantRole

UNKNOWN_LINK = (
    "This invitation link is not valid. It may be mistyped, or replaced by a newer invitation mail."
)
CLOSED = {
    InvitationStatus.ACCEPTED: "This invitation has been accepted already.",
    InvitationStatus.REVOKED: "This invitation has been withdrawn.",
    InvitationStatus.EXPIRED: "This invitation has expired. Ask for a new one.",
}
ACCOUNT_EXISTS = "An account with this email exists already: sign in to accept instead."


@dataclass(frozen=True)
class Acceptance:
    user: User
    details: InvitationDetails
    role: TenantRole  # the tenant role the user holds now
    project_role: ProjectRole | None


async def find_by_token(session: AsyncSession, token: str) -> InvitationDetails:
    """The invitation behind a token, in any state (404 when unknown); the session enters its
    tenant."""
    parsed = parse_token(token)
    if parsed is None:
        raise NotFound(UNKNOWN_LINK)
    await enter_tenant(session, parsed.tenant_id)
    details = await find_details(session, Invitation.token_hash == parsed.hash)
    if details is None:
        raise NotFound(UNKNOWN_LINK)
    return details


async def open_invitation(session: AsyncSession, token: str) -> InvitationDetails:
    """A pending, unexpired invitation of an active tenant: 404 unknown, 410 closed."""
    details = await find_by_token(session, token)
    status = details.invitation.current_status
    if status in CLOSED:
        raise Gone(CLOSED[status])
    if details.tenant.status is TenantStatus.SUSPENDED:
        raise Forbidden(TENANT_SUSPENDED)
    if details.tenant.status is TenantStatus.PENDING_DELETION:
        raise Forbidden(pending_deletion_detail(details.tenant))
    return details


async def claim(session: AsyncSession, invitation: Invitation, user_id: uuid.UUID) -> None:
    """Mark the invitation accepted, unless another request did (or it lapsed) meanwhile: 410.

    A conditional UPDATE: on PostgreSQL the second of two racing requests waits on the row
    lock and then matches nothing; on SQLite the writers are serialised by the database lock.
    The row comes back through RETURNING (`populate_existing` writes it onto `invitation`), so
    the claim is one round trip.
    """
    now = utcnow()
    claimed = await session.scalar(
        update(Invitation)
        .where(
            Invitation.id == invitation.id,
            Invitation.status == InvitationStatus.PENDING,
            Invitation.expires_at > now,
        )
        .values(status=InvitationStatus.ACCEPTED, accepted_at=now, accepted_by=user_id)
        .returning(Invitation)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    if claimed is None:
        raise Gone("This invitation has just been used, withdrawn or replaced.")


async def _join(session: AsyncSession, details: InvitationDetails, user: User) -> Acceptance:
    """Memberships and audit for a claimed invitation. Someone who is a member already keeps
    their tenant role: an invitation never promotes nor demotes."""
    invitation = details.invitation
    actor = Actor(user_id=user.id)
    member_already = await session.scalar(
        select(Membership.user_id).where(Membership.user_id == user.id)
    )
    if member_already and invitation.project_id is None:
        raise Conflict("You are a member of this tenant already.")
    membership = await tenants_service.add_member(
        session, invitation.tenant_id, user.id, invitation.role, actor
    )
    data = {"email": invitation.email, "role": membership.role.value}
    # Both or neither: a CHECK constraint says so.
    if invitation.project_id is not None and invitation.project_role is not None:
        added = await projects_service.put_project_member(
            session, invitation.project_id, user.id, invitation.project_role, actor
        )
        if not added:  # raising rolls back the role change put_project_member made
            raise Conflict("You are a member of this project already.")
        data |= {"project_id": str(invitation.project_id)}
        data |= {"project_role": invitation.project_role.value}
    event = InvitationOut.model_validate(invitation)
    record_audit(
        session, actor, "invitation.accepted", "invitation", invitation.id, data, event=event
    )
    return Acceptance(user, details, membership.role, invitation.project_role)


async def accept(session: AsyncSession, token: str, user: User) -> Acceptance:
    """Accept as `user`, whose email must be the invited one (compared normalised)."""
    return await accept_opened(session, await open_invitation(session, token), user)


async def accept_opened(
    session: AsyncSession, details: InvitationDetails, user: User
) -> Acceptance:
    """`accept` for an invitation this request has opened already (`open_invitation`): it is
    not read again, the claim's compare-and-set decides whether it is still pending."""
    if not user.is_active:
        raise Forbidden("This account is deactivated.")
    if normalise_email(user.email) != details.invitation.email:
        raise Forbidden("This invitation was sent to another email address: sign in with that one.")
    await claim(session, details.invitation, user.id)
    return await _join(session, details, user)


async def accept_as_new_user(
    session: AsyncSession, token: str, *, full_name: str, password: str, passwords: Passwords
) -> Acceptance:
    """Create the account with the invited email, verified (the mail reached it), and accept."""
    details = await open_invitation(session, token)
    return await accept_opened_as_new_user(
        session, details, full_name=full_name, password=password, passwords=passwords
    )


async def accept_opened_as_new_user(
    session: AsyncSession,
    details: InvitationDetails,
    *,
    full_name: str,
    password: str,
    passwords: Passwords,
) -> Acceptance:
    """`accept_as_new_user` for an invitation this request has opened already."""
    user = await create_user(
        session,
        passwords,
        email=details.invitation.email,
        full_name=full_name,
        password=password,
        verified=True,
        taken=ACCOUNT_EXISTS,
    )
    await claim(session, details.invitation, user.id)
    return await _join(session, details, user)


async def authenticate_invitee(
    session: AsyncSession, passwords: Passwords, details: InvitationDetails, password: str
) -> User | None:
    """The invited email's active account when `password` is its password, else None.

    An unknown account costs the same hash as a wrong password (Passwords' decoy).
    """
    user = await verify_credentials(session, passwords, details.invitation.email, password)
    return user if user is not None and user.is_active else None
