"""Process-wide services, read from the app's state and declared once as types."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from backend.core.config import Settings
from backend.core.mail import Mailer


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


async def _mailer(request: Request) -> Mailer:
    return request.app.state.mailer


AppSettings = Annotated[Settings, Depends(_settings)]
AppMailer = Annotated[Mailer, Depends(_mailer)]


def client_address(request: Request) -> str:
    """The peer address; behind a proxy, uvicorn's proxy-headers support has already set it."""
    return request.client.host if request.client else "unknown"
