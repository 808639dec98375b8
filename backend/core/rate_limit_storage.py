"""Where throttling counts: in Redis, shared by every worker, when REDIS_URL is set; otherwise,
and for as long as Redis is unreachable, in the worker's own memory.

A Redis outage must not turn sign-ins into errors: the counts carry on per worker (each worker
then allows its own budget) with one WARNING, and go back to Redis once it answers again.
"""

from __future__ import annotations

import logging
import time
from typing import Any, cast

from limits.aio.storage import MemoryStorage, MovingWindowSupport, SlidingWindowCounterSupport
from limits.aio.storage import Storage as LimitsStorage
from limits.errors import StorageError
from limits.storage import storage_from_string

from backend.core.config import Settings

logger = logging.getLogger(__name__)

# After a failure, Redis is tried again this much later: requests do not each pay a timeout.
REDIS_RETRY_SECONDS = 5.0
_UNREACHABLE = (StorageError, OSError, TimeoutError)


class _NeverRaised(Exception):
    pass


class RedisWithMemoryFallback(LimitsStorage, MovingWindowSupport, SlidingWindowCounterSupport):
    STORAGE_SCHEME = None

    def __init__(self, redis: LimitsStorage, retry_seconds: float = REDIS_RETRY_SECONDS) -> None:
        super().__init__()
        self.redis = redis
        self.memory = MemoryStorage()
        self.retry_seconds = retry_seconds
        self._redis_failed_at: float | None = None

    @property
    def base_exceptions(self) -> tuple[type[Exception], ...]:
        return (_NeverRaised,)  # failures are handled below, never wrapped

    async def _call(self, method: str, *args: Any) -> Any:
        failed_at = self._redis_failed_at
        if failed_at is None or time.monotonic() - failed_at >= self.retry_seconds:
            try:
                result = await getattr(self.redis, method)(*args)
            except _UNREACHABLE as exc:
                if failed_at is None:
                    logger.warning(
                        "Redis unreachable: throttling counts in this worker's memory until it "
                        "is back",
                        extra={"error": f"{type(exc).__name__}: {exc}"[:300]},
                    )
                self._redis_failed_at = time.monotonic()
            else:
                if failed_at is not None:
                    self._redis_failed_at = None
                    logger.info("Redis reachable again: throttling is shared by the workers")
                return result
        return await getattr(self.memory, method)(*args)

    # The limits storages are untyped: each method states the type of the answer it passes on.
    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        answer: int = await self._call("incr", key, expiry, amount)
        return answer

    async def get(self, key: str) -> int:
        answer: int = await self._call("get", key)
        return answer

    async def get_expiry(self, key: str) -> float:
        answer: float = await self._call("get_expiry", key)
        return answer

    async def check(self) -> bool:
        answer: bool = await self._call("check")
        return answer

    async def reset(self) -> int | None:
        answer: int | None = await self._call("reset")
        return answer

    async def clear(self, key: str) -> None:
        await self._call("clear", key)

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        answer: bool = await self._call("acquire_entry", key, limit, expiry, amount)
        return answer

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        answer: tuple[float, int] = await self._call("get_moving_window", key, limit, expiry)
        return answer

    async def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        answer: bool = await self._call("acquire_sliding_window_entry", key, limit, expiry, amount)
        return answer

    async def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        answer: tuple[int, float, int, float] = await self._call("get_sliding_window", key, expiry)
        return answer

    async def clear_sliding_window(self, key: str, expiry: int) -> None:
        await self._call("clear_sliding_window", key, expiry)


def throttle_storage(settings: Settings) -> LimitsStorage:
    """Redis (with the memory fallback) when REDIS_URL is set, else this worker's memory."""
    if not settings.redis_url:
        return MemoryStorage()
    timeout = settings.redis_timeout_seconds
    redis = storage_from_string(
        f"async+{settings.redis_url}",
        wrap_exceptions=True,
        connect_timeout=timeout,
        stream_timeout=timeout,
    )
    # An `async+` URL gives an asyncio storage; `limits` types the factory for both kinds.
    return RedisWithMemoryFallback(cast(LimitsStorage, redis))
