"""Select fields for the foreign keys the admin's forms set: tenant, project, member.

SQLAdmin leaves foreign-key columns out of its forms, and its own relationship pickers list every
row of the target table. These pickers query through the request's scoped session, so a tenant
admin's choices are their tenant's rows only (the ORM filter and RLS decide, not this module),
and a value outside the choices fails validation. The composite foreign keys, which all lead with
`tenant_id`, refuse anything that slips through.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqladmin.fields import SelectField
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from wtforms import validators
from wtforms.fields.core import UnboundField

from admin.scoping import AdminScope
from backend.core.ids import parse_uuid
from backend.identity.models import User
from backend.projects.models import Project
from tenants.models import Membership, Tenant

Choices = list[tuple[str, str]]
ChoiceQuery = Callable[[AsyncSession, AdminScope], Awaitable[Choices]]


async def tenant_choices(session: AsyncSession, scope: AdminScope) -> Choices:
    rows = await session.execute(select(Tenant.id, Tenant.name, Tenant.slug).order_by(Tenant.name))
    return [(str(id_), f"{name} ({slug})") for id_, name, slug in rows]


def _in_tenant(label: str, slug: str | None) -> str:
    return f"{label} · {slug}" if slug else label


async def project_choices(session: AsyncSession, scope: AdminScope) -> Choices:
    statement = select(Project.id, Project.name, Tenant.slug).join(
        Tenant, Tenant.id == Project.tenant_id
    )
    rows = await session.execute(statement.order_by(Tenant.slug, Project.name))
    return [
        (str(id_), _in_tenant(name, slug if scope.platform else None)) for id_, name, slug in rows
    ]


async def member_choices(session: AsyncSession, scope: AdminScope) -> Choices:
    statement = (
        select(Membership.user_id, User.email, Tenant.slug)
        .join(User, User.id == Membership.user_id)
        .join(Tenant, Tenant.id == Membership.tenant_id)
    )
    rows = await session.execute(statement.order_by(Tenant.slug, User.email))
    return [
        (str(id_), _in_tenant(email, slug if scope.platform else None)) for id_, email, slug in rows
    ]


@dataclass(frozen=True)
class Picker:
    label: str
    choices: ChoiceQuery
    required: bool = True
    # The tenant picker: in the tenant view, `tenant_id` is the context's and never a field.
    platform_only: bool = False

    def field(self, choices: Choices) -> UnboundField:
        return SelectField(
            self.label,
            choices=choices,
            coerce=parse_uuid,
            allow_blank=not self.required,
            validators=[validators.InputRequired() if self.required else validators.Optional()],
        )


TENANT = Picker("Tenant", tenant_choices, platform_only=True)
PROJECT = Picker("Project", project_choices)
MEMBER = Picker("Member", member_choices)
ASSIGNEE = Picker("Assignee", member_choices, required=False)
