"""Request dependencies of the webhook routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from backend.webhooks.service import Webhooks


async def _webhooks(request: Request) -> Webhooks:
    webhooks: Webhooks = request.app.state.webhooks
    return webhooks


WebhooksConfig = Annotated[Webhooks, Depends(_webhooks)]
