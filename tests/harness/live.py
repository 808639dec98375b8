"""The app served by uvicorn on a loopback port, for browsers and OAuth2 client libraries."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

from backend.core.config import Settings
from backend.main import create_app
from tests.harness.postgres import free_port

STARTUP_SECONDS = 15.0


@dataclass
class LiveServer:
    """`url` is the base URL; `app` is the served instance (its key ring, settings, database)."""

    url: str
    app: FastAPI
    server: uvicorn.Server
    thread: threading.Thread

    @classmethod
    def start(cls, settings: Settings) -> LiveServer:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        app = create_app(settings.model_copy(update={"public_base_url": url}))
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="live-server", daemon=True)
        thread.start()
        live = cls(url=url, app=app, server=server, thread=thread)
        live._wait_until_started()
        return live

    def _wait_until_started(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the live server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=STARTUP_SECONDS)


async def start_live_server(settings: Settings) -> LiveServer:
    return await asyncio.to_thread(LiveServer.start, settings)
