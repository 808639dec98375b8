"""Idempotency keys: a retried create answers what the first one did, and creates nothing.

As in the IETF `Idempotency-Key` draft. A key is scoped to its caller, and to the tenant when
there is one: the row's primary key is a digest of the three. The first request claims the key
in a short transaction of its own (so that a concurrent retry sees it running: 409), does its
work, and stores its answer in its own transaction, beside what it created: the answer exists
exactly when the work does. A failure releases the claim, so a retry may run again. A claim
whose request died without either is taken over once its lease has passed.

The table is global (a key may precede any tenant: creating one), with `scope_tenant_id` for the
tenant: row-level security shows a session the keys of its tenant and the keys of no tenant,
which are found only by a digest that includes their caller. No secret is stored: a create
that shows a secret once replays it as null. Keys are purged after `RETENTION`
(`purge_idempotency_keys`). No FastAPI here: `tenants.idempotent_routes` is the HTTP side.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.database import Base, CreatedAt, string_enum, utcnow
from backend.core.errors import Conflict, Problem
from backend.core.secrets import is_secret_name

RETENTION = timedelta(hours=24)
# A claim whose request neither finished nor failed (the process died) is free again after this.
LEASE = timedelta(seconds=60)
STILL_RUNNING = (
    "A request with this Idempotency-Key is still being processed; retry when it has finished."
)
OTHER_REQUEST = (
    "This Idempotency-Key was used with a different request; use a new key for a new request."
)


class KeyState(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"


class IdempotencyKey(CreatedAt, Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (
        Index("ix_idempotency_keys_created_at", "created_at"),
        Index("ix_idempotency_keys_principal", "principal"),
    )

    # SHA-256 of the caller, the tenant and the key: one row per key and scope.
    scope_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    principal: Mapped[str] = mapped_column(String(100))
    # Not `tenant_id`: the table is global (creating a tenant precedes any tenant).
    scope_tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    request_digest: Mapped[str] = mapped_column(String(64))
    state: Mapped[KeyState] = mapped_column(string_enum(KeyState, "idempotency_key_state"))
    locked_until: Mapped[datetime | None]
    response_status: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(Text)


class IdempotencyMismatch(Problem):
    status = 422


@dataclass(frozen=True)
class KeyScope:
    """Who sent the key (`user:<id>`, `client:<id>`), in which tenant (None: no tenant)."""

    principal: str
    tenant_id: uuid.UUID | None
    key: str

    @property
    def scope_key(self) -> str:
        tenant = str(self.tenant_id) if self.tenant_id is not None else "-"
        return hashlib.sha256(f"{self.principal}\n{tenant}\n{self.key}".encode()).hexdigest()


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: bytes


def request_digest(method: str, path: str, body: bytes) -> str:
    """What "the same request" means: method, path and body; a JSON body compares as JSON, so
    that a client re-serialising it (other key order, spacing) still retries the same request."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(method.encode() + b"\n" + path.encode() + b"\n" + canonical).hexdigest()


def _insert(session: AsyncSession) -> Any:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(IdempotencyKey)


async def claim_key(
    session: AsyncSession, scope: KeyScope, digest: str, *, now: datetime | None = None
) -> StoredResponse | None:
    """Claim the key for this request (None: go ahead), or the stored answer to replay.

    Raises 409 while another request holds it, 422 when it was used for another request. Run
    in a transaction of its own, committed before the work starts, so that a concurrent retry
    sees the claim. The key is read first, without a lock: a retry of a running request is
    answered at once, even on SQLite while the first request holds the write lock. Writing a
    claim (a new key, or taking over an expired or abandoned one) is a single statement that
    only one request can win; the loser is told the key is in use.
    """
    now = now or utcnow()
    found = await session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.scope_key == scope.scope_key)
    )
    claimed = {"request_digest": digest, "state": KeyState.RUNNING, "locked_until": now + LEASE}
    if found is None:
        inserted = await session.scalar(
            _insert(session)
            .values(
                scope_key=scope.scope_key,
                principal=scope.principal,
                scope_tenant_id=scope.tenant_id,
                created_at=now,
                **claimed,
            )
            .on_conflict_do_nothing(index_elements=["scope_key"])
            .returning(IdempotencyKey.scope_key)
        )
        if inserted is None:  # another request claimed it since the read
            raise Conflict(STILL_RUNNING)
        return None
    expired = found.created_at <= now - RETENTION
    abandoned = found.state is KeyState.RUNNING and (found.locked_until or now) < now
    if expired or (abandoned and found.request_digest == digest):
        taken_over = await session.scalar(
            update(IdempotencyKey)
            .where(
                IdempotencyKey.scope_key == scope.scope_key,
                # As read: another request that took it over first changed these.
                IdempotencyKey.created_at == found.created_at,
                IdempotencyKey.state == found.state,
                IdempotencyKey.locked_until.is_(None)
                if found.locked_until is None
                else IdempotencyKey.locked_until == found.locked_until,
            )
            .values(created_at=now, response_status=None, response_body=None, **claimed)
            .returning(IdempotencyKey.scope_key)
        )
        if taken_over is None:
            raise Conflict(STILL_RUNNING)
        return None
    if found.request_digest != digest:
        raise IdempotencyMismatch(OTHER_REQUEST)
    if found.state is KeyState.RUNNING or found.response_status is None:
        raise Conflict(STILL_RUNNING)
    return StoredResponse(found.response_status, (found.response_body or "").encode())


def without_secrets(body: bytes, shown_once: frozenset[str] = frozenset()) -> str:
    """The answer as stored: a top-level field named like a secret, or listed in `shown_once`
    (a secret under another name, such as an API key's `key`), is kept as null."""
    document = json.loads(body)
    if isinstance(document, dict):
        document = {
            name: None if is_secret_name(name) or name in shown_once else value
            for name, value in document.items()
        }
    return json.dumps(document, separators=(",", ":"))


async def complete_key(
    session: AsyncSession,
    scope: KeyScope,
    status: int,
    body: bytes,
    shown_once: frozenset[str] = frozenset(),
) -> None:
    """Store the answer, in the transaction of the work it answers, without its secrets."""
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.scope_key == scope.scope_key)
        .values(
            state=KeyState.COMPLETED,
            locked_until=None,
            response_status=status,
            response_body=without_secrets(body, shown_once),
        )
    )


async def release_key(session: AsyncSession, scope: KeyScope) -> None:
    """Forget a claim whose request failed: nothing was created, so a retry may run."""
    await session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.scope_key == scope.scope_key,
            IdempotencyKey.state == KeyState.RUNNING,
        )
    )


async def purge_idempotency_keys(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Delete the keys older than `RETENTION`, in every tenant; how many went.

    On PostgreSQL through the SECURITY DEFINER function `purge_idempotency_keys` (migration
    0006), since row-level security shows the app role one tenant's keys at a time.
    """
    before = (now or utcnow()) - RETENTION
    if session.get_bind().dialect.name == "postgresql":
        purged = await session.scalar(select(func.purge_idempotency_keys(before)))
        return int(purged or 0)
    result = await session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < before))
    return int(result.rowcount)  # type: ignore[attr-defined]
