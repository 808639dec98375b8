"""The dispatcher: turns outbox events into deliveries, and sends the deliveries that are due.

It polls (every `WEBHOOK_POLL_INTERVAL_SECONDS`). Each pass asks which tenants have work, the
one look across tenants (two SECURITY DEFINER functions on PostgreSQL that return tenant ids
only), then works tenant by tenant, in that tenant's context like any request:

1. **Hand out events.** The tenant's undispatched events are claimed by an `UPDATE ... RETURNING`
   (rows locked with `FOR UPDATE SKIP LOCKED` on PostgreSQL) and a delivery is added for each
   enabled endpoint subscribed to the type, in the same transaction: never twice, never lost.
2. **Claim due deliveries** with a lease: `UPDATE ... SET claimed_until, claim_token ...
   RETURNING`, committed before anything is sent. Another dispatcher skips a leased delivery
   until its lease has passed, so no delivery is sent twice at once; one whose dispatcher died
   is sent again after the lease (at least once).
3. **Send** each in a task of its own (a slow receiver holds up nobody), then record the attempt
   and the delivery's next state, only if the lease is still the sender's (`claim_token`).

Everything lives in the database, so pending deliveries resume after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Update, and_, or_, select, union, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from backend.core.audit import Actor
from backend.core.config import Settings
from backend.core.database import Database, run_after_commit, utcnow
from backend.core.errors import OutageLog, is_database_unavailable
from backend.core.mail import Mailer, render_mail
from backend.identity.models import User
from backend.webhooks.delivery import Outcome, Sender, next_attempt_at
from backend.webhooks.models import (
    DELIVERIES_DUE,
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from backend.webhooks.service import Webhooks, set_deliveries_due
from backend.webhooks.signing import signature_header
from backend.webhooks.targets import Resolver
from tenants.audit import record_audit
from tenants.isolation import cross_tenant_rows, enter_tenant
from tenants.models import Membership, Tenant
from tenants.outbox import ALL_EVENTS, EVENTS_TO_DISPATCH, OutboxEvent
from tenants.roles import TenantRole

logger = logging.getLogger(__name__)

BATCH = 100
CONCURRENT_SENDS = 32
# A lease outlasts the longest attempt, with room for recording it.
LEASE_MARGIN = timedelta(seconds=30)
SYSTEM = Actor()
DISPATCHER_TASK = "webhook-dispatcher"


@dataclass(frozen=True)
class Claimed:
    """A leased delivery, with what sending it needs."""

    delivery_id: uuid.UUID
    tenant_id: uuid.UUID
    token: uuid.UUID
    attempts: int
    endpoint_id: uuid.UUID
    url: str
    secrets: list[str]
    event_id: uuid.UUID
    event_type: str
    body: bytes


def _subscribed(events: list[str], event_type: str) -> bool:
    return ALL_EVENTS in events or event_type in events


def _claim(
    model: type[OutboxEvent] | type[WebhookDelivery],
    due: ColumnElement[bool],
    order: InstrumentedAttribute[Any],
    **values: Any,
) -> Update:
    """`UPDATE` a batch of `model`'s rows where `due`, oldest `order` first, to `values`.

    The batch is locked as it is picked (`FOR UPDATE SKIP LOCKED` on PostgreSQL: two claimers
    take different rows; SQLite has one writer at a time), and `due` is checked again on each
    row updated: a row another claimer took meanwhile is left out.
    """
    batch = select(model.id).where(due).order_by(order).limit(BATCH)
    return (
        update(model)
        .where(model.id.in_(batch.with_for_update(skip_locked=True)), due)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


class Dispatcher:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        mailer: Mailer,
        *,
        resolver: Resolver | None = None,
        outages: OutageLog | None = None,
    ) -> None:
        self.database = database
        self.outages = outages or OutageLog()
        self.settings = settings
        self.mailer = mailer
        self.webhooks = Webhooks.from_settings(settings, resolver)
        self.sender = Sender(settings, self.webhooks.policy)
        self.lease = timedelta(seconds=settings.webhook_timeout_seconds) + LEASE_MARGIN
        self._slots = asyncio.Semaphore(CONCURRENT_SENDS)
        self._sending: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    # -- running ---------------------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.create_task(self.run_forever(), name=DISPATCHER_TASK)

    async def run_forever(self) -> None:
        interval = self.settings.webhook_poll_interval_seconds
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except Exception as exc:  # the loop outlives any one pass
                self._report(exc, "webhook dispatcher pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=interval)

    async def stop(self, grace_seconds: float) -> None:
        """Stop polling; let sends under way finish within `grace_seconds`, then cancel them
        (their leases run out and they are sent again, by this or another dispatcher). Once it
        returns, nothing of this dispatcher runs any more."""
        self._stopping.set()
        if self._loop is not None:
            await asyncio.wait({self._loop}, timeout=grace_seconds)
            self._loop.cancel()
            await asyncio.wait({self._loop})  # a pass cut short ends before this returns
        if self._sending:
            _, pending = await asyncio.wait(set(self._sending), timeout=grace_seconds)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        await self.sender.aclose()

    async def run_once(self) -> None:
        """One pass: hand out new events, and start sending what is due."""
        now = utcnow()
        for tenant_id in await self._tenants_with_work(now):
            await self._hand_out_events(tenant_id, now)
            for claimed in await self._claim_due(tenant_id, now):
                task = asyncio.create_task(self._send(claimed))
                self._sending.add(task)
                task.add_done_callback(self._sending.discard)

    async def drain(self) -> None:
        """Wait for the sends started so far (tests, and `tenantdesk worker --once`)."""
        while self._sending:
            await asyncio.wait(set(self._sending))

    # -- finding work ------------------------------------------------------------------------

    async def _tenants_with_work(self, now: datetime) -> list[uuid.UUID]:
        async with self.database.session_factory() as session, session.begin():
            events = cross_tenant_rows(session, EVENTS_TO_DISPATCH, now)
            deliveries = cross_tenant_rows(session, DELIVERIES_DUE, now)
            found = union(select(events.c.tenant_id), select(deliveries.c.tenant_id))
            return list((await session.scalars(select(found.subquery().c.tenant_id))).all())

    async def _hand_out_events(self, tenant_id: uuid.UUID, now: datetime) -> None:
        async with self.database.session_factory() as session, session.begin():
            await enter_tenant(session, tenant_id)
            undispatched = OutboxEvent.dispatch_after <= now
            handing_out = _claim(
                OutboxEvent, undispatched, OutboxEvent.dispatch_after, dispatch_after=None
            )
            claimed = (
                await session.execute(handing_out.returning(OutboxEvent.id, OutboxEvent.type))
            ).all()
            if not claimed:
                return
            endpoints = (
                await session.execute(
                    select(WebhookEndpoint.id, WebhookEndpoint.events).where(
                        WebhookEndpoint.enabled.is_(True)
                    )
                )
            ).all()
            session.add_all(
                WebhookDelivery(
                    id=uuid.uuid4(),
                    endpoint_id=endpoint_id,
                    event_id=event_id,
                    status=DeliveryStatus.PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
                for event_id, event_type in claimed
                for endpoint_id, events in endpoints
                if _subscribed(events, event_type)
            )

    async def _claim_due(self, tenant_id: uuid.UUID, now: datetime) -> list[Claimed]:
        token = uuid.uuid4()
        free = or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now)
        due = and_(WebhookDelivery.next_attempt_at <= now, free)
        async with self.database.session_factory() as session, session.begin():
            await enter_tenant(session, tenant_id)
            leasing = _claim(
                WebhookDelivery,
                due,
                WebhookDelivery.next_attempt_at,
                claimed_until=now + self.lease,
                claim_token=token,
            )
            ids = (await session.scalars(leasing.returning(WebhookDelivery.id))).all()
            if not ids:
                return []
            return await self._load(session, tenant_id, token, list(ids))

    async def _load(
        self, session: AsyncSession, tenant_id: uuid.UUID, token: uuid.UUID, ids: list[uuid.UUID]
    ) -> list[Claimed]:
        rows = (
            await session.execute(
                select(WebhookDelivery.id, WebhookDelivery.attempts, WebhookEndpoint, OutboxEvent)
                .join(
                    WebhookEndpoint,
                    and_(
                        WebhookEndpoint.tenant_id == WebhookDelivery.tenant_id,
                        WebhookEndpoint.id == WebhookDelivery.endpoint_id,
                    ),
                )
                .join(
                    OutboxEvent,
                    and_(
                        OutboxEvent.tenant_id == WebhookDelivery.tenant_id,
                        OutboxEvent.id == WebhookDelivery.event_id,
                    ),
                )
                .where(WebhookDelivery.id.in_(ids))
            )
        ).all()
        claimed = []
        for delivery_id, attempts, endpoint, event in rows:
            if not endpoint.enabled:  # disabled after the event was handed out: park it
                await set_deliveries_due(session, endpoint.id, due=False)
                continue
            claimed.append(
                Claimed(
                    delivery_id=delivery_id,
                    tenant_id=tenant_id,
                    token=token,
                    attempts=attempts,
                    endpoint_id=endpoint.id,
                    url=endpoint.url,
                    secrets=self._signing_secrets(endpoint),
                    event_id=event.id,
                    event_type=event.type,
                    body=orjson.dumps(event.payload()),
                )
            )
        return claimed

    def _signing_secrets(self, endpoint: WebhookEndpoint) -> list[str]:
        box = self.webhooks.secrets
        secrets = [box.open(endpoint.secret_encrypted)]
        previous, until = endpoint.previous_secret_encrypted, endpoint.previous_secret_expires_at
        if previous is not None and until is not None and until > utcnow():
            secrets.append(box.open(previous))
        return secrets

    # -- sending -------------------------------------------------------------------------------

    async def _send(self, claimed: Claimed) -> None:
        async with self._slots:
            headers = signature_header(
                claimed.secrets, str(claimed.event_id), utcnow(), claimed.body
            )
            outcome = await self.sender.send(claimed.url, headers, claimed.body)
        try:
            await self._record(claimed, outcome)
        except Exception as exc:
            # Not recorded: the lease runs out and the delivery is sent again (at least once).
            self._report(exc, "webhook attempt not recorded")

    def _report(self, exc: Exception, what: str) -> None:
        """A database outage is one WARNING for the whole process (the work waits in the
        database for the next pass); anything else is a bug, logged with its traceback."""
        if is_database_unavailable(exc):
            self.outages.report(exc)
        else:
            logger.error(what, exc_info=exc)

    async def _record(self, claimed: Claimed, outcome: Outcome) -> None:
        now = utcnow()
        attempts = claimed.attempts + 1
        retry_at = (
            None
            if outcome.succeeded
            else next_attempt_at(self.settings.webhook_retry_schedule_seconds, attempts, now)
        )
        if outcome.succeeded:
            status = DeliveryStatus.SUCCEEDED
        else:
            status = DeliveryStatus.PENDING if retry_at else DeliveryStatus.FAILED
        async with self.database.session_factory() as session:
            async with session.begin():
                await enter_tenant(session, claimed.tenant_id)
                session.add(
                    WebhookAttempt(
                        id=uuid.uuid4(),
                        delivery_id=claimed.delivery_id,
                        endpoint_id=claimed.endpoint_id,
                        event_id=claimed.event_id,
                        event_type=claimed.event_type,
                        attempt=attempts,
                        status_code=outcome.status_code,
                        duration_ms=outcome.duration_ms,
                        error=outcome.error,
                        response_body=outcome.response_body,
                        next_attempt_at=retry_at,
                        created_at=now,
                    )
                )
                kept = await session.execute(
                    update(WebhookDelivery)
                    .where(
                        WebhookDelivery.id == claimed.delivery_id,
                        WebhookDelivery.claim_token == claimed.token,
                    )
                    .values(
                        status=status,
                        attempts=attempts,
                        next_attempt_at=retry_at,
                        claimed_until=None,
                        claim_token=None,
                    )
                    .execution_options(synchronize_session=False)
                )
                if kept.rowcount and status is not DeliveryStatus.PENDING:  # type: ignore[attr-defined]
                    await self._count_outcome(session, claimed, status)
            await run_after_commit(session)

    async def _count_outcome(
        self, session: AsyncSession, claimed: Claimed, status: DeliveryStatus
    ) -> None:
        """A delivery ended: reset the endpoint's failure count, or add to it and disable the
        endpoint at `WEBHOOK_DISABLE_AFTER_FAILURES`."""
        endpoint = WebhookEndpoint
        if status is DeliveryStatus.SUCCEEDED:
            await session.execute(
                update(endpoint)
                .where(endpoint.id == claimed.endpoint_id, endpoint.consecutive_failures != 0)
                .values(consecutive_failures=0)
                .execution_options(synchronize_session=False)
            )
            return
        failures = await session.scalar(
            update(endpoint)
            .where(endpoint.id == claimed.endpoint_id)
            .values(consecutive_failures=endpoint.consecutive_failures + 1)
            .returning(endpoint.consecutive_failures)
            .execution_options(synchronize_session=False)
        )
        if failures is None or failures < self.settings.webhook_disable_after_failures:
            return
        disabled = await session.scalar(
            update(endpoint)
            .where(endpoint.id == claimed.endpoint_id, endpoint.enabled.is_(True))
            .values(enabled=False)
            .returning(endpoint.url)
            .execution_options(synchronize_session=False)
        )
        if disabled is None:
            return
        await set_deliveries_due(session, claimed.endpoint_id, due=False)
        data = {"consecutive_failures": failures}
        record_audit(session, SYSTEM, "webhook.disabled", "webhook", claimed.endpoint_id, data)
        await self._mail_owners(session, claimed, disabled, failures)

    async def _mail_owners(
        self, session: AsyncSession, claimed: Claimed, url: str, failures: int
    ) -> None:
        tenant_name = await session.scalar(
            select(Tenant.name).where(Tenant.id == claimed.tenant_id)
        )
        owners = await session.scalars(
            select(User.email)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.role == TenantRole.OWNER, User.is_active.is_(True))
        )
        for email in owners:
            mail = render_mail(
                email,
                "webhook_disabled",
                tenant_name=tenant_name,
                url=url,
                failures=failures,
                webhook_id=str(claimed.endpoint_id),
            )
            self.mailer.send_after_commit(session, mail)
