"""Leases: one row per periodic job, so that of several workers only one runs it at a time.

A worker claims a lease with one conditional `UPDATE ... RETURNING`, which works alike on
PostgreSQL (the second of two racing claims waits on the row lock, then matches nothing) and on
SQLite (writers are serialised by the database lock). The claim holds until `held_until`; the
holder may release it earlier. Migrations create the rows (`0005_soft_delete`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import String, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.database import Base, utcnow

# The purge of the trash and of tenants past their grace period: held while a run lasts.
PURGE_LEASE = "purge"
# The in-process schedule: whoever claims it runs the day's purge; it is never released.
DAILY_PURGE_LEASE = "purge.daily"


class Lease(Base):
    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200), default="")
    held_until: Mapped[datetime]


async def claim_lease(
    session: AsyncSession, name: str, holder: str, duration: timedelta
) -> datetime | None:
    """Claim `name` for `duration` unless someone holds it: the time it is held until, or None.
    Commit to make the claim visible to the other workers."""
    now = utcnow()
    claimed: datetime | None = await session.scalar(
        update(Lease)
        .where(Lease.name == name, Lease.held_until <= now)
        .values(holder=holder, held_until=now + duration)
        .returning(Lease.held_until)
    )
    return claimed


async def release_lease(session: AsyncSession, name: str, holder: str) -> None:
    """Let the next claim of `name` succeed at once, if `holder` still holds it."""
    await session.execute(
        update(Lease).where(Lease.name == name, Lease.holder == holder).values(held_until=utcnow())
    )
