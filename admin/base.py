"""`AdminView`: a SQLAdmin `ModelView` whose reads and writes stay in the request's scope.

Which rows a view reaches is decided by the session (`admin.scoping`): SQLAdmin's list, count,
export, details, its bare-primary-key re-selects for edit and delete, and the pickers all run
through it. What this class adds:

- writes of its own (insert, update, delete, custom actions), each in one transaction that never
  uses the platform session: the write session is in the row's tenant (`enter_row_tenant`), so
  `tenant_id` is forced and rows never move; each write is a call to the service the API calls,
  with the admin as its caller (`admin.callers`), which decides and records the audit event;
- a 404, never a 403, for a primary key out of reach;
- `scope_criteria` for the one global table tenant admins see (their own tenant's row);
- names for the ids a page shows: `list_loads` and `details_loads` join the people a row names
  into the page's own query (no query per row), and in the tenant view only people who are
  members of the tenant (`visible_people`); `person` shows them by email. Projects and tenants
  are named through relationship columns, which SQLAdmin loads with one `selectinload` each,
  through the same scoped session (the ORM filter applies to relationship loads too);
- form pickers for foreign keys that load by search (`admin.pickers`), their values checked
  again in the write session, and safe enum fields;
- a refusal, at start-up, of any view that would show or edit a hash or a secret.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, ClassVar, cast

from sqladmin.exceptions import SQLAdminException
from sqladmin.helpers import get_primary_keys, object_identifier_values
from sqlalchemy import Enum, Select, Subquery, asc, desc, exists, func, select
from sqlalchemy import inspect as inspect_model
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ColumnProperty, InstrumentedAttribute, Mapper, joinedload
from sqlalchemy.orm.interfaces import LoaderOption
from sqlalchemy.sql.elements import ColumnElement
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from wtforms import Form
from wtforms.fields.core import UnboundField

from admin.filters import tenant_filter
from admin.pickers import Picker, PickerLookup
from admin.scoping import (
    AdminScope,
    AdminSessionMaker,
    current_scope,
    current_scope_or_none,
    enter_row_tenant,
)
from admin.sqladmin_adapter import AjaxLookups, IdentifierLookup
from backend.core.database import run_after_commit
from backend.core.errors import Problem
from backend.core.ids import parse_uuid
from backend.core.soft_delete import INCLUDE_DELETED
from backend.core.statements import AnySelect
from backend.identity.models import User
from tenants.isolation import TenantScoped
from tenants.models import Membership

SECRET_COLUMNS = frozenset(
    {"password_hash", "token_hash", "client_secret_hash", "id_hash", "key_hash"}
)
EXPORT_MAX_ROWS = 10_000

# Lists count their rows up to here, and no further.
COUNTED_ROWS = 10_000

RowAction = Callable[[AsyncSession, AdminScope, Any], Awaitable[None]]


class AdminWriteRefused(SQLAdminException):
    """A write the admin may not make; SQLAdmin shows the message on the form or the list."""


class CountedPast(int):
    """A list's total past `COUNTED_ROWS`: pages up to it, and reads as "more than 10,000"
    where SQLAdmin's list page prints the total."""

    def __str__(self) -> str:
        return f"more than {COUNTED_ROWS:,}"


def _found(model: Any) -> Any:
    if model is None:
        raise HTTPException(status_code=404)
    return model


def visible_people(scope: AdminScope, relation: InstrumentedAttribute[Any]) -> Any:
    """A relationship to users, as the scope may see it: in the tenant view, a user is named only
    when a member of the tenant (a former member, a superuser acting in the tenant, someone of
    another tenant stay unnamed), as tenant admins see users only as members."""
    if scope.platform or relation.property.mapper.class_ is not User:
        return relation
    # EXISTS probes the membership key for each row shown; IN would read every member first.
    member = exists().where(Membership.tenant_id == scope.tenant_id, Membership.user_id == User.id)
    return relation.and_(member)


def person(relation: str, column: str) -> Callable[[Any, Any], str]:
    """A formatter naming the user `column` refers to by email, from the loaded `relation`."""

    def email(obj: Any, _prop: Any) -> str:
        user = getattr(obj, relation)
        if user is not None:
            address: str = user.email
            return address
        return "" if getattr(obj, column) is None else "(not a member)"

    return email


def _column_names(columns: Sequence[Any]) -> list[str]:
    """Names of configured columns: attributes by key, strings (`"user.email"`) as written."""
    return [column if isinstance(column, str) else column.key for column in columns]


