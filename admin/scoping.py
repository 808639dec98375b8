"""The data scope of an admin request, applied to every session SQLAdmin opens.

An admin request runs either in the platform view (a superuser: every tenant, through the one
explicit bypass, `cross_tenant`) or in one tenant's view (a tenant owner or admin: the session
enters the tenant context, so the ORM filter and PostgreSQL RLS hold exactly as for the API).

SQLAdmin only ever opens sessions as `async with session_maker(...) as session`, including for
its edit and delete re-selects, relationship pickers and AJAX look-ups; `AdminSessionMaker`
answers that call with the app's own session factory and applies the request's scope before
the first statement. A session asked for outside a scoped admin request is refused.

Writes never use the bypass: see `AdminSessionMaker.writing`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.audit import Actor
from tenants.isolation import cross_tenant, enter_tenant, leave_tenant_sync
from tenants.roles import TenantRole

PLATFORM_BYPASS_REASON = "platform admin panel"


class AdminScopeMissing(RuntimeError):
    """An admin session was asked for outside an authenticated, scoped admin request."""


@dataclass(frozen=True)
class AdminScope:
    """Who is signed in to the panel, and which rows their sessions may reach.

    Neither `platform` nor `tenant_id`: signed in, but no tenant chosen yet (the picker).
    """

    user_id: uuid.UUID
    email: str
    platform: bool = False
    tenant_id: uuid.UUID | None = None
    tenant_name: str = ""
    role: TenantRole | None = None

    def __post_init__(self) -> None:
        if self.platform and self.tenant_id is not None:
            raise ValueError("the platform view is not scoped to a tenant")

    @property
    def chosen(self) -> bool:
        return self.platform or self.tenant_id is not None

    @property
    def actor(self) -> Actor:
        return Actor(user_id=self.user_id)


_current: ContextVar[AdminScope | None] = ContextVar("admin_scope", default=None)


@contextmanager
def bound_scope(scope: AdminScope | None) -> Iterator[None]:
    """Make `scope` the current request's scope for everything the request awaits."""
    token = _current.set(scope)
    try:
        yield
    finally:
        _current.reset(token)


def current_scope() -> AdminScope:
    scope = _current.get()
    if scope is None or not scope.chosen:
        raise AdminScopeMissing("admin data access outside a scoped admin request")
    return scope


def current_scope_or_none() -> AdminScope | None:
    return _current.get()


class ScopedSession:
    """`async with` yields the app's session with the scope applied; leaving closes it."""

    def __init__(self, session: AsyncSession, *, tenant_id: uuid.UUID | None, bypass: bool) -> None:
        self._session = session
        self._tenant_id = tenant_id
        self._bypass = bypass
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> AsyncSession:
        session = await self._stack.enter_async_context(self._session)
        if self._bypass:
            await self._stack.enter_async_context(cross_tenant(session, PLATFORM_BYPASS_REASON))
        elif self._tenant_id is not None:
            await enter_tenant(session, self._tenant_id)
        self._stack.push_async_callback(_end_transaction, session)
        return session

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        return await self._stack.__aexit__(exc_type, exc, traceback)


async def _end_transaction(session: AsyncSession) -> None:
    """Runs first on the way out: end the transaction (committed work is kept) before the
    bypass is lifted, so that a failed transaction is never asked to run another statement.
    Objects are detached first, as closing would: a rollback would expire what SQLAdmin is
    about to render."""
    session.expunge_all()
    await session.rollback()


class AdminSessionMaker:
    """What SQLAdmin takes as its session maker: the API's own factory, resolved per call.

    The database is created in the app's lifespan, after the admin is mounted, so the factory is
    looked up at call time; it is the same engine and the same factory as the API's.
    """

    # SQLAdmin tells sync from async makers by this class.
    class_ = AsyncSession

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def configure(self, **_options: Any) -> None:
        """SQLAdmin asks for autoflush=False here; the factory is shared with the API and the
        admin's writes flush explicitly, so the factory is left as the API configured it."""

    def __call__(self, **options: Any) -> ScopedSession:
        """For reads: the tenant view's context, or the platform view's bypass."""
        scope = current_scope()
        session = self._app.state.database.session_factory(**options)
        return ScopedSession(session, tenant_id=scope.tenant_id, bypass=scope.platform)

    def writing(self) -> ScopedSession:
        """For writes: never the bypass. The tenant view writes in its tenant; the platform view
        starts with no tenant and enters each row's tenant before touching it
        (`enter_row_tenant`), so the services, written for one tenant at a time, behave exactly
        as they do for the API."""
        scope = current_scope()
        session = self._app.state.database.session_factory(expire_on_commit=False)
        return ScopedSession(session, tenant_id=scope.tenant_id, bypass=False)


async def enter_row_tenant(
    session: AsyncSession, scope: AdminScope, tenant_id: uuid.UUID | None
) -> None:
    """Platform writes: move the write session to the tenant of the next row (None: global rows
    only). The tenant view never moves: another tenant's rows stay out of its reach."""
    if not scope.platform:
        return
    await session.run_sync(leave_tenant_sync)
    if tenant_id is not None:
        await enter_tenant(session, tenant_id)
