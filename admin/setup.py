"""The one SQLAdmin instance of the app, mounted at /admin on the API's engine and sessions."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any, ClassVar

from fastapi import FastAPI
from sqladmin import Admin, BaseView, expose
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from admin.auth import (
    ADMIN_PATH,
    PICKER_PATH,
    REFUSED,
    SESSION_TENANT,
    AdminAuth,
    eligible_tenants,
    request_scope,
)
from admin.csrf import CsrfTokens
from admin.permissions import PICKER, ScopeGrants
from admin.scoping import AdminSessionMaker
from admin.sqladmin_adapter import CategoryHidingAdmin
from admin.urls import PanelUrls
from admin.views_identity import (
    OAuthClientAdmin,
    PlatformAuditEventAdmin,
    RefreshTokenAdmin,
    UserAdmin,
)
from admin.views_tenancy import (
    ApiKeyAdmin,
    AuditEventAdmin,
    InvitationAdmin,
    MembershipAdmin,
    TenantAdmin,
)
from admin.views_work import ProjectAdmin, ProjectMemberAdmin, TaskAdmin
from backend.core.config import Settings
from backend.core.errors import OutageMiddleware
from backend.core.ids import parse_uuid

TEMPLATES = Path(__file__).resolve().parent / "templates"

MODEL_VIEWS = (
    TenantAdmin,
    MembershipAdmin,
    InvitationAdmin,
    ApiKeyAdmin,
    AuditEventAdmin,
    ProjectAdmin,
    ProjectMemberAdmin,
    TaskAdmin,
    UserAdmin,
    OAuthClientAdmin,
    RefreshTokenAdmin,
    PlatformAuditEventAdmin,
)


class TenantPicker(BaseView):
    """Where a tenant owner or admin of several tenants picks one, and comes back to switch."""

    name = "Switch tenant"
    icon = "fa-solid fa-right-left"
    auth: ClassVar[AdminAuth]  # set at mounting

    def is_visible(self, request: Request) -> bool:
        scope = request_scope(request)
        return scope is not None and not scope.platform

    @expose(PICKER_PATH, methods=["GET", "POST"], identity=PICKER)
    async def pick(self, request: Request) -> Response:
        scope = request_scope(request)
        auth = self.auth
        if scope is None or scope.platform:
            return RedirectResponse(request.url_for("admin:index"), status_code=302)
        async with auth.main_app.state.database.session_factory() as session:
            tenants = await eligible_tenants(session, scope.user_id)
        if not tenants:  # no longer an owner or admin anywhere: out, with the reason
            request.session.clear()
            return await auth.login_page(request, REFUSED, 403)
        error = ""
        if request.method == "POST":
            chosen = parse_uuid((await request.form()).get("tenant_id"))
            if chosen in {tenant.tenant_id for tenant in tenants}:
                request.session[SESSION_TENANT] = str(chosen)
                return RedirectResponse(request.url_for("admin:index"), status_code=302)
            error = "Pick one of your tenants."
        context = {"tenants": tenants, "current": scope.tenant_id, "error": error}
        return await self.templates.TemplateResponse(request, "tenant_picker.html", context)


class TenantDeskAdmin(CategoryHidingAdmin):
    def __init__(self, app: FastAPI, settings: Settings) -> None:
        tokens = CsrfTokens(settings.secret_key_value())
        auth = AdminAuth(app, settings, tokens)
        super().__init__(
            app,
            # Not a SQLAlchemy maker but one that resolves the app's per call (admin/scoping.py).
            session_maker=AdminSessionMaker(app),  # type: ignore[arg-type]
            base_url=ADMIN_PATH,
            title="tenantdesk admin",
            templates_dir=str(TEMPLATES),
            authentication_backend=auth,
            authorization_backend=ScopeGrants(),
            # A mounted app answers its own errors: an outage must be a 503 here too.
            middlewares=[
                Middleware(OutageMiddleware, outages=app.state.outages),
                Middleware(PanelUrls, mount_path=ADMIN_PATH),
            ],
        )
        self.main_app = app
        auth.templates = self.templates
        self.templates.env.globals["csrf_token"] = lambda request: tokens.for_session(
            request.session
        )
        self.templates.env.globals["admin_scope"] = request_scope
        # SQLAdmin configures a view through class attributes (session maker, templates, admin):
        # a subclass per Admin keeps two apps in one process (tests, a live server) apart.
        own: dict[str, Any] = {"main_app": app, "auth": auth}
        for view in (*MODEL_VIEWS, TenantPicker):
            self.add_view(
                types.new_class(view.__name__, (view,), exec_body=lambda ns: ns.update(own))
            )


def mount_admin(app: FastAPI, settings: Settings) -> Admin:
    """Mount the admin panel at /admin: one Admin, one view per model, and the tenant picker."""
    admin = app.state.admin = TenantDeskAdmin(app, settings)
    return admin
