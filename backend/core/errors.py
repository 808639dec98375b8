"""RFC 9457 problem details: the error shape of every API answer except the OAuth2 endpoints."""

from __future__ import annotations

import errno
import logging
import socket
import time
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import InterfaceError as SQLAlchemyInterfaceError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.core.logging import current_request_id

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
CHANGED_MEANWHILE = (
    "Someone changed the resource while this request ran: read it again, then retry."
)
# What a client is told to wait after a 503: a restart or failover takes seconds.
RETRY_AFTER_SECONDS = "1"
DATABASE_UNAVAILABLE = "The database is unavailable or overloaded. Retry shortly."


class ValidationIssue(BaseModel):
    loc: list[str | int] = Field(description="Where: `body`, `query` or `path`, then the field.")
    msg: str
    type: str | None = None


class ProblemDetails(BaseModel):
    """The body of every error answer outside /oauth (RFC 9457, `application/problem+json`)."""

    model_config = ConfigDict(title="Problem")

    type: str = "about:blank"
    title: str = Field(description="The status's reason phrase.")
    status: int
    detail: str | None = Field(default=None, description="What happened, for a person.")
    request_id: str | None = Field(default=None, description="Also in the log and X-Request-ID.")
    errors: list[ValidationIssue] | None = Field(
        default=None, description="The fields that were refused (422, and a wrong password)."
    )


class Problem(Exception):
    """An error answered on purpose. Subclasses fix the status; `detail` says what happened."""

    status: int = 400
    type: str = "about:blank"

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        self.headers = headers or {}
        self.extra = extra or {}


class BadRequest(Problem):
    status = 400


