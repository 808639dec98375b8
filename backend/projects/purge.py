"""The purge: the trash past `TRASH_RETENTION_DAYS`, tenants past their grace period,
idempotency keys past their day (`tenants.idempotency`), and the webhook history whose work is
over past `WEBHOOK_LOG_RETENTION_DAYS` (`backend.webhooks.retention`).

Run by `tenantdesk purge`, and daily in-process (`purge_daily`, started with the app). Of
several workers only one purges at a time: each run holds the `purge` lease
(`backend.core.leases`), claimed with one `UPDATE ... RETURNING`. The daily schedule is a lease
too (`purge.daily`): the worker that claims it runs the day's purge, and it is held for a day.

Nothing here reads across tenants: tenants are a global table, and each tenant's trash and
webhook history are purged in a transaction of its own, inside that tenant's context (row-level
security applies).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from dataclasses import asdict, dataclass
from datetime import timedelta

from sqlalchemy import select

from backend.core.config import Settings
from backend.core.database import Database, utcnow
from backend.core.leases import DAILY_PURGE_LEASE, PURGE_LEASE, claim_lease, release_lease
from backend.projects.trash import purge_trash
from backend.webhooks.retention import purge_webhook_history
from tenants.idempotency import purge_idempotency_keys
from tenants.isolation import enter_tenant
from tenants.lifecycle import purge_due_tenant, tenants_due_for_purge
from tenants.models import Tenant

logger = logging.getLogger(__name__)

# How long a run may hold the lease before another worker may take over (a crashed holder).
RUN_LEASE = timedelta(hours=1)


@dataclass(frozen=True)
class PurgeReport:
    tenants: int
    projects: int
    tasks: int
    idempotency_keys: int = 0
    webhook_events: int = 0


def lease_holder() -> str:
    """Who holds a lease: this host and process, and a nonce for each call."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def run_purge(database: Database, settings: Settings) -> PurgeReport | None:
    """Purge what is due, holding the `purge` lease; None when another worker holds it."""
    holder = lease_holder()
    async with database.session_factory() as session, session.begin():
        if await claim_lease(session, PURGE_LEASE, holder, RUN_LEASE) is None:
            return None
    try:
        return await _purge(database, settings)
    finally:
        async with database.session_factory() as session, session.begin():
            await release_lease(session, PURGE_LEASE, holder)


async def _purge(database: Database, settings: Settings) -> PurgeReport:
    now = utcnow()
    async with database.session_factory() as session:
        due = await tenants_due_for_purge(session, now)
    tenants = 0
    for tenant_id in due:
        async with database.session_factory() as session, session.begin():
            tenants += await purge_due_tenant(session, tenant_id, now)
    before = now - timedelta(days=settings.trash_retention_days)
    webhooks_before = now - timedelta(days=settings.webhook_log_retention_days)
    async with database.session_factory() as session:
        tenant_ids = list(await session.scalars(select(Tenant.id).order_by(Tenant.id)))
    projects = tasks = events = 0
    for tenant_id in tenant_ids:
        async with database.session_factory() as session, session.begin():
            await enter_tenant(session, tenant_id)
            purged_projects, purged_tasks = await purge_trash(session, before)
            events += await purge_webhook_history(session, webhooks_before)
        projects, tasks = projects + purged_projects, tasks + purged_tasks
    async with database.session_factory() as session, session.begin():
        keys = await purge_idempotency_keys(session, now=now)
    report = PurgeReport(tenants, projects, tasks, keys, events)
    logger.info("purge done", extra=asdict(report))
    return report


async def purge_daily(database: Database, settings: Settings) -> None:
    """Every `PURGE_CHECK_SECONDS`, run the purge if this worker claims the day's turn
    (`PURGE_INTERVAL_SECONDS`). A failed run (the database down, say) is logged and gives the
    turn back, so that the next check of any worker tries again."""
    interval = timedelta(seconds=settings.purge_interval_seconds)
    while True:
        holder = lease_holder()
        claimed = False
        try:
            async with database.session_factory() as session, session.begin():
                claimed = (
                    await claim_lease(session, DAILY_PURGE_LEASE, holder, interval) is not None
                )
            if claimed:
                await run_purge(database, settings)
        except Exception:
            logger.exception("the daily purge failed; it is tried again at the next check")
            if claimed:
                await _give_back(database, holder)
        await asyncio.sleep(settings.purge_check_seconds)


async def _give_back(database: Database, holder: str) -> None:
    try:
        async with database.session_factory() as session, session.begin():
            await release_lease(session, DAILY_PURGE_LEASE, holder)
    except Exception:
        logger.exception("the daily purge's turn could not be given back")
