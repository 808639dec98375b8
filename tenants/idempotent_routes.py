"""The `Idempotency-Key` header on the create routes: the HTTP side of `tenants.idempotency`.

A create route takes `Idempotency` (after its caller, so that strangers get their 404 first) and
its router uses `IdempotentRoute`. The dependency claims the key before the handler runs, or
answers the stored response at once (`Idempotent-Replayed: true`); the route class stores the
handler's answer in the request's transaction, before it commits; the dependency releases the
claim when the request fails. Without the header nothing of this runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from backend.core.database import DbSession, get_database
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

    async def complete(self, response: Response) -> None:
        await complete_key(self.session, self.scope, response.status_code, bytes(response.body))
        self.pending = False


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


def _claims_on_the_side(session: Any) -> bool:
    """Whether a claim commits in a transaction of its own, seen by concurrent requests (409).

    Not on SQLite, which has one writer at a time: a second connection would wait on the
    request's own write lock (a personal API key's use is written before). There, the claim
    rides in the request's transaction, and a concurrent request queues on the lock until the
    first has committed, then replays its answer; a failure rolls the claim back with the rest.
    """
    return bool(session.get_bind().dialect.name != "sqlite")


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
    on_the_side = _claims_on_the_side(session)
    if on_the_side:
        stored = await _in_own_transaction(request, scope, lambda s: claim_key(s, scope, digest))
    else:
        stored = await claim_key(session, scope, digest)
    if stored is not None:
        raise Replay(stored)
    claim = Claim(scope, session)
    request.scope[_CLAIM] = claim
    try:
        yield claim
    except BaseException:
        if on_the_side:  # otherwise the request's rollback takes the claim with it
            await _in_own_transaction(request, scope, lambda s: release_key(s, scope))
        raise
    if claim.pending:  # answered without storing (not a success): nothing to replay
        if on_the_side:
            await _in_own_transaction(request, scope, lambda s: release_key(s, scope))
        else:
            await release_key(session, scope)


Idempotency = Annotated[Claim | None, Depends(_idempotent_request, scope="function")]


class IdempotentRoute(APIRoute):
    """Stores a successful answer with its claimed key, and answers replays."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_idempotently(request: Request) -> Response:
            try:
                response = await handle(request)
            except Replay as replay:
                return replay.response()
            claim: Claim | None = request.scope.get(_CLAIM)
            if claim is not None and 200 <= response.status_code < 300:
                await claim.complete(response)
            return response

        return handle_idempotently
