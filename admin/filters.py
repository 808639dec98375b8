"""List filters whose choices are read through the request's scoped session."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from sqladmin.filters import StaticValuesFilter
from sqlalchemy import Select, false, select
from starlette.requests import Request

from backend.core.ids import parse_uuid
from tenants.models import Tenant

ALL = ("", "__all")


class LookupFilter:
    """A filter on a UUID foreign key, choices labelled from the referenced table."""

    has_operator = False
    template = "sqladmin/filters/lookup_filter.html"

    def __init__(self, column: Any, key: Any, label: Any, title: str, parameter_name: str) -> None:
        self.column, self.key, self.label = column, key, label
        self.title, self.parameter_name = title, parameter_name

    async def lookups(
        self, request: Request, model: Any, run_query: Callable[[Select], Any]
    ) -> list[tuple[str, str]]:
        rows = await run_query(select(self.key, self.label).order_by(self.label))
        return [("__all", "All"), *((str(key), str(label)) for key, label in rows)]

    async def get_filtered_query(self, query: Select, value: Any, model: Any) -> Select:
        if value is None or value in ALL:
            return query
        chosen = parse_uuid(value)
        return query.where(false() if chosen is None else self.column == chosen)


def tenant_filter(column: Any) -> LookupFilter:
    return LookupFilter(column, Tenant.id, Tenant.slug, "Tenant", "tenant")


def enum_filter(column: Any, values: type[StrEnum]) -> StaticValuesFilter:
    return StaticValuesFilter(column, [(value.value, value.value) for value in values])
