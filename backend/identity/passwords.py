"""argon2id password hashing, always off the event loop.

Production uses OWASP's argon2id parameters (19 MiB, 2 passes, 1 lane); only ENVIRONMENT=test
may use cheaper ones. A hash made with other parameters is upgraded on the next good login.

At most one hash per core runs at a time: a hash keeps one core busy, so more at once finish no
sooner, and each holds its 19 MiB meanwhile (a burst of sign-ins filled the thread pool with
hashes, and the worker's memory with their blocks).
"""

from __future__ import annotations

import asyncio
import os
from functools import lru_cache
from typing import TypedDict

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from backend.core.config import Environment, Settings


class Argon2Parameters(TypedDict):
    time_cost: int
    memory_cost: int
    parallelism: int


OWASP_ARGON2ID: Argon2Parameters = {"time_cost": 2, "memory_cost": 19_456, "parallelism": 1}
TEST_ARGON2ID: Argon2Parameters = {"time_cost": 1, "memory_cost": 1_024, "parallelism": 1}


@lru_cache
def password_hasher(environment: Environment) -> PasswordHash:
    parameters = TEST_ARGON2ID if environment is Environment.TEST else OWASP_ARGON2ID
    return PasswordHash((Argon2Hasher(**parameters),))


class Passwords:
    """Hash and verify with the parameters of the running environment."""

    def __init__(self, settings: Settings) -> None:
        self.hasher = password_hasher(settings.environment)
        # Verified against when the account does not exist, so that an unknown email costs the
        # same hash as a wrong password and timing does not reveal which accounts exist.
        self._decoy_hash = self.hasher.hash("decoy password that never matches anything")
        self._hashing = asyncio.Semaphore(os.cpu_count() or 1)

    def hash_blocking(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify_blocking(self, password: str, password_hash: str | None) -> tuple[bool, str | None]:
        """(matches, upgraded hash or None). Call from a worker thread only."""
        if not password_hash:
            self.hasher.verify(password, self._decoy_hash)
            return False, None
        return self.hasher.verify_and_update(password, password_hash)

    async def hash(self, password: str) -> str:
        async with self._hashing:
            return await asyncio.to_thread(self.hash_blocking, password)

    async def verify(self, password: str, password_hash: str | None) -> tuple[bool, str | None]:
        async with self._hashing:
            return await asyncio.to_thread(self.verify_blocking, password, password_hash)
