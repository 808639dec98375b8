"""A webhook receiver on a loopback port: a real HTTP server (uvicorn) that records every request
and answers as the test plans (a status, a redirect, or no answer in time)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from standardwebhooks import Webhook

from tests.harness.postgres import free_port

HANG = -1  # a planned answer: none, for `hang_seconds`


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()

    @property
    def message_id(self) -> str:
        return self.headers["webhook-id"]

    def verified(self, secret: str) -> Any:
        """The payload, once `standardwebhooks` has accepted the signature with `secret`."""
        return Webhook(secret).verify(self.body, self.headers)


@dataclass
class Receiver:
    port: int
    received: list[Received] = field(default_factory=list)
    # Answers to give, in order; then `status`. HANG waits `hang_seconds` before answering.
    plan: list[int] = field(default_factory=list)
    status: int = 200
    hang_seconds: float = 5.0
    answer_delay: float = 0.0
    server: uvicorn.Server | None = None
    task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def reset(self) -> None:
        self.received.clear()
        self.plan.clear()
        self.status = 200
        self.hang_seconds = 5.0
        self.answer_delay = 0.0

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.received.append(Received(scope["path"], headers, body, time.monotonic()))
        status = self.plan.pop(0) if self.plan else self.status
        if status == HANG:
            await asyncio.sleep(self.hang_seconds)
            status = 200
        if self.answer_delay:
            await asyncio.sleep(self.answer_delay)
        extra = [(b"location", b"http://127.0.0.1:9/elsewhere")] if 300 <= status < 400 else []
        await send({"type": "http.response.start", "status": status, "headers": extra})
        await send({"type": "http.response.body", "body": f"answered {status}".encode()})

    async def start(self) -> Receiver:
        config = uvicorn.Config(
            self, host="127.0.0.1", port=self.port, log_config=None, lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:  # noqa: ASYNC110 (uvicorn sets a flag, no event)
            await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        assert self.server is not None
        assert self.task is not None
        self.server.should_exit = True
        await self.task

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:  # noqa: ASYNC109
        """Poll until `count` requests came in; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.received)} of {count} requests within {timeout} s")
            await asyncio.sleep(0.02)
        return list(self.received)


async def start_receiver() -> Receiver:
    return await Receiver(port=free_port()).start()
