"""The service as operators run it: `tenantdesk serve` in a process of its own (migrations,
bootstrap, uvicorn, optionally several workers), configured through the environment, its JSON
log lines kept in a file. For what only a real process shows: signals, workers, restarts, the
client address uvicorn hands the app, the worker's memory while a client uploads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.harness.postgres import free_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
STARTUP_SECONDS = 180.0  # migrations and imports in a fresh interpreter, on a loaded machine
STOP_SECONDS = 60.0


@dataclass
class ServiceProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def start(
        cls, workdir: Path, environment: dict[str, str], workers: int = 1, migrate: bool = True
    ) -> ServiceProcess:
        """Serves from `workdir` (its `var/`), with `environment` over the harness defaults;
        `migrate=False` serves a database that is migrated already (the suite's own)."""
        port = free_port()
        inherited = {
            name: value
            for name, value in os.environ.items()
            if name in {"PATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT"}
        }
        env = {
            **inherited,
            "PYTHONPATH": str(PROJECT_ROOT),
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "ENVIRONMENT": "test",
            "LOG_LEVEL": "INFO",
            # A service on the suite's own database (`served`) lives for the whole session: its
            # dispatcher would hand out, and send, the events of every later test.
            "WEBHOOK_DISPATCHER_IN_PROCESS": "false",
            # Nor does it purge: the suite frees the purge's lease before every test, and a purge
            # at start-up would delete beside a test, or deadlock with the suite's TRUNCATE.
            "PURGE_INTERVAL_SECONDS": "0",
            **environment,
        }
        workdir.mkdir(parents=True, exist_ok=True)
        log_path = workdir / "service.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "backend.cli", "serve", "--workers", str(workers)),
                    *(() if migrate else ("--no-migrate",)),
                ],
                cwd=workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        service = cls(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
        service._wait_until_live()
        return service

    def _wait_until_live(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited at start-up:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/health/live", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"the service did not start:\n{self.log_tail()}")

    def log_tail(self, characters: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-characters:]

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON log lines so far (the start-up banner on stdout is not JSON)."""
        records = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return records

    def terminate(self, timeout: float = STOP_SECONDS) -> int:
        """SIGTERM, as a process manager stops it; the exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def rss_bytes(self) -> int:
        """The serving process's resident memory, from /proc."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS line")

    def stop(self) -> None:
        """SIGTERM, and SIGKILL if it is still there after the stop timeout."""
        if self.process.poll() is None:
            try:
                self.terminate()
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=STOP_SECONDS)


def service_environment(
    database_url: str, migrations_url: str, secret_key: str, private_key_pem: str
) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "MIGRATIONS_DATABASE_URL": migrations_url,
        "SECRET_KEY": secret_key,
        "JWT_PRIVATE_KEYS": private_key_pem,
    }
