"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from sqlalchemy import text

from backend.core.database import get_database
from backend.core.errors import ServiceUnavailable

router = APIRouter(prefix="/health", tags=["health"])

READINESS_TIMEOUT_SECONDS = 3.0


@router.get("/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request) -> dict[str, str]:
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            async with get_database(request).engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to reach the database means "not ready"
        raise ServiceUnavailable("The database is not reachable.") from exc
    return {"status": "ok", "database": "ok"}
