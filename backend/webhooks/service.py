"""Webhook endpoints of a tenant: create, read, change, delete, ping, rotate the secret, and the
delivery log. Services take the session and a `TenantCaller` (owners and admins: the tenant's
MANAGE action), record their audit event, and never commit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.audit import apply_changes
from backend.core.config import Settings
from backend.core.database import utcnow
from backend.core.errors import Conflict, NotFound, Problem
from backend.core.pagination import PageRequest, fetch_page
from backend.webhooks.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from backend.webhooks.schemas import PingData
from backend.webhooks.signing import SecretBox, generate_secret
from backend.webhooks.targets import Resolver, TargetPolicy, TargetRefused
from tenants.audit import record_audit
from tenants.caller import TenantCaller
from tenants.outbox import PING, OutboxEvent
from tenants.roles import TenantAction

WEBHOOK_NOT_FOUND = "No webhook endpoint of this tenant has this id."
DELIVERY_NOT_FOUND = "No delivery to this webhook endpoint has this id."
ENDPOINT_DISABLED = "This endpoint is disabled: enable it first (PATCH enabled=true)."
# After a rotation the old secret signs beside the new one for this long, so that receivers
# can switch without missing a message.
PREVIOUS_SECRET_LIFETIME = timedelta(hours=24)


@dataclass(frozen=True)
class Webhooks:
    """What the webhook services need beyond the session, built once per process."""

    policy: TargetPolicy
    secrets: SecretBox

    @classmethod
    def from_settings(cls, settings: Settings, resolver: Resolver | None = None) -> Webhooks:
        return cls(TargetPolicy.from_settings(settings, resolver), SecretBox(settings))


class TargetNotAllowed(Problem):
    status = 422

    def __init__(self, reason: str) -> None:
        issue = {"loc": ["body", "url"], "msg": reason, "type": "webhook_target"}
        super().__init__(reason, extra={"errors": [issue]})


async def _check_target(webhooks: Webhooks, url: str) -> None:
    try:
        await webhooks.policy.check(url)
    except TargetRefused as exc:
        raise TargetNotAllowed(str(exc)) from exc


def _shown_url(url: str) -> str:
    """The URL as the audit log keeps it: without a query, which may carry a token."""
    parts = urlsplit(url)
    return parts._replace(query="", fragment="").geturl()


async def create_webhook(
    session: AsyncSession,
    caller: TenantCaller,
    *,
    url: str,
    events: list[str],
    description: str,
    webhooks: Webhooks,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint, and its signing secret (shown to the caller once)."""
    caller.require(TenantAction.MANAGE)
    await _check_target(webhooks, url)
    secret = generate_secret()
    now = utcnow()
    endpoint = WebhookEndpoint(
        id=uuid.uuid4(),
        url=url,
        events=events,
        description=description,
        secret_encrypted=webhooks.secrets.seal(secret),
        enabled=True,
        consecutive_failures=0,
        created_by=caller.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    data = {"url": _shown_url(url), "events": events}
    record_audit(session, caller.actor, "webhook.created", "webhook", endpoint.id, data)
    await session.flush()
    return endpoint, secret


async def list_webhooks(
    session: AsyncSession, caller: TenantCaller, page: PageRequest
) -> tuple[list[WebhookEndpoint], str | None]:
    caller.require(TenantAction.MANAGE)
    return await fetch_page(
        session, select(WebhookEndpoint), WebhookEndpoint.created_at, WebhookEndpoint.id, page
    )


async def get_webhook(
    session: AsyncSession, caller: TenantCaller, webhook_id: uuid.UUID
) -> WebhookEndpoint:
    caller.require(TenantAction.MANAGE)
    endpoint = await session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.id == webhook_id))
    if endpoint is None:
        raise NotFound(WEBHOOK_NOT_FOUND)
    return endpoint


async def set_deliveries_due(session: AsyncSession, endpoint_id: uuid.UUID, *, due: bool) -> None:
    """Make the endpoint's pending deliveries due now, or park them (a disabled endpoint):
    parked deliveries wait without costing the dispatcher anything."""
    await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
        )
        .values(next_attempt_at=utcnow() if due else None)
        .execution_options(synchronize_session=False)
    )


