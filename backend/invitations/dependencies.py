"""Dependencies of the invitation routes, declared once as types."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from backend.core.dependencies import AppSettings
from backend.invitations.csrf import CsrfGuard
from backend.invitations.limits import InvitationLimits


async def _csrf_guard(settings: AppSettings) -> CsrfGuard:
    return CsrfGuard.from_settings(settings)


AcceptPageCsrf = Annotated[CsrfGuard, Depends(_csrf_guard)]


def _invitation_limits(request: Request) -> InvitationLimits:
    limits: InvitationLimits = request.app.state.invitation_limits
    return limits


AppInvitationLimits = Annotated[InvitationLimits, Depends(_invitation_limits)]
