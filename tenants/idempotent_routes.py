"""The `Idempotency-Key` header on the create routes: the HTTP side of `tenants.idempotency`.

A create route takes `Idempotency` (after its caller, so that strangers get their 404 first) and
its router uses `IdempotentRoute`. The dependency claims the key before the handler runs, or
answers the stored response at once (`Idempotent-Replayed: true`); the route class stores the
handler's answer in the request's transaction, before it commits; the dependency releases the
claim when the request fails. Without the header nothing of this runs.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from backend.core.database import DbSession, get_database
from backend.core.secrets import SHOWN_ONCE
from backend.identity.api_keys import ApiKeyCredential
from backend.identity.dependencies import TokenClaims
from backend.identity.keys import AccessTokenClaims
from tenants.idempotency import (
    KeyScope,
    StoredResponse,
    claim_key,
    complete_key,
    release_key,
    request_digest,
)
from tenants.isolation import current_tenant_id, enter_tenant

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_CLAIM = "idempotency_claim"
KEY_DESCRIPTION = (
    "Makes a retry safe: the same key with the same body within 24 hours answers the first "
    "response again (with `Idempotent-Replayed: true`) and creates nothing; with another body, "
    "422; while the first request still runs, 409. Scoped to the caller and the tenant. A "
    "secret shown once at creation is null in a replay."
)


class Replay(Exception):
    def __init__(self, stored: StoredResponse) -> None:
        self.stored = stored

    def response(self) -> Response:
        return Response(
            self.stored.body,
            status_code=self.stored.status,
            media_type="application/json",
            headers={REPLAYED_HEADER: "true"},
        )


class Claim:
    """A key this request holds; `pending` until its answer is stored."""

    def __init__(self, scope: KeyScope, session: Any) -> None:
        self.scope = scope
        self.session = session
        self.pending = True

    async def complete(self, response: Response, shown_once: frozenset[str]) -> None:
        await complete_key(
            self.session, self.scope, response.status_code, bytes(response.body), shown_once
        )
        self.pending = False


def shown_once_fields(model: Any) -> frozenset[str]:
    """The fields of a response model marked `SHOWN_ONCE` (by their JSON name)."""
    fields = getattr(model, "model_fields", {})
    return frozenset(
        field.serialization_alias or field.alias or name
        for name, field in fields.items()
        if SHOWN_ONCE in field.metadata
    )


def _principal(credentials: AccessTokenClaims | ApiKeyCredential) -> str:
    """Who sent the key: a user, a service client, or a personal API key (known by its hash,
    which speaks for one user in one tenant)."""
    if isinstance(credentials, ApiKeyCredential):
        return f"api_key:{credentials.key_hash}"
    if credentials.tenant_id is not None:
        return f"client:{credentials.client_id}"
    return f"user:{credentials.subject}"


async def _in_own_transaction(
    request: Request, scope: KeyScope, work: Callable[[Any], Awaitable[Any]]
) -> Any:
    """`work(session)` committed on its own, in the key's tenant (row-level security)."""
    async with get_database(request).session_factory() as session, session.begin():
        if scope.tenant_id is not None:
            await enter_tenant(session, scope.tenant_id)
        return await work(session)


async def _before_the_claim(session: AsyncSession) -> None:
    """On SQLite, commit what the request wrote so far, before the claim's own transaction.

    SQLite has one writer at a time: the claim, on a connection of its own, would otherwise wait
    on this request's write lock (the caller's bookkeeping, such as a personal API key's
    last-use stamp, is written before the key is claimed). Nothing but that bookkeeping is
    written by then; on PostgreSQL, whose writers do not block each other here, it stays in the
    request's transaction.
    """
    if session.get_bind().dialect.name == "sqlite" and session.in_transaction():
        await session.commit()


async def _release(request: Request, session: AsyncSession, scope: KeyScope) -> None:
    """Free the key of a request that failed: its work is rolled back first (on SQLite, so that
    the release does not wait on the request's own write lock), then the claim is deleted in a
    transaction of its own. A failure here leaves the claim to its lease: it is logged, and the
    request's own error is the one answered."""
    try:
        await session.rollback()
        await _in_own_transaction(request, scope, lambda s: release_key(s, scope))
    except Exception:
        logger.warning("idempotency key not released; its lease frees it", exc_info=True)


async def _idempotent_request(
    request: Request,
    claims: TokenClaims,
    session: DbSession,
    key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description=KEY_DESCRIPTION,
        ),
    ] = None,
) -> AsyncIterator[Claim | None]:
    if key is None:
        yield None
        return
    tenant_id = current_tenant_id(session)
    if "tenant_id" in request.path_params and tenant_id is None:
        # The tenant access was not resolved, so the request is refused (a path that does not
        # parse: 422); a key is claimed only after the caller's access (declared before this).
        yield None
        return
    scope = KeyScope(_principal(claims), tenant_id, key)
    digest = request_digest(request.method, request.url.path, await request.body())
    # The claim commits on its own before the work: a retry, in any worker, sees it (409).
    await _before_the_claim(session)
    stored = await _in_own_transaction(request, scope, lambda s: claim_key(s, scope, digest))
    if stored is not None:
        raise Replay(stored)
    claim = Claim(scope, session)
    request.scope[_CLAIM] = claim
    try:
        yield claim
    except BaseException:
        await _release(request, session, scope)
        raise
    if claim.pending:  # answered without storing (not a success): nothing to replay
        await release_key(session, scope)  # commits with the request


Idempotency = Annotated[Claim | None, Depends(_idempotent_request, scope="function")]


class IdempotentRoute(APIRoute):
    """Stores a successful answer with its claimed key, and answers replays. A field of the
    response model named like a secret, or marked `SHOWN_ONCE`, is stored as null."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        shown_once = shown_once_fields(self.response_model)

        async def handle_idempotently(request: Request) -> Response:
            try:
                response = await handle(request)
            except Replay as replay:
                return replay.response()
            claim: Claim | None = request.scope.get(_CLAIM)
            if claim is not None and 200 <= response.status_code < 300:
                await claim.complete(response, shown_once)
            return response

        return handle_idempotently