class AdminView(IdentifierLookup, AjaxLookups):
    page_size = 25
    # The app the panel serves (its mailer and settings), set on each view class at mounting.
    main_app: ClassVar[Any]
    can_import = False
    # An export is built in memory: capped, so that one click cannot hold the whole table.
    export_max_rows = EXPORT_MAX_ROWS
    # Foreign keys set through a picker; listed in form_create_rules/form_edit_rules to appear.
    form_pickers: ClassVar[dict[str, Picker]] = {}
    # Many-to-one relationships the list and the details page name (people, by `person`): joined
    # into the page's query. Relationship columns (projects, tenants) are SQLAdmin's to load.
    list_loads: ClassVar[Sequence[InstrumentedAttribute[Any]]] = ()
    details_loads: ClassVar[Sequence[InstrumentedAttribute[Any]]] = ()

    def __init__(self) -> None:
        super().__init__()
        self._refuse_secrets()
        # Each picker answers SQLAdmin's look-up endpoint for this view, under its field name.
        self.picker_lookups = {
            name: PickerLookup(name, picker, self) for name, picker in self.form_pickers.items()
        }
        for name, lookup in self.picker_lookups.items():
            self.add_ajax_lookup(name, lookup)
        # SQLAdmin declares form_args on the class; each view instance gets its merged copy.
        self.form_args = {**self._enum_field_args(), **self.form_args}  # type: ignore[misc]

    def _refuse_secrets(self) -> None:
        shown = [
            *self.get_list_columns(),
            *self.get_details_columns(),
            *(self.get_form_columns() if self.can_create or self.can_edit else ()),
            *self.get_export_columns(),
            *_column_names(self.column_searchable_list),
            *_column_names(self.column_sortable_list),
            *self.form_pickers,
        ]
        leaked = SECRET_COLUMNS & {name.rsplit(".", 1)[-1] for name in shown}
        if leaked:
            raise TypeError(f"{type(self).__name__} would show {sorted(leaked)}")

    def _enum_field_args(self) -> dict[str, dict[str, Any]]:
        # SQLAdmin coerces an enum member by its *name* ("OWNER"), which matches none of the
        # choices (values, "owner"): an edit form would then save the first choice instead.
        enum_fields: dict[str, dict[str, Any]] = {}
        mapper: Mapper[Any] = inspect_model(self.model)
        attributes = mapper.attrs
        for name in self.get_form_columns():
            prop = attributes.get(name)
            if isinstance(prop, ColumnProperty) and isinstance(prop.columns[0].type, Enum):
                enum_fields[name] = {"coerce": str}
        return enum_fields

    # -- which rows -------------------------------------------------------------------------

    def scope_criteria(self, scope: AdminScope) -> Sequence[ColumnElement[bool]]:
        """Extra criteria for global tables; tenant tables are scoped by the session itself."""
        return ()

    def eager_loads(self, relations: Sequence[InstrumentedAttribute[Any]]) -> list[LoaderOption]:
        scope = current_scope()
        return [joinedload(visible_people(scope, relation)) for relation in relations]

    def list_query(self, request: Request) -> AnySelect:
        statement: AnySelect = select(self.model).where(*self.scope_criteria(current_scope()))
        return statement.options(*self.eager_loads(self.list_loads))

    def details_query(self, request: Request) -> AnySelect:
        return super().details_query(request).options(*self.eager_loads(self.details_loads))

    def count_query(self, request: Request) -> AnySelect:
        return super().count_query(request).where(*self.scope_criteria(current_scope()))

    def sort_query(self, stmt: AnySelect, request: Request) -> AnySelect:
        """SQLAdmin's order, served by an index and stable across pages. Tenant tables' indexes
        all lead with `tenant_id`: the platform view orders their rows by tenant first (in the
        sort's direction, so that one index scan serves the whole order), and ties are broken by
        the rest of the primary key, the last columns of those indexes."""
        if not issubclass(self.model, TenantScoped):
            return super().sort_query(stmt, request)
        if request.query_params.get("sortBy"):
            descending = request.query_params.get("sort", "asc") == "desc"
        else:
            descending = bool(self.column_default_sort and self.column_default_sort[0][1])
        direction = desc if descending else asc
        if current_scope().platform:
            stmt = stmt.order_by(direction(self.model.tenant_id))
        stmt = super().sort_query(stmt, request)
        keys = [column for column in get_primary_keys(self.model) if column.key != "tenant_id"]
        return stmt.order_by(*(direction(column) for column in keys))

    async def count(self, request: Request, stmt: AnySelect | None = None) -> int:
        """A list's total, counted up to `COUNTED_ROWS`: past that, the page says "more than
        10,000" instead of counting a million rows on every page (and pages stop there; a
        filter or a search narrows)."""
        listed = stmt.get_final_froms()[0] if stmt is not None else None
        if not (isinstance(listed, Subquery) and isinstance(listed.element, Select)):
            return await super().count(request, stmt)  # not SQLAdmin's count of a list page
        rows = listed.element.order_by(None).limit(COUNTED_ROWS + 1)
        counted = await super().count(request, select(func.count()).select_from(rows.subquery()))
        return CountedPast(COUNTED_ROWS + 1) if counted > COUNTED_ROWS else counted

    def statement_for_identifier(self, identifier: str) -> AnySelect:
        """The row an identifier names, within the scope; a malformed identifier is a 404."""
        try:
            statement = super().statement_for_identifier(identifier)
        except (TypeError, ValueError) as exc:
            raise HTTPException(status_code=404) from exc
        return statement.where(*self.scope_criteria(current_scope()))

    def get_filters(self) -> list[Any]:
        filters = list(super().get_filters())
        scope = current_scope_or_none()
        if scope and scope.platform and issubclass(self.model, TenantScoped):
            filters.insert(0, tenant_filter(self.model.tenant_id))
        return filters

    async def fetch(self, session: AsyncSession, pk: str, *, in_trash: bool = False) -> Any:
        """The row `pk` names; with `in_trash`, a deleted row too (to restore it)."""
        statement = self.statement_for_identifier(pk)
        if in_trash:
            statement = statement.execution_options(**INCLUDE_DELETED)
        return _found(await session.scalar(statement))

    async def check_can_view_details(self, request: Request, model: Any) -> bool:
        return await super().check_can_view_details(request, _found(model))

    async def check_can_edit(self, request: Request, model: Any) -> bool:
        return await super().check_can_edit(request, _found(model))

    async def check_can_delete(self, request: Request, model: Any) -> bool:
        return await super().check_can_delete(request, _found(model))

    # -- forms --------------------------------------------------------------------------------

    async def scaffold_form(self, rules: list[str] | None = None) -> type[Form]:
        form = await super().scaffold_form()  # every field; pruned to `rules` below
        for name, picker in self.offered_pickers(current_scope()).items():
            if not rules or name in rules:
                setattr(form, name, picker.field(self.picker_lookups[name]))
        if rules:  # keep the fields the rules name, in the rules' order
            for name, field in list(vars(form).items()):
                if not isinstance(field, UnboundField):
                    continue
                if name in rules:
                    field.creation_counter = rules.index(name)
                else:
                    delattr(form, name)
        return form

    def offered_pickers(self, scope: AdminScope) -> dict[str, Picker]:
        return {
            name: picker
            for name, picker in self.form_pickers.items()
            if scope.platform or not picker.platform_only
        }

    async def picked(
        self, session: AsyncSession, scope: AdminScope, data: dict[str, Any]
    ) -> dict[str, Any]:
        """`data` with the pickers' values as ids, each one its picker offers in the write
        session, which is in the row's tenant: a value posted from outside the offer (another
        tenant's project, someone who is not a member) is refused, whatever the form sent."""
        picked = dict(data)
        for name, picker in self.offered_pickers(scope).items():
            if data.get(name) in (None, ""):
                continue
            value = picked[name] = parse_uuid(data[name])
            if value is None or await picker.offers(session, scope, value) is None:
                raise AdminWriteRefused(f"{picker.label}: pick one of those the search offers.")
        return picked

    async def get_form_data_for_edit(self, obj: Any) -> dict[str, Any]:
        data = await super().get_form_data_for_edit(obj)
        data.update({name: getattr(obj, name) for name in self.form_pickers})
        return data

    # -- writes -------------------------------------------------------------------------------

    def tenant_of(self, obj: Any) -> uuid.UUID | None:
        """The tenant a write on `obj` concerns (its context, its audit log), or None."""
        return obj.tenant_id if isinstance(obj, TenantScoped) else None

    def tenant_of_identifier(self, identifier: str) -> uuid.UUID | None:
        """The tenant named by a row identifier, before the row is read (platform writes)."""
        if not issubclass(self.model, TenantScoped):
            return None
        try:
            values = object_identifier_values(identifier, self.model)
        except (TypeError, ValueError) as exc:
            raise HTTPException(status_code=404) from exc
        position = [column.key for column in get_primary_keys(self.model)].index("tenant_id")
        tenant_id: uuid.UUID = values[position]
        return tenant_id

    @asynccontextmanager
    async def writing(
        self, scope: AdminScope, tenant_id: uuid.UUID | None = None
    ) -> AsyncIterator[AsyncSession]:
        """One write transaction (in `tenant_id` for the platform view), committed once, then
        its after-commit work (mail); the database's refusals come back as the admin's error."""
        try:
            # SQLAdmin types the maker as SQLAlchemy's; it is ours (admin/setup.py).
            async with cast(AdminSessionMaker, self.session_maker).writing() as session:
                await enter_row_tenant(session, scope, tenant_id)
                yield session
                await session.commit()
        except IntegrityError as exc:
            raise AdminWriteRefused(
                "The database refused this change: a duplicate, or a project or member that "
                "does not belong to the row's tenant."
            ) from exc
        await run_after_commit(session)

    # Every write goes through the service that decides and audits it: a view that offers
    # create, edit or delete overrides the matching method, with the admin as the caller.

    async def create_row(
        self, session: AsyncSession, scope: AdminScope, data: dict[str, Any]
    ) -> Any:
        raise NotImplementedError(f"{type(self).__name__} offers create without a service")

    async def update_row(
        self, session: AsyncSession, scope: AdminScope, obj: Any, data: dict[str, Any]
    ) -> None:
        raise NotImplementedError(f"{type(self).__name__} offers edit without a service")

    async def delete_row(self, session: AsyncSession, scope: AdminScope, obj: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} offers delete without a service")

    async def insert_model(self, request: Request, data: dict[str, Any]) -> Any:
        scope = current_scope()
        if issubclass(self.model, TenantScoped):
            # Forced in the tenant view: the form has no such field, and none is taken.
            data = {**data, "tenant_id": scope.tenant_id or parse_uuid(data.get("tenant_id"))}
            if data["tenant_id"] is None:
                raise AdminWriteRefused("Pick a tenant.")
        async with self.writing(scope, data.get("tenant_id")) as session:
            return await self.create_row(session, scope, await self.picked(session, scope, data))

    async def update_model(self, request: Request, pk: str, data: dict[str, Any]) -> Any:
        scope = current_scope()
        primary_keys = {column.key for column in get_primary_keys(self.model)}
        async with self.writing(scope, self.tenant_of_identifier(pk)) as session:
            obj = await self.fetch(session, pk)
            # Primary keys (tenant_id among them) never change: rows never move.
            changes = {key: value for key, value in data.items() if key not in primary_keys}
            await self.update_row(session, scope, obj, await self.picked(session, scope, changes))
        return obj

    async def delete_model(self, request: Request, pk: Any) -> None:
        scope = current_scope()
        async with self.writing(scope, self.tenant_of_identifier(pk)) as session:
            await self.delete_row(session, scope, await self.fetch(session, pk))

    # -- custom actions -----------------------------------------------------------------------

    async def run_action(
        self, request: Request, act: RowAction, *, in_trash: bool = False, removes: bool = False
    ) -> Response:
        """Apply `act` to every row named by `?pks=` in one transaction: all of them, or none
        (a row out of reach is a 404; a refused change comes back as the list's error). With
        `in_trash`, deleted rows are reached too; after an act that `removes` its row, back
        to the list."""
        scope = current_scope()
        pks = [pk for pk in request.query_params.get("pks", "").split(",") if pk]
        list_url = request.url_for("admin:list", identity=self.identity)
        if not pks:
            return RedirectResponse(list_url.include_query_params(error="Select a row."), 302)
        try:
            async with self.writing(scope) as session:
                for pk in pks:
                    await enter_row_tenant(session, scope, self.tenant_of_identifier(pk))
                    await act(session, scope, await self.fetch(session, pk, in_trash=in_trash))
        except (AdminWriteRefused, Problem) as exc:
            return RedirectResponse(list_url.include_query_params(error=str(exc)), 302)
        if len(pks) == 1 and not removes:
            return RedirectResponse(
                request.url_for("admin:details", identity=self.identity, pk=pks[0]), 302
            )
        return RedirectResponse(list_url, 302)


class ReadOnlyView(AdminView):
    can_create = False
    can_edit = False
    can_delete = False
