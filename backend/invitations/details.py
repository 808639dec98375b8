"""An invitation together with what people are shown about it: tenant, project, inviter."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.statements import AnySelect
from backend.identity.models import User
from backend.invitations.models import Invitation
from backend.projects.models import Project
from tenants.models import Tenant


def format_expiry(invitation: Invitation) -> str:
    """The expiry as mails and pages show it."""
    return invitation.expires_at.strftime("%d %B %Y, %H:%M UTC")


@dataclass(frozen=True)
class InvitationDetails:
    """An invitation with what a person is shown about it: tenant, project, inviter."""

    invitation: Invitation
    tenant: Tenant
    project: Project | None
    inviter: User | None

    @property
    def inviter_name(self) -> str | None:
        return (self.inviter.full_name or self.inviter.email) if self.inviter else None


def _details_statement() -> AnySelect:
    return (
        select(Invitation, Tenant, Project, User)
        .join(Tenant, Tenant.id == Invitation.tenant_id)
        .outerjoin(
            Project,
            and_(Project.tenant_id == Invitation.tenant_id, Project.id == Invitation.project_id),
        )
        .outerjoin(User, User.id == Invitation.invited_by)
    )


async def find_details(
    session: AsyncSession, criterion: ColumnElement[bool]
) -> InvitationDetails | None:
    """One query for an invitation of the context tenant and what it names."""
    row = (await session.execute(_details_statement().where(criterion))).one_or_none()
    return InvitationDetails(*row) if row is not None else None
