"""Routes: the tenant export, the account export, the account erasure. Thin."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import StreamingResponse

from backend.core.database import DbSession, get_database
from backend.core.dependencies import client_address
from backend.core.errors import TooManyRequests
from backend.identity.dependencies import AppPasswords, CurrentUser
from backend.identity.sign_in_throttle import SignInThrottle
from backend.privacy import account, tenant_export
from backend.privacy.schemas import AccountErasure, AccountExport
from tenants.dependencies import TenantAccess

router = APIRouter()

EXPORT_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": 'One JSON document a line: `{"type": <table>, "data": {...}}` for '
        'each row, then `{"type": "summary", "counts": {<table>: <rows>}}`.',
        "content": {tenant_export.MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.get(
    "/api/v1/tenants/{tenant_id}/export",
    tags=["tenants"],
    response_class=StreamingResponse,
    responses=EXPORT_RESPONSES,
)
async def export_tenant(caller: TenantAccess, session: DbSession, request: Request) -> Response:
    """Every row the tenant holds, streamed as NDJSON (owners only); secrets and hashes are
    never included."""
    await tenant_export.record_tenant_export(session, caller)
    lines = tenant_export.export_lines(get_database(request).session_factory, caller.tenant_id)
    # The first batch is read before answering, so that a database failure is still a 503.
    first = await anext(lines)

    async def body() -> AsyncIterator[bytes]:
        yield first
        async for chunk in lines:
            yield chunk

    filename = f"tenant-{caller.tenant_id}.ndjson"
    return StreamingResponse(
        body(),
        media_type=tenant_export.MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/api/v1/users/me/export", tags=["users"])
async def export_me(user: CurrentUser, session: DbSession) -> AccountExport:
    """Everything the service holds about the caller: profile, memberships, sign-in sessions
    (without their secrets) and the audit events they acted in, in their tenants' logs and in
    the platform's."""
    return AccountExport.model_validate(await account.export_account(session, user))


@router.delete("/api/v1/users/me", tags=["users"], status_code=status.HTTP_204_NO_CONTENT)
async def erase_me(
    body: AccountErasure,
    request: Request,
    user: CurrentUser,
    session: DbSession,
    passwords: AppPasswords,
) -> Response:
    """Erase the account: sessions and credentials revoked, memberships removed, tasks
    unassigned, audit events kept under an anonymous id, the account deleted. 409 names the
    tenants the caller is the last owner of."""
    # Counted like a sign-in, so that a stolen access token cannot guess passwords faster.
    throttle: SignInThrottle = request.app.state.sign_in_throttle
    attempt = await throttle.begin(user.email, client_address(request))
    if attempt.retry_after is not None:
        raise TooManyRequests(
            "Too many attempts; retry later.", headers={"Retry-After": str(attempt.retry_after)}
        )
    try:
        await account.erase_account(session, passwords, user, body.password)
    except account.IncorrectPassword:
        raise
    except BaseException:
        await attempt.succeeded()
        raise
    await attempt.succeeded()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
