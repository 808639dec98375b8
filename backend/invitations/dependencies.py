"""Dependencies of the invitation routes, declared once as types."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from backend.core.dependencies import AppSettings
from backend.invitations.csrf import CsrfGuard


async def _csrf_guard(settings: AppSettings) -> CsrfGuard:
    return CsrfGuard.from_settings(settings)


AcceptPageCsrf = Annotated[CsrfGuard, Depends(_csrf_guard)]