class Unauthorized(Problem):
    status = 401

    def __init__(self, detail: str = "Authentication required.", **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        super().__init__(detail, **kwargs)


class Forbidden(Problem):
    status = 403


class NotFound(Problem):
    status = 404

    def __init__(self, detail: str = "Not found.", **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)


class Conflict(Problem):
    status = 409


class Gone(Problem):
    status = 410


class TooManyRequests(Problem):
    status = 429


class ServiceUnavailable(Problem):
    status = 503

    def __init__(self, detail: str, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": RETRY_AFTER_SECONDS})
        super().__init__(detail, **kwargs)


class NotModified(Exception):
    """A conditional GET whose `If-None-Match` names the current tag: 304, without a body."""

    def __init__(self, entity_tag: str) -> None:
        super().__init__(entity_tag)
        self.entity_tag = entity_tag


def problem_response(
    status: int,
    detail: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
    type_: str = "about:blank",
) -> JSONResponse:
    body: dict[str, Any] = {"type": type_, "title": HTTPStatus(status).phrase, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra or {})
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


async def _on_problem(_request: Request, exc: Exception) -> JSONResponse:
    exc = cast(Problem, exc)
    return problem_response(
        exc.status, exc.detail, headers=exc.headers, extra=exc.extra, type_=exc.type
    )


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    exc = cast(StarletteHTTPException, exc)
    detail = exc.detail if isinstance(exc.detail, str) else None
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    return problem_response(exc.status_code, detail, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path.

    Starlette answers 405 from the first route whose path matched, and FastAPI makes one route
    per method, so its `Allow` would name that route's methods only (GET for a GET + PATCH path).
    """
    state = request.app.state
    if getattr(state, "methods_by_path", None) is None:
        state.methods_by_path = _MethodsByPath(request.app.routes)
    allowed: list[str] = state.methods_by_path.allowed(request.scope)
    return allowed


class _MethodsByPath:
    """Path patterns and methods of every route, included routers' too; built once per app."""

    def __init__(self, routes: list[BaseRoute]) -> None:
        self.routes = [
            (context.path_regex, frozenset(context.methods))
            for context in iter_route_contexts(routes)
            if context.methods and getattr(context, "path_regex", None) is not None
        ]

    def allowed(self, scope: Scope) -> list[str]:
        path, root_path = scope["path"], scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        methods = set().union(*(m for pattern, m in self.routes if pattern.match(path)))
        return sorted(methods)


async def _on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    exc = cast(RequestValidationError, exc)
    errors = [
        {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
        for error in exc.errors()
    ]
    return problem_response(422, "The request is not valid.", extra={"errors": errors})


async def _on_not_modified(_request: Request, exc: Exception) -> Response:
    return Response(status_code=304, headers={"ETag": cast(NotModified, exc).entity_tag})


async def _on_concurrent_edit(request: Request, _exc: Exception) -> JSONResponse:
    # The row's version changed between the read and the versioned UPDATE or DELETE, which
    # therefore matched nothing: someone else's edit landed in between, and is kept.
    if "if-match" in request.headers:
        return problem_response(412, CHANGED_MEANWHILE)
    return problem_response(409, CHANGED_MEANWHILE)


async def _on_unexpected_error(_request: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled error", exc_info=exc)
    return problem_response(500, "An unexpected error occurred. Quote the request id.")


# SQLSTATE classes of an outage rather than of a bad statement: 08 connection exception,
# 53 insufficient resources (too many connections), 57 operator intervention (shutting down,
# starting up, and 57014: cancelled by the statement timeout).
_OUTAGE_SQLSTATE_CLASSES = frozenset({"08", "53", "57"})
_NETWORK_ERRNOS = frozenset(
    {errno.ECONNREFUSED, errno.ECONNRESET, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ETIMEDOUT}
)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what it wraps (`orig`, cause, context) and the members of a group."""
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending and len(seen) < 32:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        for linked in (getattr(current, "orig", None), current.__cause__, current.__context__):
            if isinstance(linked, BaseException):
                pending.append(linked)


def _is_network_error(exc: BaseException) -> bool:
    # asyncio reports several failed addresses as one OSError without an errno.
    return isinstance(exc, ConnectionError | TimeoutError | socket.gaierror) or (
        type(exc) is OSError and (exc.errno is None or exc.errno in _NETWORK_ERRNOS)
    )


def is_database_unavailable(exc: BaseException) -> bool:
    """True when `exc` comes from an outage, not from the request: the database unreachable,
    restarting or saturated, the pool exhausted, or a statement cut by the statement timeout."""
    for error in _causes(exc):
        if isinstance(error, PoolTimeoutError | SQLAlchemyInterfaceError) or _is_network_error(
            error
        ):
            return True
        if isinstance(error, DBAPIError) and error.connection_invalidated:
            return True
        sqlstate = getattr(error, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate[:2] in _OUTAGE_SQLSTATE_CLASSES:
            return True
    return False


class OutageLog:
    """One WARNING when requests start failing for an outage, and one INFO once the database
    accepts connections again, instead of a traceback per request. A long outage is reported
    again every `repeat_seconds`.

    The first new connection ends the outage, but the window is kept: connections pooled before
    the outage fail once each after it (no pre-ping), and they belong to the same outage."""

    def __init__(self, repeat_seconds: float = 60.0) -> None:
        self.repeat_seconds = repeat_seconds
        self._reported_at: float | None = None
        self._back = True

    def report(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self._reported_at is not None and now - self._reported_at < self.repeat_seconds:
            return
        self._reported_at = now
        self._back = False
        logger.warning("database unavailable: answering 503", extra={"error": _describe(exc)})

    def watch(self, engine: AsyncEngine) -> None:
        """A new connection means the database is back (or the pool grew): end the outage."""
        event.listen(engine.sync_engine, "connect", self._on_connect)

    def _on_connect(self, *_args: Any) -> None:
        if not self._back:
            self._back = True
            logger.info("database reachable again")


def _describe(exc: BaseException) -> str:
    innermost = next(
        (error for error in _causes(exc) if error.__cause__ is None and error.__context__ is None),
        exc,
    )
    return f"{type(innermost).__name__}: {innermost}"[:300]


def database_unavailable_response() -> JSONResponse:
    return problem_response(503, DATABASE_UNAVAILABLE, headers={"Retry-After": RETRY_AFTER_SECONDS})


class OutageMiddleware:
    """The last line of defence of an ASGI app: a database outage that escapes every handler
    (a commit, a session opened by the admin panel, a page) becomes a 503 problem with
    Retry-After, instead of a 500, a traceback, or a connection dropped by the server."""

    def __init__(self, app: ASGIApp, outages: OutageLog) -> None:
        self.app = app
        self.outages = outages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if response_started or not is_database_unavailable(exc):
                raise
            self.outages.report(exc)
            await database_unavailable_response()(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(NotModified, _on_not_modified)
    app.add_exception_handler(StaleDataError, _on_concurrent_edit)
    app.add_exception_handler(Exception, _on_unexpected_error)
