"""List filters whose choices are read through the request's scoped session."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from sqladmin.filters import StaticValuesFilter
from sqlalchemy import false, select
from starlette.requests import Request

from backend.core.ids import parse_uuid
from backend.core.soft_delete import INCLUDE_DELETED
from backend.core.statements import AnySelect
from tenants.models import Tenant

ALL = ("", "__all")
# A filter lists this many choices, by label: a thousand tenants as links would weigh a list page
# down by hundreds of kilobytes. The chosen one is always listed; a search narrows further.
FILTER_CHOICES = 50


class LookupFilter:
    """A filter on a UUID foreign key, choices labelled from the referenced table (the first
    `FILTER_CHOICES` of them, and the chosen one)."""

    has_operator = False
    template = "sqladmin/filters/lookup_filter.html"
    default_value: Any = None  # SQLAdmin's filter protocol names one; "All" needs none

    def __init__(self, column: Any, key: Any, label: Any, title: str, parameter_name: str) -> None:
        self.column, self.key, self.label = column, key, label
        self.title, self.parameter_name = title, parameter_name

    async def lookups(
        self, request: Request, model: Any, run_query: Callable[[AnySelect], Any]
    ) -> list[tuple[str, str]]:
        rows = list(
            await run_query(select(self.key, self.label).order_by(self.label).limit(FILTER_CHOICES))
        )
        chosen = parse_uuid(request.query_params.get(self.parameter_name))
        if chosen is not None and chosen not in {key for key, _ in rows}:
            rows += await run_query(select(self.key, self.label).where(self.key == chosen))
        return [("__all", "All"), *((str(key), str(label)) for key, label in rows)]

    async def get_filtered_query(self, query: AnySelect, value: Any, model: Any) -> AnySelect:
        if value is None or value in ALL:
            return query
        chosen = parse_uuid(value)
        return query.where(false() if chosen is None else self.column == chosen)


class TrashFilter(StaticValuesFilter):
    """ "In the trash: yes" lists the deleted rows, which every list hides otherwise (the
    soft-delete filter); the one read of the panel that opts out of it."""

    PARAMETER = "trash"

    def __init__(self, deleted_at: Any) -> None:
        super().__init__(deleted_at, [("yes", "Yes")], "In the trash", self.PARAMETER)

    @classmethod
    def chosen(cls, request: Request) -> bool:
        return request.query_params.get(cls.PARAMETER) == "yes"

    async def get_filtered_query(self, query: AnySelect, value: Any, model: Any) -> AnySelect:
        if value != "yes":
            return query
        deleted_at: Any = self.column
        return query.where(deleted_at.is_not(None)).execution_options(**INCLUDE_DELETED)


def tenant_filter(column: Any) -> LookupFilter:
    return LookupFilter(column, Tenant.id, Tenant.slug, "Tenant", "tenant")


def enum_filter(column: Any, values: type[StrEnum]) -> StaticValuesFilter:
    return StaticValuesFilter(column, [(value.value, value.value) for value in values])
