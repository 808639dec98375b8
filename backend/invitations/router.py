"""HTTP routes of invitations. Thin: parse, call the service (which decides), shape the answer.

No answer carries a token: only the invitation mail does.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Response, status
from starlette.convertors import StringConvertor, register_url_convertor

from backend.core.database import DbSession
from backend.core.dependencies import AppMailer, AppSettings
from backend.core.pagination import Page
from backend.core.request_params import Pagination
from backend.identity.dependencies import AppPasswords, CurrentUser
from backend.invitations import acceptance, service
from backend.invitations.dependencies import AppInvitationLimits
from backend.invitations.details import InvitationDetails
from backend.invitations.models import Invitation
from backend.invitations.schemas import (
    AcceptanceOut,
    InvitationAccept,
    InvitationAcceptNewUser,
    InvitationOut,
    InvitationPreview,
    ProjectInvitationCreate,
    ProjectRef,
    TenantInvitationCreate,
    TenantRef,
)
from backend.invitations.tokens import TOKEN_PATTERN
from backend.projects.dependencies import ProjectAccess
from tenants.dependencies import TenantAccess
from tenants.idempotent_routes import Idempotency, IdempotentRoute

tenant_router = APIRouter(
    prefix="/api/v1/tenants/{tenant_id}", tags=["invitations"], route_class=IdempotentRoute
)
public_router = APIRouter(prefix="/api/v1/invitations", tags=["invitations"])


class _TokenConvertor(StringConvertor):
    """Only a well-formed token routes to the preview, so that `GET /accept` is a 405 of the
    POST route beside it, not the preview of a token named "accept"."""

    regex = TOKEN_PATTERN


register_url_convertor("invitation_token", _TokenConvertor())
InvitationTokenInPath = Annotated[str, Path(pattern=f"^{TOKEN_PATTERN}$")]


@tenant_router.post("/invitations", status_code=status.HTTP_201_CREATED)
async def invite_to_tenant(
    body: TenantInvitationCreate,
    caller: TenantAccess,
    session: DbSession,
    mailer: AppMailer,
    settings: AppSettings,
    limits: AppInvitationLimits,
    idempotency: Idempotency,
) -> InvitationOut:
    """Invite by email into the tenant, optionally straight into one of its projects."""
    invitation = await service.create_invitation(
        session,
        caller,
        email=body.email,
        role=body.role,
        project_id=body.project_id,
        project_role=body.project_role,
        mailer=mailer,
        settings=settings,
        limits=limits,
    )
    return _out(invitation)


@tenant_router.post("/projects/{project_id}/invitations", status_code=status.HTTP_201_CREATED)
async def invite_to_project(
    body: ProjectInvitationCreate,
    caller: ProjectAccess,
    session: DbSession,
    mailer: AppMailer,
    settings: AppSettings,
    limits: AppInvitationLimits,
    idempotency: Idempotency,
) -> InvitationOut:
    """A project owner invites into the project; the invitee joins the tenant as member (as
    viewer when the project role is viewer)."""
    invitation = await service.create_project_invitation(
        session,
        caller,
        email=body.email,
        project_role=body.role,
        mailer=mailer,
        settings=settings,
        limits=limits,
    )
    return _out(invitation)


@tenant_router.get("/invitations")
async def list_invitations(
    caller: TenantAccess,
    session: DbSession,
    page: Pagination,
    project_id: uuid.UUID | None = None,
) -> Page[InvitationOut]:
    """Newest first, with their status. Project owners list their project's (`project_id`)."""
    invitations, cursor = await service.list_invitations(
        session, caller, page, project_id=project_id
    )
    return Page[InvitationOut](items=[_out(i) for i in invitations], next_cursor=cursor)


@tenant_router.post("/invitations/{invitation_id}/resend")
async def resend_invitation(
    invitation_id: uuid.UUID,
    caller: TenantAccess,
    session: DbSession,
    mailer: AppMailer,
    settings: AppSettings,
    limits: AppInvitationLimits,
) -> InvitationOut:
    """Mail a new link with a new expiry; the previous link stops working."""
    invitation = await service.resend_invitation(
        session, caller, invitation_id, mailer=mailer, settings=settings, limits=limits
    )
    return _out(invitation)


@tenant_router.delete("/invitations/{invitation_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_invitation(
    invitation_id: uuid.UUID, caller: TenantAccess, session: DbSession
) -> Response:
    await service.revoke_invitation(session, caller, invitation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@public_router.get("/{token:invitation_token}")
async def preview_invitation(token: InvitationTokenInPath, session: DbSession) -> InvitationPreview:
    """What the token's holder is invited to. 404 unknown, 410 accepted, revoked or expired."""
    details = await acceptance.open_invitation(session, token)
    invitation = details.invitation
    return InvitationPreview(
        email=invitation.email,
        tenant=TenantRef(id=details.tenant.id, name=details.tenant.name),
        project=_project_ref(details),
        role=invitation.role,
        project_role=invitation.project_role,
        inviter=details.inviter_name,
        expires_at=invitation.expires_at,
    )


@public_router.post("/accept")
async def accept_invitation(
    body: InvitationAccept, user: CurrentUser, session: DbSession
) -> AcceptanceOut:
    """Accept as the signed-in user, whose email must be the invited one."""
    return _acceptance_out(await acceptance.accept(session, body.token, user))


@public_router.post("/accept-new-user", status_code=status.HTTP_201_CREATED)
async def accept_invitation_as_new_user(
    body: InvitationAcceptNewUser, session: DbSession, passwords: AppPasswords
) -> AcceptanceOut:
    """Create the account with the invited email (verified) and accept."""
    result = await acceptance.accept_as_new_user(
        session, body.token, full_name=body.full_name, password=body.password, passwords=passwords
    )
    return _acceptance_out(result)


def _out(invitation: Invitation) -> InvitationOut:
    return InvitationOut.model_validate(invitation)


def _project_ref(details: InvitationDetails) -> ProjectRef | None:
    project = details.project
    return ProjectRef(id=project.id, name=project.name) if project is not None else None


def _acceptance_out(result: acceptance.Acceptance) -> AcceptanceOut:
    return AcceptanceOut(
        user_id=result.user.id,
        email=result.user.email,
        tenant=TenantRef(id=result.details.tenant.id, name=result.details.tenant.name),
        project=_project_ref(result.details),
        role=result.role,
        project_role=result.project_role,
    )
