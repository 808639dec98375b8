"""Keyset pagination on `(created_at, id)`: stable under inserts, and index-backed at any depth."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import Integer, and_, bindparam, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from backend.core.errors import BadRequest
from backend.core.statements import AnySelect, PerStatement

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
CURSOR_PATTERN = r"^[A-Za-z0-9_-]*$"  # unpadded URL-safe base64


ItemT = TypeVar("ItemT")
RowT = TypeVar("RowT")


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    next_cursor: str | None


@dataclass(frozen=True)
class PageRequest:
    limit: int
    # The last row's created_at and id; the id as text, since not every key is a UUID.
    after: tuple[datetime, str] | None


def encode_cursor(created_at: datetime, row_id: uuid.UUID | str) -> str:
    raw = json.dumps([created_at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, row_id = json.loads(raw)
        if not isinstance(row_id, str):
            raise TypeError("the id is not text")
        after = datetime.fromisoformat(created_at)
        if after.tzinfo is None:  # every cursor this server issues is timezone-aware
            raise ValueError("the cursor's time has no timezone")
        return after, row_id
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError) as exc:
        raise BadRequest("The cursor is not valid.") from exc


def _typed_id(row_id: InstrumentedAttribute[Any], text: str) -> Any:
    """The cursor's id in the key column's Python type (UUID, or str for a text key)."""
    try:
        return row_id.type.python_type(text)
    except (ValueError, TypeError) as exc:
        raise BadRequest("The cursor is not valid.") from exc


# The cursor and the limit are bound parameters: a page's statement is the same object for
# every page of a statement built once (`PerStatement`), and costs no rewrite per request.
_AFTER_CREATED_AT = "page_after_created_at"
_AFTER_ID = "page_after_id"
_LIMIT = "page_limit"


def _ordered_after(
    statement: AnySelect,
    created_at: InstrumentedAttribute[datetime],
    row_id: InstrumentedAttribute[Any],
    *,
    after_cursor: bool,
    newest_first: bool,
) -> AnySelect:
    """Order by `(created_at, id)`, from the cursor's row when there is one, and limited."""
    if after_cursor:
        after_created: Any = bindparam(_AFTER_CREATED_AT)
        after_id: Any = bindparam(_AFTER_ID)
        if newest_first:
            statement = statement.where(
                or_(
                    created_at < after_created, and_(created_at == after_created, row_id < after_id)
                )
            )
        else:
            statement = statement.where(
                or_(
                    created_at > after_created, and_(created_at == after_created, row_id > after_id)
                )
            )
    order = (created_at.desc(), row_id.desc()) if newest_first else (created_at, row_id)
    return statement.order_by(*order).limit(bindparam(_LIMIT, type_=Integer))


_paged_forms: PerStatement[dict[tuple[Any, ...], AnySelect]] = PerStatement()


def _paginate(
    statement: AnySelect,
    created_at: InstrumentedAttribute[datetime],
    row_id: InstrumentedAttribute[Any],
    page: PageRequest,
    *,
    newest_first: bool = False,
) -> tuple[AnySelect, dict[str, Any]]:
    """The page's statement, with one extra row to tell if more exist, and its parameters."""
    parameters: dict[str, Any] = {_LIMIT: page.limit + 1}
    if page.after is not None:
        after_created, after_text = page.after
        parameters[_AFTER_CREATED_AT] = after_created
        parameters[_AFTER_ID] = _typed_id(row_id, after_text)
    forms = _paged_forms.get(statement, dict)
    shape = (created_at, row_id, page.after is not None, newest_first)
    paged = forms.get(shape)
    if paged is None:
        paged = forms[shape] = _ordered_after(
            statement, created_at, row_id, after_cursor=shape[2], newest_first=newest_first
        )
    return paged, parameters


def _created_at_and_id(row: Any) -> tuple[datetime, Any]:
    return row.created_at, row.id


def _page_of(
    rows: Sequence[RowT],
    page: PageRequest,
    key: Callable[[RowT], tuple[datetime, Any]] = _created_at_and_id,
) -> tuple[list[RowT], str | None]:
    """Cut the extra row off and derive the next cursor from the last row kept.

    `key` gives a row's `(created_at, id)`; pass one when the id column has another name.
    """
    items = list(rows[: page.limit])
    if len(rows) <= page.limit:
        return items, None
    return items, encode_cursor(*key(items[-1]))


async def fetch_page(
    session: AsyncSession,
    statement: AnySelect,
    created_at: InstrumentedAttribute[datetime],
    row_id: InstrumentedAttribute[Any],
    page: PageRequest,
    *,
    newest_first: bool = False,
    key: Callable[[Any], tuple[datetime, Any]] | None = None,
    parameters: dict[str, Any] | None = None,
) -> tuple[list[Any], str | None]:
    """One page of `statement` in `(created_at, id)` order, and the cursor of the next one;
    `parameters` are the values of the statement's own bound parameters.

    A statement of one entity gives the entities; any other gives rows. `key` gives an item's
    `(created_at, id)` when the item has no attributes of those names (a row of several
    entities); by default they are read by the columns' names.
    """
    ordered, page_parameters = _paginate(
        statement, created_at, row_id, page, newest_first=newest_first
    )
    result = await session.execute(ordered, (parameters or {}) | page_parameters)
    # One column (an entity, say) gives its values; several give rows. Read from the result, not
    # from `statement.column_descriptions`, which would compile the statement again.
    items = result.scalars().all() if len(result.keys()) == 1 else result.all()
    if key is None:
        names = created_at.key, row_id.key

        def key(item: Any) -> tuple[datetime, Any]:
            return getattr(item, names[0]), getattr(item, names[1])

    return _page_of(items, page, key)
