"""Bodies and answers of the webhook routes, and the payloads subscribers receive."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backend.core.schemas import RequestBody
from backend.webhooks.models import DeliveryStatus
from tenants.outbox import EVENT_TYPES, EventType

EveryEvent = Annotated[
    list[Literal["*"]], Field(min_length=1, max_length=1, description="Every event type.")
]
SomeEvents = Annotated[
    list[EventType],
    Field(min_length=1, max_length=len(EVENT_TYPES), json_schema_extra={"uniqueItems": True}),
]
Subscription = Annotated[
    EveryEvent | SomeEvents,
    Field(description='Event types to receive, each once, or `["*"]` for all of them.'),
]
WebhookUrl = Annotated[
    str,
    Field(
        min_length=1,
        max_length=2048,
        pattern=r"^https?://[^\s]+$",
        description="Where events are POSTed: https (http too where private targets are allowed).",
    ),
]
Description = Annotated[str, Field(max_length=500)]


def _each_once(events: list[str]) -> list[str]:
    if len(set(events)) != len(events):
        raise ValueError("name each event type once")
    return events


class WebhookCreate(RequestBody):
    url: WebhookUrl
    events: Subscription
    description: Description = ""

    _events = field_validator("events")(_each_once)


class WebhookUpdate(RequestBody):
    url: WebhookUrl | None = None
    events: Subscription | None = None
    description: Description | None = None
    enabled: bool | None = Field(
        default=None, description="Re-enable a disabled endpoint (its pending deliveries resume)."
    )

    @field_validator("events")
    @classmethod
    def _events(cls, events: list[str] | None) -> list[str] | None:
        return None if events is None else _each_once(events)


class WebhookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    events: list[str]
    description: str
    enabled: bool
    consecutive_failures: int
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(WebhookOut):
    secret: str | None = Field(
        description="`whsec_` and base64: shown once, here. Verify with it. Null in a replayed "
        "answer (`Idempotent-Replayed: true`)."
    )


class DeliveryOut(BaseModel):
    """A delivery of one event to the endpoint (what ping and retry start)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    event_id: uuid.UUID
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None


class AttemptOut(BaseModel):
    """One attempt in the delivery log."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    delivery_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    attempt: int = Field(description="1 for the first attempt of the delivery.")
    status_code: int | None = Field(description="The HTTP status; null when none came back.")
    duration_ms: int
    error: str | None
    response_body: str | None = Field(description="The first 1 KB of the response body.")
    next_attempt_at: datetime | None = Field(
        description="When the delivery is tried again; null when it ended with this attempt."
    )
    created_at: datetime


class EventPayload(BaseModel):
    """What every subscriber receives, signed per the Standard Webhooks specification."""

    id: uuid.UUID = Field(description="The event's id, also the `webhook-id` header.")
    type: str
    tenant_id: uuid.UUID
    occurred_at: datetime
    data: dict[str, Any]


class PingData(BaseModel):
    """The `data` of a `webhook.ping` event."""

    webhook_id: uuid.UUID
    url: str
