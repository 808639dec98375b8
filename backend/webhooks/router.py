"""HTTP routes of webhook endpoints. Thin: parse, call the service, shape the answer.

`TenantAccess` answers 404 to strangers; the service answers 403 to members who are not owners
or admins.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from backend.core.database import DbSession
from backend.core.pagination import Page
from backend.core.request_params import Pagination
from backend.webhooks import service
from backend.webhooks.dependencies import WebhooksConfig
from backend.webhooks.models import WebhookEndpoint
from backend.webhooks.schemas import (
    AttemptOut,
    DeliveryOut,
    WebhookCreate,
    WebhookOut,
    WebhookUpdate,
    WebhookWithSecret,
)
from tenants.dependencies import TenantAccess
from tenants.idempotent_routes import Idempotency, IdempotentRoute

router = APIRouter(
    prefix="/api/v1/tenants/{tenant_id}/webhooks", tags=["webhooks"], route_class=IdempotentRoute
)


def _with_secret(endpoint: WebhookEndpoint, secret: str) -> WebhookWithSecret:
    return WebhookWithSecret(**WebhookOut.model_validate(endpoint).model_dump(), secret=secret)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_webhook(
    body: WebhookCreate,
    caller: TenantAccess,
    session: DbSession,
    webhooks: WebhooksConfig,
    idempotency: Idempotency,
) -> WebhookWithSecret:
    """Register an endpoint for the events named. The signing secret is shown here once (a
    replay with the same `Idempotency-Key` answers it as null)."""
    endpoint, secret = await service.create_webhook(
        session,
        caller,
        url=body.url,
        events=list(body.events),
        description=body.description,
        webhooks=webhooks,
    )
    return _with_secret(endpoint, secret)


@router.get("")
async def list_webhooks(
    caller: TenantAccess, session: DbSession, page: Pagination
) -> Page[WebhookOut]:
    found, cursor = await service.list_webhooks(session, caller, page)
    return Page(items=[WebhookOut.model_validate(e) for e in found], next_cursor=cursor)


@router.get("/{webhook_id}")
async def read_webhook(
    webhook_id: uuid.UUID, caller: TenantAccess, session: DbSession
) -> WebhookOut:
    return WebhookOut.model_validate(await service.get_webhook(session, caller, webhook_id))


@router.patch("/{webhook_id}")
async def update_webhook(
    webhook_id: uuid.UUID,
    body: WebhookUpdate,
    caller: TenantAccess,
    session: DbSession,
    webhooks: WebhooksConfig,
) -> WebhookOut:
    """Change the fields given; `enabled: true` re-enables a disabled endpoint."""
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    endpoint = await service.update_webhook(session, caller, webhook_id, changes, webhooks=webhooks)
    return WebhookOut.model_validate(endpoint)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(webhook_id: uuid.UUID, caller: TenantAccess, session: DbSession) -> None:
    await service.delete_webhook(session, caller, webhook_id)


@router.post("/{webhook_id}/ping", status_code=status.HTTP_202_ACCEPTED)
async def ping_webhook(
    webhook_id: uuid.UUID, caller: TenantAccess, session: DbSession
) -> DeliveryOut:
    """Send a `webhook.ping` event to this endpoint; its delivery log shows the answer."""
    return DeliveryOut.model_validate(await service.ping_webhook(session, caller, webhook_id))


@router.post("/{webhook_id}/rotate-secret")
async def rotate_webhook_secret(
    webhook_id: uuid.UUID, caller: TenantAccess, session: DbSession, webhooks: WebhooksConfig
) -> WebhookWithSecret:
    """A new signing secret, shown here once. The previous one signs beside it for 24 hours
    (two `v1,` signatures in `webhook-signature`)."""
    endpoint, secret = await service.rotate_secret(session, caller, webhook_id, webhooks=webhooks)
    return _with_secret(endpoint, secret)


@router.get("/{webhook_id}/deliveries")
async def list_webhook_deliveries(
    webhook_id: uuid.UUID, caller: TenantAccess, session: DbSession, page: Pagination
) -> Page[AttemptOut]:
    """The delivery log: one item per attempt, newest first."""
    attempts, cursor = await service.list_attempts(session, caller, webhook_id, page)
    return Page(items=[AttemptOut.model_validate(a) for a in attempts], next_cursor=cursor)


@router.post("/{webhook_id}/deliveries/{delivery_id}/retry", status_code=status.HTTP_202_ACCEPTED)
async def retry_webhook_delivery(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, caller: TenantAccess, session: DbSession
) -> DeliveryOut:
    """Send that event to this endpoint again, now."""
    delivery = await service.retry_delivery(session, caller, webhook_id, delivery_id)
    return DeliveryOut.model_validate(delivery)