async def update_webhook(
    session: AsyncSession,
    caller: TenantCaller,
    webhook_id: uuid.UUID,
    changes: dict[str, Any],
    *,
    webhooks: Webhooks,
) -> WebhookEndpoint:
    """Change the fields given (url, events, description, enabled). Re-enabling resets the
    failure count and resumes the pending deliveries; disabling parks them."""
    endpoint = await get_webhook(session, caller, webhook_id)
    if "url" in changes:
        await _check_target(webhooks, changes["url"])
    was_enabled = endpoint.enabled
    changed = apply_changes(endpoint, changes)
    if not changed:
        return endpoint
    if "enabled" in changed:
        if endpoint.enabled:
            endpoint.consecutive_failures = 0
        await set_deliveries_due(session, endpoint.id, due=endpoint.enabled and not was_enabled)
    if "url" in changed:
        changed["url"] = {
            "from": _shown_url(changed["url"]["from"]),
            "to": _shown_url(endpoint.url),
        }
    record_audit(session, caller.actor, "webhook.updated", "webhook", endpoint.id, changed)
    await session.flush()
    return endpoint


async def delete_webhook(
    session: AsyncSession, caller: TenantCaller, webhook_id: uuid.UUID
) -> None:
    """Delete the endpoint with its deliveries and their log (ON DELETE CASCADE)."""
    endpoint = await get_webhook(session, caller, webhook_id)
    data = {"url": _shown_url(endpoint.url)}
    record_audit(session, caller.actor, "webhook.deleted", "webhook", endpoint.id, data)
    await session.delete(endpoint)
    await session.flush()


async def rotate_secret(
    session: AsyncSession, caller: TenantCaller, webhook_id: uuid.UUID, *, webhooks: Webhooks
) -> tuple[WebhookEndpoint, str]:
    """A new signing secret (shown once); the current one keeps signing beside it for 24 h."""
    endpoint = await get_webhook(session, caller, webhook_id)
    secret = generate_secret()
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted
    endpoint.previous_secret_expires_at = utcnow() + PREVIOUS_SECRET_LIFETIME
    endpoint.secret_encrypted = webhooks.secrets.seal(secret)
    data = {"previous_secret_expires_at": endpoint.previous_secret_expires_at.isoformat()}
    record_audit(session, caller.actor, "webhook.secret_rotated", "webhook", endpoint.id, data)
    await session.flush()
    return endpoint, secret


async def ping_webhook(
    session: AsyncSession, caller: TenantCaller, webhook_id: uuid.UUID
) -> WebhookDelivery:
    """Send a `webhook.ping` event to this endpoint alone, as soon as the dispatcher can."""
    endpoint = await get_webhook(session, caller, webhook_id)
    if not endpoint.enabled:
        raise Conflict(ENDPOINT_DISABLED)
    now = utcnow()
    event = OutboxEvent(
        id=uuid.uuid4(),
        type=PING,
        data=PingData(webhook_id=endpoint.id, url=endpoint.url).model_dump(mode="json"),
        occurred_at=now,
        dispatch_after=None,  # already handed to its one endpoint, below
    )
    delivery = WebhookDelivery(
        id=uuid.uuid4(),
        endpoint_id=endpoint.id,
        event_id=event.id,
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(event)
    await session.flush()  # the event first: the delivery's foreign key points at it
    session.add(delivery)
    data = {"event_id": str(event.id)}
    record_audit(session, caller.actor, "webhook.pinged", "webhook", endpoint.id, data)
    await session.flush()
    return delivery


async def list_attempts(
    session: AsyncSession, caller: TenantCaller, webhook_id: uuid.UUID, page: PageRequest
) -> tuple[list[WebhookAttempt], str | None]:
    """The endpoint's delivery log, one item per attempt, newest first."""
    endpoint = await get_webhook(session, caller, webhook_id)
    statement = select(WebhookAttempt).where(WebhookAttempt.endpoint_id == endpoint.id)
    return await fetch_page(
        session,
        statement,
        WebhookAttempt.created_at,
        WebhookAttempt.id,
        page,
        newest_first=True,
    )


async def retry_delivery(
    session: AsyncSession, caller: TenantCaller, webhook_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery:
    """Make the delivery due now, whatever its state (a failed one gets one more attempt).

    409 while a dispatcher is sending it, so that it is never sent twice at once.
    """
    endpoint = await get_webhook(session, caller, webhook_id)
    if not endpoint.enabled:
        raise Conflict(ENDPOINT_DISABLED)
    delivery = await session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint.id
        )
    )
    if delivery is None:
        raise NotFound(DELIVERY_NOT_FOUND)
    now = utcnow()
    if delivery.claimed_until is not None and delivery.claimed_until > now:
        raise Conflict("This delivery is being sent right now.")
    previous = delivery.status
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = now
    data = {"delivery_id": str(delivery.id), "status": previous.value}
    record_audit(session, caller.actor, "webhook.delivery_retried", "webhook", endpoint.id, data)
    await session.flush()
    return delivery
