"""The run command itself (`tenantdesk serve`) in a child process, on the test database.

For what only a real process shows: the client address uvicorn hands the app, and the worker's
memory while a client uploads.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from backend.core.config import Settings
from tests.harness.postgres import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 90.0  # a loaded CI machine takes a while to import everything


@dataclass
class ServedProcess:
    url: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    @classmethod
    def start(cls, settings: Settings, **environment: str) -> ServedProcess:
        """Serve `settings`' database with `environment` on top (e.g. FORWARDED_ALLOW_IPS)."""
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")},
            "PYTHONPATH": str(PROJECT_ROOT),
            "ENVIRONMENT": "test",
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "DATABASE_URL": settings.database_url,
            "MIGRATIONS_DATABASE_URL": settings.migrations_database_url or settings.database_url,
            "SECRET_KEY": settings.secret_key_value(),
            "JWT_PRIVATE_KEYS": settings.jwt_private_keys_value(),
            "LOG_LEVEL": "WARNING",
            **environment,
        }
        log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        process = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "serve", "--no-migrate"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        served = cls(url=f"http://127.0.0.1:{port}", process=process, log=log)
        served._wait_until_live()
        return served

    def _wait_until_live(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if httpx.get(f"{self.url}/health/live", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.log.seek(0)
        output = self.log.read().decode(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"`tenantdesk serve` did not start:\n{output}")

    def rss_bytes(self) -> int:
        """The serving process's resident memory, from /proc."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS line")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
