"""Every model has a factory, and each factory's rows (in each trait) store with their parents."""

from __future__ import annotations

from typing import Any

import factory
import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.leases import Lease
from backend.identity.models import User
from backend.models import metadata
from tests.factories import ModelFactory, persist, rows_to_store

FACTORIES: list[type[ModelFactory]] = ModelFactory.__subclasses__()


def _traits(factory_class: type[ModelFactory]) -> list[str]:
    parameters = factory_class._meta.parameters
    return [name for name, value in parameters.items() if isinstance(value, factory.Trait)]


CASES = [
    pytest.param(factory_class, trait, id=f"{factory_class.__name__}-{trait or 'default'}")
    for factory_class in FACTORIES
    for trait in [None, *_traits(factory_class)]
]


def test_every_table_has_a_factory() -> None:
    built = {factory_class._meta.model.__table__.name for factory_class in FACTORIES}
    assert built == set(metadata.tables)


def _owner_only(row: object) -> bool:
    """Rows the app role may not insert: a superuser (least privilege), a lease (the
    migrations make them)."""
    return (isinstance(row, User) and row.is_superuser) or isinstance(row, Lease)


@pytest.mark.parametrize(("factory_class", "trait"), CASES)
async def test_a_factory_row_stores_with_the_parents_it_built(
    db: AsyncSession, owner_db: AsyncSession, factory_class: type[ModelFactory], trait: str | None
) -> None:
    arguments: dict[str, Any] = {trait: True} if trait else {}
    built = factory_class(**arguments)
    session = owner_db if any(_owner_only(row) for row in rows_to_store(built)) else db

    row = await persist(session, built)

    assert inspect(row).persistent
