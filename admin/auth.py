"""Admin sign-in and the scope of every admin request.

Sign-in checks the API's own users and argon2 hashes (verified off the event loop) and counts
each attempt against the token endpoint's throttle. The session cookie holds ids only: the
user, the chosen tenant, the CSRF session id and when the user signed in. Every request loads
them against the database again (`ScopeMiddleware`), so a deactivated user, a revoked role or a
suspended tenant is out on the very next request.
"""

from __future__ import annotations

import time
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

from admin.csrf import CsrfMiddleware, CsrfTokens, renew_session_id, route_path
from admin.scoping import AdminScope, bound_scope
from backend.core.config import Settings
from backend.core.database import Database
from backend.core.dependencies import client_address
from backend.identity.bootstrap import normalise_email
from backend.identity.models import User
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
SESSION_MAX_AGE_SECONDS = 8 * 3600
SESSION_USER, SESSION_TENANT, SESSION_SINCE = "uid", "tid", "since"
ADMIN_ROLES = frozenset({TenantRole.OWNER, TenantRole.ADMIN})

REFUSED = (
    "This panel is for platform administrators and for owners or admins of an active tenant. "
    "Your account is neither, so it cannot sign in here."
)
DEACTIVATED = "This account is deactivated."
THROTTLED = "Too many failed sign-in attempts. Try again in {seconds} seconds."


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _still_signed_in(user: User, since: object) -> bool:
    """False once the user's sessions were revoked after this sign-in ("log out everywhere")."""
    if user.tokens_valid_after is None:
        return True
    return isinstance(since, int | float) and user.tokens_valid_after.timestamp() <= since


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
    """The scope the session's ids still grant, or None when they grant nothing."""
    user_id = _uuid(data.get(SESSION_USER))
    if user_id is None:
        return None
    async with database.session_factory() as session:
        user = await session.scalar(
            select(User).where(User.id == user_id, User.is_active.is_(True))
        )
        if user is None or not _still_signed_in(user, data.get(SESSION_SINCE)):
            return None
        if user.is_superuser:
            return AdminScope(user.id, user.email, platform=True)
        tenant_id = _uuid(data.get(SESSION_TENANT))
        if tenant_id is None:
            return AdminScope(user.id, user.email)
        return await _tenant_scope(session, user, tenant_id)


def start_session(
    session: MutableMapping[str, Any], user: User, tenant_id: uuid.UUID | None
) -> None:
    """A fresh session (new CSRF id: no fixation) holding ids only."""
    session.clear()
    renew_session_id(session)
    session[SESSION_USER] = str(user.id)
    # Like access tokens, a sign-in never predates the user's last "log out everywhere".
    cutoff = user.tokens_valid_after.timestamp() if user.tokens_valid_after else 0.0
    session[SESSION_SINCE] = max(time.time(), cutoff)
    if tenant_id is not None:
        session[SESSION_TENANT] = str(tenant_id)


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
            max_age=SESSION_MAX_AGE_SECONDS,
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
            await session.commit()  # keeps an upgraded hash
        if not user.is_superuser and not tenants:
            return await self.login_page(request, REFUSED, 403)
        only = tenants[0].tenant_id if len(tenants) == 1 else None
        start_session(request.session, user, only)
        target = "admin:index" if user.is_superuser or only else PICKER_ROUTE
        return RedirectResponse(request.url_for(target), status_code=302)

    async def _verified_user(self, session: AsyncSession, email: str, password: str) -> User | None:
        return await verify_credentials(session, self.main_app.state.passwords, email, password)

    async def logout(self, request: Request) -> Response | bool:
        request.session.clear()
        renew_session_id(request.session)
        return RedirectResponse(request.url_for("admin:login"), status_code=302)

    async def authenticate(self, request: Request) -> Response | bool:
        scope = request_scope(request)
        if scope is None:
            if SESSION_USER in request.session:
                request.session.clear()  # deactivated, signed out everywhere, or expired
            return False
        if scope.chosen or route_path(request.scope) == PICKER_PATH:
            return True
        return RedirectResponse(request.url_for(PICKER_ROUTE), status_code=302)

    async def get_user_id(self, request: Request) -> Any:
        scope = request_scope(request)
        return scope.user_id if scope else None
