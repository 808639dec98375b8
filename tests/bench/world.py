"""The benchmark's data: N tenants, each with one member, one project and M tasks, seeded with
COPY on a superuser connection (no API, no ORM, no row-level security in the way).

Every tenant's member has the tenant role `member` and the project role `editor`, so a project
request walks the whole access decision: user, membership, tenant, project and project role.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from backend.identity.keys import KeyRing
from backend.identity.passwords import OWASP_ARGON2ID

PASSWORD = "bench passphrase that is long enough"
EMAIL_DOMAIN = "bench.example"
TASK_BATCH_ROWS = 50_000
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Caller:
    """One tenant's member, with the ids a request names and a token for the service."""

    email: str
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    project_id: uuid.UUID
    task_id: uuid.UUID
    token: str = ""

    @property
    def project_path(self) -> str:
        return f"/api/v1/tenants/{self.tenant_id}/projects/{self.project_id}"


def _columns(names: str) -> list[str]:
    return names.split()


def _moment(index: int) -> datetime:
    return _EPOCH + timedelta(microseconds=index)


def _callers(tenants: int) -> list[Caller]:
    return [
        Caller(
            email=f"member{index}@{EMAIL_DOMAIN}",
            user_id=uuid.uuid4(),
            tenant_id=uuid.uuid4(),
            project_id=uuid.uuid4(),
            task_id=uuid.uuid4(),
        )
        for index in range(tenants)
    ]


def _task_rows(callers: list[Caller], tasks: int) -> Iterator[tuple[Any, ...]]:
    for caller in callers:
        for index in range(tasks):
            task_id = caller.task_id if index == 0 else uuid.uuid4()
            assignee = caller.user_id if index % 2 else None
            at = _moment(index)
            status = ("todo", "doing", "done")[index % 3]
            yield (
                caller.tenant_id,
                task_id,
                at,
                caller.project_id,
                f"Task {index}",
                "Something to do, described in a sentence or two.",
                status,
                assignee,
                caller.user_id,
                at,
            )


async def _copy(connection: asyncpg.Connection, table: str, columns: list[str], rows: Any) -> None:
    await connection.copy_records_to_table(table, records=rows, columns=columns)


async def _copy_in_batches(
    connection: asyncpg.Connection, table: str, columns: list[str], rows: Iterator[tuple[Any, ...]]
) -> None:
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= TASK_BATCH_ROWS:
            await _copy(connection, table, columns, batch)
            batch = []
    if batch:
        await _copy(connection, table, columns, batch)


async def seed(dsn: str, tenants: int, tasks: int) -> list[Caller]:
    """Write the world with COPY and return its callers (without tokens yet)."""
    callers = _callers(tenants)
    password_hash = PasswordHash((Argon2Hasher(**OWASP_ARGON2ID),)).hash(PASSWORD)
    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction():
            await _copy(
                connection,
                "users",
                _columns("id created_at email full_name password_hash")
                + _columns("is_active is_superuser email_verified_at"),
                [
                    (c.user_id, _EPOCH, c.email, f"Member {i}", password_hash, True, False, _EPOCH)
                    for i, c in enumerate(callers)
                ],
            )
            await _copy(
                connection,
                "tenants",
                ["id", "created_at", "slug", "name", "status"],
                [
                    (c.tenant_id, _moment(i), f"tenant-{i}", f"Tenant {i}", "active")
                    for i, c in enumerate(callers)
                ],
            )
            await _copy(
                connection,
                "memberships",
                ["tenant_id", "user_id", "created_at", "role"],
                [(c.tenant_id, c.user_id, _EPOCH, "member") for c in callers],
            )
            await _copy(
                connection,
                "projects",
                _columns("tenant_id id created_at name description created_by updated_at"),
                [
                    (c.tenant_id, c.project_id, _EPOCH, "Launch", "", c.user_id, _EPOCH)
                    for c in callers
                ],
            )
            await _copy(
                connection,
                "project_members",
                ["tenant_id", "project_id", "user_id", "created_at", "role"],
                [(c.tenant_id, c.project_id, c.user_id, _EPOCH, "editor") for c in callers],
            )
            task_columns = _columns("tenant_id id created_at project_id title description status")
            task_columns += _columns("assignee_id created_by updated_at")
            await _copy_in_batches(connection, "tasks", task_columns, _task_rows(callers, tasks))
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    return callers


def with_tokens(callers: list[Caller], key_ring: KeyRing, client_id: str) -> list[Caller]:
    """Access tokens as the password grant issues them: a user subject in a sign-in session."""
    return [
        Caller(
            email=c.email,
            user_id=c.user_id,
            tenant_id=c.tenant_id,
            project_id=c.project_id,
            task_id=c.task_id,
            token=key_ring.issue_access_token(
                subject=str(c.user_id), client_id=client_id, session_id=str(uuid.uuid4())
            ),
        )
        for c in callers
    ]
