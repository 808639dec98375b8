"""The admin benchmark's data: the API benchmark's world (N tenants, each with a member, a project
and M tasks), plus a crowd of users who are all members of the first tenant, a platform
superuser and an admin of that first tenant; seeded with COPY on a superuser connection.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from backend.identity.passwords import OWASP_ARGON2ID
from tests.bench.world import EMAIL_DOMAIN, PASSWORD, Caller, seed

SUPERUSER_EMAIL = f"root@{EMAIL_DOMAIN}"
TENANT_ADMIN_EMAIL = f"admin@{EMAIL_DOMAIN}"
USER_BATCH_ROWS = 50_000
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class AdminWorld:
    """The ids the benchmark's pages name: the big tenant (its member and task), a crowd user."""

    big: Caller
    other: Caller
    crowd_user_id: uuid.UUID
    users: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str) -> AdminWorld:
        fields = json.loads(text)
        big, other = (_caller(fields[name]) for name in ("big", "other"))
        crowd_user_id = uuid.UUID(fields["crowd_user_id"])
        return cls(big=big, other=other, crowd_user_id=crowd_user_id, users=fields["users"])


def _caller(fields: dict[str, str]) -> Caller:
    return Caller(
        email=fields["email"],
        user_id=uuid.UUID(fields["user_id"]),
        tenant_id=uuid.UUID(fields["tenant_id"]),
        project_id=uuid.UUID(fields["project_id"]),
        task_id=uuid.UUID(fields["task_id"]),
    )


async def analyze(dsn: str) -> None:
    """Fresh statistics, as autovacuum would keep them: a new migration's indexes included."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


def crowd_email(index: int) -> str:
    return f"user{index}@{EMAIL_DOMAIN}"


async def seed_admin_world(dsn: str, tenants: int, tasks: int, users: int) -> AdminWorld:
    callers = await seed(dsn, tenants, tasks)
    big = callers[0]
    password_hash = PasswordHash((Argon2Hasher(**OWASP_ARGON2ID),)).hash(PASSWORD)
    crowd = [uuid.uuid4() for _ in range(users)]
    root_id, admin_id = uuid.uuid4(), uuid.uuid4()
    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction():
            user_columns = ["id", "created_at", "email", "full_name", "password_hash"]
            user_columns += ["is_active", "is_superuser", "email_verified_at"]
            people: list[tuple[Any, ...]] = [
                (root_id, _EPOCH, SUPERUSER_EMAIL, "Root", password_hash, True, True, _EPOCH),
                (admin_id, _EPOCH, TENANT_ADMIN_EMAIL, "Admin", password_hash, True, False, _EPOCH),
            ]
            people += [
                (user_id, _EPOCH, crowd_email(i), f"User {i}", None, True, False, None)
                for i, user_id in enumerate(crowd)
            ]
            members = [(big.tenant_id, admin_id, _EPOCH, "admin")]
            members += [(big.tenant_id, user_id, _EPOCH, "member") for user_id in crowd]
            for start in range(0, len(people), USER_BATCH_ROWS):
                batch = people[start : start + USER_BATCH_ROWS]
                await connection.copy_records_to_table("users", records=batch, columns=user_columns)
            for start in range(0, len(members), USER_BATCH_ROWS):
                await connection.copy_records_to_table(
                    "memberships",
                    records=members[start : start + USER_BATCH_ROWS],
                    columns=["tenant_id", "user_id", "created_at", "role"],
                )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    return AdminWorld(big=big, other=callers[-1], crowd_user_id=crowd[users // 2], users=users)
