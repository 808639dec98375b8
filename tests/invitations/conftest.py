"""The `acme` fixture: see helpers.py for who is in it."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.invitations.helpers import build_acme
from tests.world import TenantWorld


@pytest.fixture
async def acme(db: AsyncSession) -> TenantWorld:
    return await build_acme(db)
