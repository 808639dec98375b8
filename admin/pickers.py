"""Pickers for the foreign keys the admin's forms set: tenant, project, member.

SQLAdmin leaves foreign-key columns out of its forms, and its own relationship pickers list every
row of the target table: with a million tasks and a hundred thousand members, a form would weigh
megabytes. These pickers load by search instead (SQLAdmin's AJAX select, `/admin/<view>/ajax/
lookup`): a form carries only the current value, and the look-up answers a few rows per term.

Every query goes through the request's scoped session, so a tenant admin is offered their
tenant's rows only (the ORM filter and RLS decide, not this module). A submitted value is checked
again before the write, in the write session, which is in the row's tenant in both views
(`Picker.offers`): a project of another tenant, or an assignee who is not a member of the row's
tenant, is refused there, whatever was posted. The composite foreign keys, which all lead with
`tenant_id`, refuse anything that slips through.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqladmin import ModelView
from sqladmin.ajax import QueryAjaxModelLoader
from sqladmin.fields import AjaxSelectField
from sqlalchemy import ColumnElement, Row, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql import Select
from starlette.requests import Request
from wtforms import validators
from wtforms.fields.core import UnboundField

from admin.scoping import AdminScope, current_scope
from backend.core.ids import parse_uuid
from backend.identity.models import User
from backend.projects.models import Project
from tenants.models import Membership, Tenant

Choices = list[tuple[str, str]]
# How many rows one look-up answers: a search narrows, it does not browse.
LOOKUP_LIMIT = 20


def contains(column: Any, term: str) -> ColumnElement[bool]:
    """`column ILIKE '%term%'`, the term taken literally; a trigram index serves it on
    PostgreSQL (migration 0009)."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    condition: ColumnElement[bool] = column.ilike(f"%{escaped}%", escape="\\")
    return condition


def _in_tenant(label: str, slug: str | None) -> str:
    return f"{label} · {slug}" if slug else label


def _tenant_rows(scope: AdminScope) -> Select[uuid.UUID, str, str]:
    return select(Tenant.id, Tenant.name, Tenant.slug)


def _tenant_text(row: Row[uuid.UUID, str, str], scope: AdminScope) -> str:
    return f"{row.name} ({row.slug})"


def _project_rows(scope: AdminScope) -> Select[uuid.UUID, str, str]:
    return select(Project.id, Project.name, Tenant.slug).join(
        Tenant, Tenant.id == Project.tenant_id
    )


def _project_text(row: Row[uuid.UUID, str, str], scope: AdminScope) -> str:
    return _in_tenant(row.name, row.slug if scope.platform else None)


def _member_rows(scope: AdminScope) -> Select[uuid.UUID, str, str]:
    return (
        select(Membership.user_id, User.email, Tenant.slug)
        .join(User, User.id == Membership.user_id)
        .join(Tenant, Tenant.id == Membership.tenant_id)
    )


def _member_text(row: Row[uuid.UUID, str, str], scope: AdminScope) -> str:
    return _in_tenant(row.email, row.slug if scope.platform else None)


@dataclass(frozen=True)
class Picker:
    """One foreign key a form sets: the rows it may offer (`rows`, its key first), how a row
    reads (`text`), the columns a term is looked for in, and their order."""

    label: str
    rows: Callable[[AdminScope], Select[uuid.UUID, str, str]]
    key: InstrumentedAttribute[uuid.UUID]
    text: Callable[[Row[uuid.UUID, str, str], AdminScope], str]
    searched: Sequence[InstrumentedAttribute[str]]
    order: Sequence[InstrumentedAttribute[Any]]
    required: bool = True
    # The tenant picker: in the tenant view, `tenant_id` is the context's and never a field.
    platform_only: bool = False

    async def search(self, session: AsyncSession, scope: AdminScope, term: str) -> Choices:
        statement = (
            self.rows(scope)
            .where(or_(*(contains(column, term) for column in self.searched)))
            .order_by(*self.order)
            .limit(LOOKUP_LIMIT)
        )
        return [(str(row[0]), self.text(row, scope)) for row in await session.execute(statement)]

    async def offers(
        self, session: AsyncSession, scope: AdminScope, value: uuid.UUID
    ) -> str | None:
        """The text of `value` when this picker may offer it in `session`, else None."""
        statement = self.rows(scope).where(self.key == value).order_by(*self.order).limit(1)
        row = (await session.execute(statement)).first()
        return None if row is None else self.text(row, scope)

    def field(self, lookup: PickerLookup) -> UnboundField[AjaxSelectField]:
        # Outside a form, a field class builds an UnboundField; the WTForms stubs say the field.
        return AjaxSelectField(  # type: ignore[return-value]
            lookup,
            self.label,
            allow_blank=not self.required,
            validators=[validators.InputRequired() if self.required else validators.Optional()],
        )


TENANT = Picker(
    "Tenant",
    _tenant_rows,
    Tenant.id,
    _tenant_text,
    searched=(Tenant.name, Tenant.slug),
    order=(Tenant.name,),
    platform_only=True,
)
PROJECT = Picker(
    "Project",
    _project_rows,
    Project.id,
    _project_text,
    searched=(Project.name,),
    order=(Project.name, Tenant.slug),
)
MEMBER = Picker(
    "Member",
    _member_rows,
    Membership.user_id,
    _member_text,
    searched=(User.email, User.full_name),
    order=(User.email, Tenant.slug),
)
ASSIGNEE = replace(MEMBER, label="Assignee", required=False)


class PickerLookup(QueryAjaxModelLoader):
    """SQLAdmin's AJAX loader for one picker of one view: what `/admin/<view>/ajax/lookup?name=`
    answers, and the text of a form's current value. Both read through the view's scoped
    session maker, in the request's scope."""

    # SQLAdmin's own __init__ reads the columns of a relationship; a picker brings its query.
    def __init__(self, name: str, picker: Picker, view: ModelView) -> None:
        self.name, self.picker, self.model_admin = name, picker, view
        self.limit = LOOKUP_LIMIT

    def _offered(self, scope: AdminScope) -> bool:
        return scope.platform or not self.picker.platform_only

    def format(self, model: Any) -> dict[str, Any]:
        """A row of `get_list`; a form's value (an id) goes to `format_by_pk` instead."""
        if not model:
            return {}
        if not isinstance(model, tuple):
            raise TypeError("a picker's value is named by format_by_pk")
        value, text = model
        return {"id": value, "text": text}

    async def format_by_pk(self, pk: Any) -> dict[str, Any]:
        value = parse_uuid(pk)
        scope = current_scope()
        if value is None or not self._offered(scope):
            return {}
        async with self.model_admin.session_maker() as session:
            text = await self.picker.offers(session, scope, value)
        return {} if text is None else {"id": str(value), "text": text}

    async def get_list(self, request: Request, term: str) -> list[Any]:
        scope = current_scope()
        if not self._offered(scope):
            return []
        async with self.model_admin.session_maker() as session:
            return await self.picker.search(session, scope, term)
