"""Fixed-window throttling with `limits`: in memory by default, in Redis when REDIS_URL is set."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from backend.core.config import Settings


def limits_storage(settings: Settings) -> Storage:
    """The counters' store: this process's memory, or Redis shared by every worker."""
    if settings.redis_url:
        return storage_from_string(f"async+{settings.redis_url}")
    return MemoryStorage()


class Throttle:
    def __init__(self, limit: str, storage: Storage) -> None:
        self.item: RateLimitItem = parse(limit)
        self.limiter = MovingWindowRateLimiter(storage)

    @classmethod
    def from_settings(cls, limit: str, settings: Settings) -> Throttle:
        return cls(limit, limits_storage(settings))

    async def hit(self, *keys: str) -> int | None:
        """Count one attempt against every key; the seconds to wait if any key is over its limit."""
        retry_after: int | None = None
        for key in keys:
            if not await self.limiter.hit(self.item, key):
                reset_at, _remaining = await self.limiter.get_window_stats(self.item, key)
                wait = max(1, math.ceil(reset_at - time.time()))
                retry_after = max(retry_after or 0, wait)
        return retry_after

    async def clear(self, *keys: str) -> None:
        for key in keys:
            await self.limiter.clear(self.item, key)
