"""Admin sign-in and the scope of every admin request.

Sign-in checks the API's own users and argon2 hashes (verified off the event loop) under the
shared sign-in throttle. Sessions live in the database (`backend/identity/panel_sessions.py`):
the signed cookie holds only the random session id (from which the CSRF tokens derive too) and
the chosen tenant. Every request loads the session, its user and the scope again
(`ScopeMiddleware`), so a signed-out session, a deactivated user, a revoked role or a suspended
tenant is out on the very next request.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, MutableMapping
from typing import Any

from fastapi import FastAPI
from sqladmin.authentication import AuthenticationBackend
from sqladmin.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from admin.csrf import SESSION_ID_KEY, CsrfMiddleware, CsrfTokens, renew_session_id, route_path
from admin.scoping import AdminScope, bound_scope
from backend.core.config import Settings
from backend.core.database import Database
from backend.core.dependencies import client_address
from backend.core.ids import parse_uuid
from backend.identity.accounts import normalise_email
from backend.identity.models import User
from backend.identity.panel_sessions import (
    PANEL_SESSION_SECONDS,
    end_panel_session,
    panel_session_user,
    start_panel_session,
)
from backend.identity.service import verify_credentials
from tenants import service as tenant_service
from tenants.isolation import enter_tenant
from tenants.models import Membership, Tenant, TenantStatus
from tenants.roles import TenantRole
from tenants.schemas import MembershipSummary

ADMIN_PATH = "/admin"
PICKER_PATH = "/tenant"
PICKER_ROUTE = "admin:view-tenant-picker"
SESSION_COOKIE = "tenantdesk_admin"
SESSION_TENANT = "tid"
ADMIN_ROLES = frozenset({TenantRole.OWNER, TenantRole.ADMIN})

REFUSED = (
    "This panel is for platform administrators and for owners or admins of an active tenant. "
    "Your account is neither, so it cannot sign in here."
)
DEACTIVATED = "This account is deactivated."
THROTTLED = "Too many failed sign-in attempts. Try again in {seconds} seconds."


async def eligible_tenants(session: AsyncSession, user_id: uuid.UUID) -> list[MembershipSummary]:
    """The active tenants the user owns or administers: the ones they may pick in the panel."""
    memberships = [
        m
        for m in await tenant_service.memberships_of_user(session, user_id)
        if m.role in ADMIN_ROLES
    ]
    if not memberships:
        return []
    active = set(
        await session.scalars(
            select(Tenant.id).where(
                Tenant.id.in_([m.tenant_id for m in memberships]),
                Tenant.status == TenantStatus.ACTIVE,
            )
        )
    )
    return [m for m in memberships if m.tenant_id in active]


async def _tenant_scope(session: AsyncSession, user: User, tenant_id: uuid.UUID) -> AdminScope:
    await enter_tenant(session, tenant_id)
    row = (
        await session.execute(
            select(Membership.role, Tenant.name)
            .join(Tenant, Tenant.id == Membership.tenant_id)
            .where(
                Membership.user_id == user.id,
                Membership.role.in_(ADMIN_ROLES),
                Tenant.status == TenantStatus.ACTIVE,
            )
        )
    ).one_or_none()
    if row is None:  # role revoked or tenant suspended since: back to the picker
        return AdminScope(user.id, user.email)
    return AdminScope(user.id, user.email, tenant_id=tenant_id, tenant_name=row.name, role=row.role)


async def load_scope(database: Database, data: Mapping[str, Any]) -> AdminScope | None:
    """The scope the session still grants, or None when it grants nothing (never signed in,
    signed out, ended by a password change or deactivation, or expired)."""
    session_id = data.get(SESSION_ID_KEY)
    if not isinstance(session_id, str) or not session_id:
        return None
    async with database.session_factory() as session:
        user = await panel_session_user(session, session_id)
        if user is None:
            return None
        if user.is_superuser:
            return AdminScope(user.id, user.email, platform=True)
        tenant_id = parse_uuid(data.get(SESSION_TENANT))
        if tenant_id is None:
            return AdminScope(user.id, user.email)
        return await _tenant_scope(session, user, tenant_id)


def start_cookie_session(cookie: MutableMapping[str, Any], tenant_id: uuid.UUID | None) -> str:
    """A fresh session id in the cookie (no fixation: the one from before sign-in is gone)."""
    cookie.clear()
    session_id = renew_session_id(cookie)
    if tenant_id is not None:
        cookie[SESSION_TENANT] = str(tenant_id)
    return session_id


def request_scope(request: Request) -> AdminScope | None:
    return getattr(request.state, "admin_scope", None)


class ScopeMiddleware:
    """Loads the request's scope from the database and binds it for the admin's sessions."""

    def __init__(self, app: ASGIApp, main_app: FastAPI) -> None:
        self.app = app
        self.main_app = main_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or route_path(scope).startswith("/statics/"):
            await self.app(scope, receive, send)
            return
        admin_scope = await load_scope(self.main_app.state.database, scope["session"])
        scope.setdefault("state", {})["admin_scope"] = admin_scope
        with bound_scope(admin_scope):
            await self.app(scope, receive, send)


class AdminAuth(AuthenticationBackend):
    def __init__(self, main_app: FastAPI, settings: Settings, tokens: CsrfTokens) -> None:
        super().__init__(
            secret_key=settings.secret_key_value(),
            session_cookie=SESSION_COOKIE,
            max_age=PANEL_SESSION_SECONDS,
            path=ADMIN_PATH,
            same_site="strict",
            https_only=settings.is_production,
        )
        self.main_app = main_app
        self.templates: Jinja2Templates | None = None  # the admin's, set once it exists
        self.middlewares += [
            Middleware(CsrfMiddleware, tokens=tokens, trusted_origins=[settings.public_base_url]),
            Middleware(ScopeMiddleware, main_app=main_app),
        ]

    async def login_page(
        self,
        request: Request,
        error: str,
        status_code: int,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        if self.templates is None:
            raise RuntimeError("AdminAuth.templates is set by mount_admin")
        response = await self.templates.TemplateResponse(
            request, "sqladmin/login.html", {"error": error}, status_code=status_code
        )
        response.headers.update(headers or {})
        return response

    async def login(self, request: Request) -> Response | bool:
        form = await request.form()
        email = normalise_email(str(form.get("username", "")))
        state = self.main_app.state
        attempt = await state.sign_in_throttle.begin(email, client_address(request))
        if attempt.retry_after is not None:
            wait = attempt.retry_after
            message = THROTTLED.format(seconds=wait)
            return await self.login_page(request, message, 429, {"Retry-After": str(wait)})
        async with state.database.session_factory() as session:
            user = await self._verified_user(session, email, str(form.get("password", "")))
            if user is None:
                return False  # SQLAdmin's "Invalid credentials.", whether or not the email exists
            await attempt.succeeded()
            if not user.is_active:
                return await self.login_page(request, DEACTIVATED, 403)
            tenants = [] if user.is_superuser else await eligible_tenants(session, user.id)
            if not user.is_superuser and not tenants:
                await session.commit()  # keeps an upgraded hash
                return await self.login_page(request, REFUSED, 403)
            only = tenants[0].tenant_id if len(tenants) == 1 else None
            session_id = start_cookie_session(request.session, only)
            await start_panel_session(session, user.id, session_id)
            await session.commit()  # the session, and an upgraded hash
        target = "admin:index" if user.is_superuser or only else PICKER_ROUTE
        return RedirectResponse(request.url_for(target), status_code=302)

    async def _verified_user(self, session: AsyncSession, email: str, password: str) -> User | None:
        return await verify_credentials(session, self.main_app.state.passwords, email, password)

    async def logout(self, request: Request) -> Response | bool:
        """End the session in the database, so that a copy of the cookie is worthless too."""
        session_id = request.session.get(SESSION_ID_KEY)
        if isinstance(session_id, str) and session_id:
            async with self.main_app.state.database.session_factory() as session:
                await session.execute(end_panel_session(session_id))
                await session.commit()
        request.session.clear()
        renew_session_id(request.session)
        return RedirectResponse(request.url_for("admin:login"), status_code=302)

    async def authenticate(self, request: Request) -> Response | bool:
        scope = request_scope(request)
        if scope is None:  # never signed in, signed out, deactivated, or expired
            return False
        if scope.chosen or route_path(request.scope) == PICKER_PATH:
            return True
        return RedirectResponse(request.url_for(PICKER_ROUTE), status_code=302)

    async def get_user_id(self, request: Request) -> Any:
        scope = request_scope(request)
        return scope.user_id if scope else None
