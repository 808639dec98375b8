"""A real PgBouncer in transaction pooling mode in front of the harness's PostgreSQL.

Few server connections serve many clients, and each transaction may run on a different one: what
a session leaves behind (a prepared statement, a setting outside a transaction) would reach
another client. The app must therefore run with DATABASE_POOLER=pgbouncer.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.harness.postgres import (
    APP_ROLE,
    UNPRIVILEGED_USER,
    PostgresServer,
    PostgresUnavailable,
    free_port,
)

STARTUP_SECONDS = 10.0
SERVER_CONNECTIONS = 4  # fewer than the app's pool: transactions must share them


@dataclass
class PgBouncer:
    root: Path
    port: int
    postgres: PostgresServer
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, postgres: PostgresServer) -> PgBouncer:
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not Path(binary).exists():
            raise PostgresUnavailable("pgbouncer is missing: apt-get install pgbouncer")
        root = Path(tempfile.mkdtemp(prefix="tenantdesk-pgbouncer-"))
        port = free_port()
        # The server trusts loopback connections; PgBouncer only needs to know the names.
        (root / "userlist.txt").write_text(f'"{APP_ROLE}" "app"\n')
        (root / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host=127.0.0.1 port={postgres.port}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {root / 'userlist.txt'}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {SERVER_CONNECTIONS}\nmax_client_conn = 500\n"
            f"logfile = {root / 'pgbouncer.log'}\n"
        )
        if postgres.prefix:
            shutil.chown(root, user=UNPRIVILEGED_USER)
            for path in root.iterdir():
                shutil.chown(path, user=UNPRIVILEGED_USER)
        process = subprocess.Popen(
            [*postgres.prefix, binary, str(root / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        bouncer = cls(root=root, port=port, postgres=postgres, process=process)
        bouncer._wait_until_listening()
        return bouncer

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = self.root / "pgbouncer.log"
                    detail = log.read_text()[-2000:] if log.exists() else ""
                    self.stop()
                    raise PostgresUnavailable(f"pgbouncer did not start: {detail}") from None
                time.sleep(0.05)

    def url(self, role: str, password: str, database: str) -> str:
        return f"postgresql+asyncpg://{role}:{password}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=STARTUP_SECONDS)
        shutil.rmtree(self.root, ignore_errors=True)
