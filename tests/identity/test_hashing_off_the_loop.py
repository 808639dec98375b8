"""argon2 runs in worker threads: other requests go on while a password is being hashed."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI

from backend.core.config import Settings
from backend.identity.models import User
from backend.identity.passwords import Passwords
from tests.identity.conftest import sign_in

WAIT_SECONDS = 5.0


class HeldPasswords(Passwords):
    """Real hashing, held at the start until the test lets it go."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.started = threading.Event()
        self.release = threading.Event()

    def _hold(self) -> None:
        self.started.set()
        if not self.release.wait(WAIT_SECONDS):
            raise TimeoutError("the test never released the hash")

    def verify_blocking(self, password: str, password_hash: str | None) -> tuple[bool, str | None]:
        self._hold()
        return super().verify_blocking(password, password_hash)

    def hash_blocking(self, password: str) -> str:
        self._hold()
        return super().hash_blocking(password)


@pytest.fixture
def held(app: FastAPI):
    passwords = HeldPasswords(app.state.settings)
    original, app.state.passwords = app.state.passwords, passwords
    yield passwords
    passwords.release.set()
    app.state.passwords = original


async def _while_hashing(
    client: httpx.AsyncClient, held: HeldPasswords, hashing: asyncio.Task[httpx.Response]
) -> httpx.Response:
    """Another request, answered while `hashing` is stuck inside the hash."""
    assert await asyncio.to_thread(held.started.wait, WAIT_SECONDS), "hashing never started"
    other = await asyncio.wait_for(client.get("/health/ready"), timeout=WAIT_SECONDS / 2)
    assert not hashing.done()
    held.release.set()
    return other


SlowRequest = Callable[[httpx.AsyncClient, User], Awaitable[httpx.Response]]


def _signing_up(client: httpx.AsyncClient, _user: User) -> Awaitable[httpx.Response]:
    body = {"email": "grace@example.com", "password": "plum tree in rain"}
    return client.post("/api/v1/users", json=body)


@pytest.mark.parametrize(
    ("slow_request", "status"),
    [
        pytest.param(lambda client, user: sign_in(client, user.email), 200, id="sign-in verifies"),
        pytest.param(_signing_up, 201, id="sign-up hashes"),
    ],
)
async def test_a_request_completes_while_a_password_is_hashed(
    client: httpx.AsyncClient,
    held: HeldPasswords,
    user: User,
    slow_request: SlowRequest,
    status: int,
) -> None:
    hashing = asyncio.create_task(slow_request(client, user))

    other = await _while_hashing(client, held, hashing)

    assert other.status_code == 200
    assert (await hashing).status_code == status


async def test_no_more_hashes_run_at_once_than_there_are_cores(app: FastAPI) -> None:
    """Each hash holds a core and 19 MiB while it runs: a burst of sign-ins waits its turn
    rather than filling the thread pool, and the worker's memory, with hashes."""
    running, peak, lock = 0, 0, threading.Lock()

    class CountingPasswords(Passwords):
        def hash_blocking(self, password: str) -> str:
            nonlocal running, peak
            with lock:
                running += 1
                peak = max(peak, running)
            try:
                threading.Event().wait(0.05)
                return super().hash_blocking(password)
            finally:
                with lock:
                    running -= 1

    passwords = CountingPasswords(app.state.settings)
    cores = os.cpu_count() or 1
    await asyncio.gather(*(passwords.hash("a passphrase") for _ in range(cores * 3)))
    assert peak == cores
