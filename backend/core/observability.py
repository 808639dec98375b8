"""Request ids, the access log line and Prometheus metrics, in one ASGI middleware."""

from __future__ import annotations

import hmac
import logging
import re
import time
import uuid
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client import generate_latest as render_metrics
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.core.errors import problem_response
from backend.core.logging import set_request_id

access_logger = logging.getLogger("backend.access")

REQUEST_ID_HEADER = "x-request-id"
_ACCEPTABLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
UNMATCHED_ROUTE = "<unmatched>"
BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}
SECRET_PATH_PARAMETER = "{token}"  # noqa: S105 (a route placeholder, not a secret)


class Metrics:
    """One registry per app, so that several apps in one process (tests) do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by route template, method and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by route template and method.",
            ["method", "route"],
            registry=self.registry,
        )

    def endpoint(self, token: str | None) -> Callable[[Request], Response]:
        """GET /metrics: open without a token, else only to `Authorization: Bearer <token>`."""
        expected = f"Bearer {token}".encode() if token else None

        def metrics(request: Request) -> Response:
            given = request.headers.get("authorization", "").encode()
            if expected is not None and not hmac.compare_digest(given, expected):
                return problem_response(
                    401, "The metrics need their bearer token.", headers=BEARER_CHALLENGE
                )
            return Response(render_metrics(self.registry), media_type=CONTENT_TYPE_LATEST)

        return metrics


def route_template(scope: Scope) -> str:
    """The route's path as documented: `{token}`, without a convertor's `:name`."""
    route = scope.get("route")
    return getattr(route, "path_format", None) or UNMATCHED_ROUTE


def loggable_path(scope: Scope, route: str) -> str:
    """The raw path, unless the route carries a secret in it (an invitation token)."""
    return route if SECRET_PATH_PARAMETER in route else scope["path"]


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Request(scope).headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _ACCEPTABLE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        set_request_id(request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"].append((REQUEST_ID_HEADER.encode(), request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            duration = time.perf_counter() - started
            route = route_template(scope)
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(scope["method"], route).observe(duration)
            access_logger.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": loggable_path(scope, route),
                    "route": route,
                    "status": status,
                    "duration_ms": round(duration * 1000, 2),
                },
            )
