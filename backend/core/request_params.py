"""Request parameters that many routes share, as `Annotated` dependencies, with their OpenAPI
documentation: a page of a list (`Pagination`), and the conditional-request headers
(`IfMatch`, `IfNoneMatch`, `tagged`). What they parse is plain data (`PageRequest`,
`Preconditions`) that services take; the rules live in `pagination` and `conditional`. And the
answer of a list read as rows (`rows_page_response`).

Every dependency here is `async def`: FastAPI runs a plain `def` one in a worker thread, a hop
there and back on every request for work that never blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Response

from backend.core.conditional import Preconditions
from backend.core.errors import NotModified
from backend.core.pagination import (
    CURSOR_PATTERN,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    PageRequest,
    decode_cursor,
)
from backend.core.schemas import model_json


async def _page_request(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=CURSOR_PATTERN,
            description="`next_cursor` of the previous page; a cursor not issued here is 400.",
        ),
    ] = None,
) -> PageRequest:
    return PageRequest(limit=limit, after=decode_cursor(cursor) if cursor else None)


Pagination = Annotated[PageRequest, Depends(_page_request)]


def json_response(body: bytes, status_code: int = 200, etag: str | None = None) -> Response:
    headers = {"ETag": etag} if etag is not None else None
    return Response(body, status_code, headers, media_type="application/json")


def rows_page_response(rows: Sequence[Any], next_cursor: str | None) -> Response:
    """A `Page` of rows as JSON, serialised straight from the rows (`model_json`): for a route
    whose statement selects exactly the item model's fields as typed columns."""
    # The names once per page: `Row._asdict` would look each one up again in every row.
    names = rows[0]._fields if rows else ()
    page = {
        "items": [dict(zip(names, row, strict=True)) for row in rows],
        "next_cursor": next_cursor,
    }
    return json_response(model_json(page))


def tagged(response: Response, preconditions: Preconditions, current_tag: str) -> None:
    """Answer a GET: 304 when `If-None-Match` names the current tag, else send the tag."""
    require_modified(preconditions, current_tag)
    response.headers["ETag"] = current_tag


def require_modified(preconditions: Preconditions, current_tag: str) -> None:
    """304 when `If-None-Match` names the current tag."""
    if not preconditions.matches_none(current_tag):
        raise NotModified(current_tag)


async def _write_preconditions(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description="Write only if the resource's current `ETag` is one of these "
            "(or `*`); otherwise 412, and nothing is written.",
        ),
    ] = None,
) -> Preconditions:
    return Preconditions.from_headers(if_match, None)


async def _read_preconditions(
    if_none_match: Annotated[
        str | None,
        Header(
            alias="If-None-Match",
            description="304 Not Modified when the current `ETag` is one of these.",
        ),
    ] = None,
) -> Preconditions:
    return Preconditions.from_headers(None, if_none_match)


IfMatch = Annotated[Preconditions, Depends(_write_preconditions)]
IfNoneMatch = Annotated[Preconditions, Depends(_read_preconditions)]

ETAG_HEADER = {
    "ETag": {
        "description": "The resource's strong entity tag; send it back in `If-Match` to write "
        "only if nobody changed it since, or in `If-None-Match` to skip an unchanged read.",
        "schema": {"type": "string"},
    }
}
_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}

# The OpenAPI `responses` of routes that read (ETag, 304) and that write (412) a resource.
READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"headers": ETAG_HEADER},
    304: {
        "description": "Not Modified: `If-None-Match` names the current ETag.",
        "headers": ETAG_HEADER,
    },
}
WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    412: {
        "description": "Precondition Failed: `If-Match` does not name the current ETag "
        "(someone changed the resource since it was read); nothing was written.",
        "content": _PROBLEM,
    },
}
UPDATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"headers": ETAG_HEADER},
    **WRITE_RESPONSES,
}
