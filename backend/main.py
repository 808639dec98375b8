"""The application factory: settings, database, services, routers, middleware, admin."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

import backend.models  # noqa: F401  (every table, for foreign keys across layers)
from admin.setup import mount_admin
from backend.api_keys.router import router as api_keys_router
from backend.core import health
from backend.core.app_role import check_app_role
from backend.core.body_limit import BodyLimitMiddleware
from backend.core.config import Settings, get_settings
from backend.core.database import Database
from backend.core.docs import install_docs
from backend.core.errors import OutageLog, OutageMiddleware, install_error_handlers
from backend.core.logging import configure_logging
from backend.core.mail import Mailer, finish_deliveries
from backend.core.memory import return_large_blocks_to_the_system
from backend.core.observability import Metrics, ObservabilityMiddleware
from backend.core.rate_limit import Throttle
from backend.core.security_headers import SecurityHeadersMiddleware
from backend.identity.keys import KeyRing
from backend.identity.passwords import Passwords
from backend.identity.router import router as identity_router
from backend.identity.sign_in_throttle import SignInThrottle
from backend.invitations import pages as invitation_pages
from backend.invitations import router as invitations
from backend.invitations.limits import InvitationLimits
from backend.openapi import install_openapi, operation_id
from backend.privacy.router import router as privacy_router
from backend.projects.purge import purge_daily
from backend.projects.router import router as projects_router
from backend.projects.router import trash_router
from backend.webhooks.dispatcher import Dispatcher
from backend.webhooks.router import router as webhooks_router
from backend.webhooks.service import Webhooks
from tenants.router import account_router, tenants_router


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    return_large_blocks_to_the_system()
    metrics = Metrics()
    outages = OutageLog()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.database = database or Database.from_settings(settings)
        outages.watch(app.state.database.engine)
        # What start-up built (modules, mappers, schemas, routes) lives as long as the process:
        # frozen out of the garbage collector's reach, it is not walked again by every full
        # collection, each of which would otherwise pause the event loop for its whole length.
        gc.freeze()
        purging: asyncio.Task[None] | None = None
        dispatcher = None
        try:
            await check_app_role(app.state.database.engine, settings)
            if settings.purge_interval_seconds > 0:
                purging = asyncio.create_task(purge_daily(app.state.database, settings))
            if settings.webhook_dispatcher_in_process:
                dispatcher = Dispatcher(
                    app.state.database, settings, app.state.mailer, outages=outages
                )
                dispatcher.start()
            yield
        finally:
            if purging is not None:
                purging.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await purging
            # Webhook sends under way, then mail queued (some by the dispatcher), within the
            # one grace period.
            grace = settings.shutdown_grace_seconds
            deadline = time.monotonic() + grace
            if dispatcher is not None:
                await dispatcher.stop(grace)
            await finish_deliveries(max(0.0, deadline - time.monotonic()))
            await app.state.database.dispose()

    app = FastAPI(
        title="tenantdesk",
        version="1.0.0",
        summary="Tenants, projects and tasks behind OAuth2.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=operation_id,
        openapi_url="/openapi.json" if settings.serves_docs else None,
    )
    app.state.settings = settings
    app.state.key_ring = KeyRing(settings)
    app.state.passwords = Passwords(settings)
    app.state.mailer = Mailer(settings)
    app.state.login_throttle = Throttle.from_settings(settings.login_rate_limit, settings)
    app.state.sign_in_throttle = SignInThrottle.from_settings(settings)
    app.state.invitation_limits = InvitationLimits.from_settings(settings)
    app.state.outages = outages
    app.state.webhooks = Webhooks.from_settings(settings)

    install_error_handlers(app)
    # Innermost of the middleware, so that its 413 gets the CORS headers like any answer.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_body_bytes)
    app.add_middleware(OutageMiddleware, outages=outages)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.is_production)
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)

    install_openapi(app)
    if settings.serves_docs:
        install_docs(app, client_id=settings.default_client_id)
    app.include_router(health.router)
    if settings.serves_metrics:
        endpoint = metrics.endpoint(settings.metrics_token_value)
        app.add_api_route("/metrics", endpoint, include_in_schema=False)
    # Routes are matched in order, one regular expression each: the busiest first.
    app.include_router(projects_router)
    app.include_router(account_router)
    app.include_router(api_keys_router)
    app.include_router(tenants_router)
    app.include_router(privacy_router)
    app.include_router(trash_router)
    app.include_router(identity_router)
    app.include_router(invitations.tenant_router)
    app.include_router(invitations.public_router)
    app.include_router(invitation_pages.router)
    app.include_router(webhooks_router)
    mount_admin(app, settings)
    return app
