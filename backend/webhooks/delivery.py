"""One HTTP attempt of a delivery: POST the signed payload, keep what came back.

No redirect is followed (a 3xx is a failed attempt), no proxy from the environment is used, and
every connection goes through the target policy (`targets.GuardedNetwork`). The whole attempt,
connection included, is bounded by `WEBHOOK_TIMEOUT_SECONDS`; only the first 1 KB of the
answer is read.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpcore
import httpx

from backend.core.config import Settings
from backend.webhooks.targets import GuardedNetwork, TargetPolicy

RESPONSE_BODY_BYTES = 1024
ERROR_LENGTH = 500
USER_AGENT = "tenantdesk-webhooks/1.0"
# A retry waits its scheduled delay give or take this share, so that deliveries that failed
# together (a receiver's outage) do not all come back at the same second.
JITTER = 0.1


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    duration_ms: int
    error: str | None
    response_body: str | None

    @property
    def succeeded(self) -> bool:
        return self.error is None


def next_attempt_at(schedule: list[float], attempts_made: int, now: datetime) -> datetime | None:
    """When to try again after `attempts_made` attempts failed; None when the schedule is
    spent (the delivery has failed)."""
    if attempts_made > len(schedule):
        return None
    delay = schedule[attempts_made - 1]
    return now + timedelta(seconds=delay * random.uniform(1 - JITTER, 1 + JITTER))  # noqa: S311


async def _head(response: httpx.Response) -> str:
    """The first 1 KB of the body, as text."""
    read = b""
    async for chunk in response.aiter_raw():
        read += chunk
        if len(read) >= RESPONSE_BODY_BYTES:
            break
    return read[:RESPONSE_BODY_BYTES].decode(errors="replace")


class Sender:
    """The HTTP client of the dispatcher, built once and shared by its sends."""

    def __init__(self, settings: Settings, policy: TargetPolicy) -> None:
        self.timeout = settings.webhook_timeout_seconds
        transport = httpx.AsyncHTTPTransport(trust_env=False)
        # httpx takes no network backend of its own: its pool is rebuilt on the guarded one.
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            network_backend=GuardedNetwork(policy),
            max_connections=100,
            keepalive_expiry=5.0,
        )
        self.client = httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,
            trust_env=False,
            timeout=self.timeout,
            headers={"user-agent": USER_AGENT, "content-type": "application/json"},
        )

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> Outcome:
        started = time.monotonic()
        status_code = None
        response_body = None
        error = None
        try:
            async with asyncio.timeout(self.timeout):
                async with self.client.stream("POST", url, headers=headers, content=body) as sent:
                    status_code = sent.status_code
                    response_body = await _head(sent)
        except TimeoutError:
            error = f"No answer within {self.timeout:g} s."
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:ERROR_LENGTH]
        duration_ms = round((time.monotonic() - started) * 1000)
        if error is None and not 200 <= (status_code or 0) < 300:
            error = f"HTTP {status_code}"
        return Outcome(status_code, duration_ms, error, response_body)

    async def aclose(self) -> None:
        await self.client.aclose()
