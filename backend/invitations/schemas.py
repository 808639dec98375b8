"""Request and response bodies of the invitation endpoints. No body ever carries a token out."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, model_validator

from backend.core.text import SingleLine
from backend.identity.schemas import NewPassword
from backend.invitations.models import InvitationStatus
from backend.invitations.tokens import MAX_TOKEN_LENGTH
from tenants.roles import ProjectRole, TenantRole

InvitationToken = Annotated[str, Field(min_length=1, max_length=MAX_TOKEN_LENGTH)]
AccepterName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), SingleLine
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TenantInvitationCreate(_Body):
    """An invitation into the tenant, optionally straight into one of its projects."""

    email: EmailStr
    role: TenantRole
    project_id: uuid.UUID | None = None
    project_role: ProjectRole | None = None

    @model_validator(mode="after")
    def _project_fields_go_together(self) -> TenantInvitationCreate:
        if (self.project_id is None) != (self.project_role is None):
            raise ValueError("project_id and project_role are given together or not at all")
        if self.role is TenantRole.VIEWER and self.project_role not in (None, ProjectRole.VIEWER):
            raise ValueError("a tenant viewer's project role is capped at viewer")
        return self


class ProjectInvitationCreate(_Body):
    """The project owner's way: the tenant role follows from the project role."""

    email: EmailStr
    role: ProjectRole


class InvitationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    role: TenantRole
    project_id: uuid.UUID | None
    project_role: ProjectRole | None
    status: InvitationStatus = Field(
        validation_alias="current_status",
        description="`expired` once a pending invitation is past its expiry.",
    )
    invited_by: uuid.UUID | None
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    accepted_by: uuid.UUID | None


class TenantRef(BaseModel):
    id: uuid.UUID
    name: str


class ProjectRef(BaseModel):
    id: uuid.UUID
    name: str


class InvitationPreview(BaseModel):
    """What a token's holder is invited to, before accepting."""

    email: str
    tenant: TenantRef
    project: ProjectRef | None
    role: TenantRole
    project_role: ProjectRole | None
    inviter: str | None = Field(description="The inviting user's name, when a user invited.")
    expires_at: datetime


class InvitationAccept(_Body):
    token: InvitationToken


class InvitationAcceptNewUser(_Body):
    token: InvitationToken
    password: NewPassword
    full_name: AccepterName


class AcceptanceOut(BaseModel):
    """Where the invitee landed. `role` is their tenant role, which an invitation never changes
    for someone who was a member already."""

    user_id: uuid.UUID
    email: str
    tenant: TenantRef
    project: ProjectRef | None
    role: TenantRole
    project_role: ProjectRole | None
