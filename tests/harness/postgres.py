"""A throwaway PostgreSQL server for the test suite, started from the local binaries.

It listens on a free loopback port, runs as a non-root user when the suite runs as root, and has
the roles of production: a schema owner (migrations) and an app role that owns nothing and cannot
bypass row-level security. `stop()` removes it.
"""

from __future__ import annotations

import fcntl
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "postgres"
OWNER_ROLE = "app_owner"
APP_ROLE = "app_user"
DATABASE = "tenantdesk"
UNPRIVILEGED_USER = "tenantdesk-pg"
MINIMUM_MAJOR_VERSION = 15
USER_LOCK = Path(tempfile.gettempdir()) / "tenantdesk-pg-user.lock"
PORT_ATTEMPTS = 3


class PostgresUnavailable(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_bindir() -> Path:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda path: int(path.split("/")[-2])
    )
    for bindir in reversed(candidates):
        if Path(bindir, "initdb").exists():
            return Path(bindir)
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) are missing: apt-get install postgresql"
    )


def _major_version(bindir: Path) -> int:
    output = subprocess.run(
        [bindir / "postgres", "--version"], capture_output=True, text=True, check=True
    ).stdout
    return int(output.split()[-1].split(".")[0])


def _run_as_user() -> list[str]:
    """Prefix for commands that PostgreSQL refuses to run as root."""
    if os.geteuid() != 0:
        return []
    # Test workers start their servers at the same time: one of them creates the user.
    with open(USER_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            pwd.getpwnam(UNPRIVILEGED_USER)
        except KeyError:
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    UNPRIVILEGED_USER,
                ],
                check=True,
            )
    return ["runuser", "-u", UNPRIVILEGED_USER, "--"]


@dataclass
class PostgresServer:
    root: Path
    bindir: Path
    port: int
    prefix: list[str]

    @classmethod
    def start(cls, root: Path | None = None) -> PostgresServer:
        """A new server in a temporary folder, or in `root`: there, a server that `stop(keep=True)`
        left is started again with its data."""
        bindir = find_bindir()
        if _major_version(bindir) < MINIMUM_MAJOR_VERSION:
            raise PostgresUnavailable(f"PostgreSQL {MINIMUM_MAJOR_VERSION} or newer is needed")
        prefix = _run_as_user()
        if root is None:
            root = Path(tempfile.mkdtemp(prefix="tenantdesk-pg-"))
        root.mkdir(parents=True, exist_ok=True)
        if prefix:
            shutil.chown(root, user=UNPRIVILEGED_USER)
        server = cls(root=root, bindir=bindir, port=free_port(), prefix=prefix)
        if server.data.exists():
            server.start_server()
            return server
        try:
            server._init_and_start()
            server._create_roles_and_database()
        except Exception:
            server.stop()
            raise
        return server

    def _run(self, *args: str | Path) -> None:
        result = subprocess.run([*self.prefix, *map(str, args)], capture_output=True, text=True)
        if result.returncode != 0:
            log = self.root / "server.log"
            detail = log.read_text()[-2000:] if log.exists() else ""
            raise PostgresUnavailable(f"{args[0]} failed: {result.stderr.strip()} {detail}")

    def _init_and_start(self) -> None:
        self._run(
            self.bindir / "initdb",
            "-D",
            self.data,
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        for attempt in range(PORT_ATTEMPTS):
            try:
                self.start_server()
                return
            except PostgresUnavailable as exc:
                # Another process took the free port between choosing and binding it.
                if "could not bind" not in str(exc) or attempt == PORT_ATTEMPTS - 1:
                    raise
                self.port = free_port()

    @property
    def data(self) -> Path:
        return self.root / "data"

    def start_server(self) -> None:
        """Starts (or starts again, after `stop_server`) on the same port and data."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            self.bindir / "pg_ctl",
            "-D",
            self.data,
            "-o",
            options,
            "-l",
            self.root / "server.log",
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop_server(self, mode: str = "fast") -> None:
        """Stops the server, keeping its data: `fast` ends sessions cleanly, `immediate` aborts."""
        self._run(self.bindir / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def _psql(self, sql: str, database: str = "postgres") -> None:
        self._run(
            self.bindir / "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-c",
            sql,
        )

    def _create_roles_and_database(self) -> None:
        self._psql(f"CREATE ROLE {OWNER_ROLE} LOGIN PASSWORD 'owner'")
        self._psql(f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD 'app' NOSUPERUSER NOBYPASSRLS")
        self._psql(f"CREATE DATABASE {DATABASE} OWNER {OWNER_ROLE}")
        self._psql(f"ALTER SCHEMA public OWNER TO {OWNER_ROLE}", database=DATABASE)

    def create_database(self, name: str) -> None:
        """Another empty database with the same roles, for a service that migrates its own."""
        self._psql(f"CREATE DATABASE {name} OWNER {OWNER_ROLE}")
        self._psql(f"ALTER SCHEMA public OWNER TO {OWNER_ROLE}", database=name)

    def set_role_statement_timeout(self, role: str, milliseconds: int) -> None:
        """The role's default, for connections that cannot send it at start-up (a pooler)."""
        self._psql(f"ALTER ROLE {role} SET statement_timeout = {milliseconds}")

    def url(self, role: str, password: str = "", database: str = DATABASE) -> str:
        credentials = f"{role}:{password}" if password else role
        return f"postgresql+asyncpg://{credentials}@127.0.0.1:{self.port}/{database}"

    @property
    def superuser_url(self) -> str:
        return self.url(SUPERUSER)

    @property
    def owner_url(self) -> str:
        return self.url(OWNER_ROLE, "owner")

    @property
    def app_url(self) -> str:
        return self.url(APP_ROLE, "app")

    def stop(self, *, keep: bool = False) -> None:
        """Stops the server and removes it, or with `keep`, stops it cleanly and keeps its data."""
        if keep:
            self.stop_server()
            return
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                [
                    *self.prefix,
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
                capture_output=True,
            )
        shutil.rmtree(self.root, ignore_errors=True)
