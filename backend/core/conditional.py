"""Conditional requests (RFC 9110 section 13): entity tags, `If-Match` and `If-None-Match`.

A resource's entity tag is strong and is derived from its row's version (a counter the ORM
increments on every update and checks in the UPDATE itself) and from the representation the
caller is shown (which also names the caller's role, or a user's name from another table), so
it changes whenever either does. Services take `Preconditions`, compare `If-Match` with the
current tag before writing, and write with the version they compared in the statement's WHERE:
an edit that lands in between makes the write match no row (412), never overwrites it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ColumnElement, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from backend.core.errors import CHANGED_MEANWHILE, Conflict, Problem

_ENTITY_TAG = re.compile(r'\*|(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"')

STALE_DETAIL = "The resource has changed since you read it: read it again, then retry."


class PreconditionFailed(Problem):
    status = 412

    def __init__(self, current_tag: str | None = None) -> None:
        headers = {"ETag": current_tag} if current_tag is not None else {}
        super().__init__(STALE_DETAIL, headers=headers)


def entity_tag(version: int, representation: BaseModel) -> str:
    """The strong tag of `representation` of a row at `version`."""
    body = representation.model_dump_json().encode()
    digest = hashlib.sha256(b"%d:" % version + body).hexdigest()[:20]
    return f'"{version}.{digest}"'


def _parse(header: str | None) -> tuple[str, ...] | None:
    if header is None:
        return None
    return tuple(_ENTITY_TAG.findall(header))


def _opaque(tag: str) -> str:
    return tag.removeprefix("W/")


@dataclass(frozen=True)
class Preconditions:
    """The request's `If-Match` and `If-None-Match`, each None when absent."""

    if_match: tuple[str, ...] | None = None
    if_none_match: tuple[str, ...] | None = None

    @classmethod
    def from_headers(cls, if_match: str | None, if_none_match: str | None) -> Preconditions:
        return cls(_parse(if_match), _parse(if_none_match))

    @property
    def expects_version(self) -> bool:
        return self.if_match is not None

    def require_match(self, current_tag: str | None) -> None:
        """412 unless `If-Match` is absent or names `current_tag` (strong comparison: a weak
        tag never matches). `current_tag` is None when there is no current representation."""
        if self.if_match is None:
            return
        if current_tag is not None and ("*" in self.if_match or current_tag in self.if_match):
            return
        raise PreconditionFailed(current_tag)

    def matches_none(self, current_tag: str) -> bool:
        """True unless `If-None-Match` names `current_tag` (weak comparison) or is `*`."""
        if self.if_none_match is None:
            return True
        if "*" in self.if_none_match:
            return False
        return _opaque(current_tag) not in {_opaque(tag) for tag in self.if_none_match}


ANY_VERSION = Preconditions()


class EditedMeanwhile(Conflict):
    def __init__(self) -> None:
        super().__init__(CHANGED_MEANWHILE)


async def flush_at_version(
    session: AsyncSession, precondition: Preconditions = ANY_VERSION
) -> None:
    """Flush versioned writes: when one matches no row, someone else's edit landed since the
    row was read, and is kept: 412 under `If-Match`, 409 without."""
    try:
        await session.flush()
    except StaleDataError as exc:
        if precondition.expects_version:
            raise PreconditionFailed() from exc
        raise EditedMeanwhile() from exc


async def flush_unique(
    session: AsyncSession, taken: str, precondition: Preconditions = ANY_VERSION
) -> None:
    """`flush_at_version` for writes of a table with one unique key: a clash is 409 `taken`."""
    try:
        await flush_at_version(session, precondition)
    except IntegrityError as exc:
        raise Conflict(taken) from exc


async def delete_at_version(
    session: AsyncSession,
    model: Any,
    where: ColumnElement[bool],
    version: int,
    precondition: Preconditions,
) -> None:
    """Delete the row `where` selects; under `If-Match`, only at the `version` just compared
    (412 when an edit landed in between)."""
    if not precondition.expects_version:
        await session.execute(delete(model).where(where))
        return
    statement = delete(model).where(where, model.version == version).returning(model.version)
    if (await session.execute(statement)).first() is None:
        raise PreconditionFailed()
