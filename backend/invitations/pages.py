"""The browser page behind the mailed link: `GET /invitations/accept?token=...`.

Server-rendered (Jinja2), no JavaScript. It shows what the person is invited to, then accepts
either after signing in with the invited email's password or by creating that account. Both
forms are CSRF-protected (csrf.py). Anything that goes wrong renders a page, never JSON.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.database import DbSession
from backend.core.dependencies import client_address
from backend.core.errors import Gone, NotFound, Problem
from backend.core.pages import FormField, PageRenderer
from backend.identity.dependencies import AppPasswords
from backend.identity.password_policy import MIN_LENGTH as PASSWORD_MIN_LENGTH
from backend.identity.sign_in_throttle import SignInThrottle
from backend.invitations import acceptance
from backend.invitations.csrf import CsrfRejected
from backend.invitations.dependencies import AcceptPageCsrf
from backend.invitations.details import InvitationDetails, format_expiry
from backend.invitations.schemas import InvitationAcceptNewUser

router = APIRouter(prefix="/invitations", include_in_schema=False)

_render = PageRenderer("same-origin").render

STALE_FORM = (
    "This form has expired or did not come from this site. Open the link from the mail again."
)


def _invalid(request: Request, problem: Problem) -> HTMLResponse:
    return _render(request, "invitation_invalid.html", problem.status, message=problem.detail)


def _form(
    request: Request,
    csrf: AcceptPageCsrf,
    summary: dict[str, Any],
    token: str,
    *,
    status_code: int = 200,
    error: str | None = None,
    full_name: str = "",
) -> HTMLResponse:
    nonce, csrf_token = csrf.new_token()
    response = _render(
        request,
        "invitation_accept.html",
        status_code,
        **summary,
        token=token,
        csrf_token=csrf_token,
        error=error,
        full_name=full_name,
        password_min_length=PASSWORD_MIN_LENGTH,
    )
    csrf.set_cookie(response, nonce)
    return response


def _summary(details: InvitationDetails) -> dict[str, Any]:
    invitation = details.invitation
    return {
        "email": invitation.email,
        "tenant_name": details.tenant.name,
        "project_name": details.project.name if details.project else None,
        "role": invitation.role.value,
        "project_role": invitation.project_role.value if invitation.project_role else None,
        "inviter": details.inviter_name,
        "expires_on": format_expiry(invitation),
    }


def _accepted(request: Request, result: acceptance.Acceptance) -> HTMLResponse:
    summary = _summary(result.details)
    summary["role"] = result.role.value  # a member already keeps their role
    return _render(request, "invitation_accepted.html", **summary)


_FIELD_LABELS = {"full_name": "Name", "password": "Password", "token": "Invitation link"}


def _friendly(error: Any) -> str:
    """Our own validators speak in sentences already; Pydantic's get the field's name."""
    message = str(error["msg"])
    if message.startswith("Value error, "):
        return message.removeprefix("Value error, ")
    label = _FIELD_LABELS.get(str(error["loc"][0]), "Form") if error["loc"] else "Form"
    return f"{label}: {message}."


@router.get("/accept", response_class=HTMLResponse)
async def accept_page(
    request: Request, session: DbSession, csrf: AcceptPageCsrf, token: str = ""
) -> HTMLResponse:
    try:
        details = await acceptance.open_invitation(session, token)
    except Problem as problem:
        return _invalid(request, problem)
    return _form(request, csrf, _summary(details), token)


async def _open_for_post(
    request: Request, session: AsyncSession, csrf: AcceptPageCsrf, token: str, csrf_token: str
) -> InvitationDetails | HTMLResponse:
    try:
        csrf.check(request, csrf_token)
    except CsrfRejected:
        return _render(request, "invitation_invalid.html", 403, message=STALE_FORM)
    try:
        return await acceptance.open_invitation(session, token)
    except Problem as problem:
        return _invalid(request, problem)


async def _failed(
    request: Request,
    session: AsyncSession,
    csrf: AcceptPageCsrf,
    details: InvitationDetails,
    token: str,
    problem: Problem,
    **form: Any,
) -> HTMLResponse:
    """Undo whatever the attempt wrote (the page answers normally, so the request's session
    would otherwise commit it), then show why."""
    summary = _summary(details)  # read before the rollback expires the objects
    await session.rollback()
    if isinstance(problem, Gone | NotFound):
        return _invalid(request, problem)
    response = _form(
        request, csrf, summary, token, status_code=problem.status, error=problem.detail, **form
    )
    response.headers.update(problem.headers)  # Retry-After
    return response


@router.post("/accept/sign-in", response_class=HTMLResponse)
async def sign_in_and_accept(
    request: Request,
    session: DbSession,
    csrf: AcceptPageCsrf,
    passwords: AppPasswords,
    token: FormField = "",
    csrf_token: FormField = "",
    password: FormField = "",
) -> HTMLResponse:
    details = await _open_for_post(request, session, csrf, token, csrf_token)
    if isinstance(details, HTMLResponse):
        return details
    throttle: SignInThrottle = request.app.state.sign_in_throttle
    attempt = await throttle.begin(details.invitation.email, client_address(request))
    if attempt.retry_after is not None:
        wait = attempt.retry_after
        problem = Problem(
            f"Too many failed sign-in attempts; retry in {wait} seconds.",
            status=429,
            headers={"Retry-After": str(wait)},
        )
        return await _failed(request, session, csrf, details, token, problem)
    user = await acceptance.authenticate_invitee(session, passwords, details, password)
    if user is None:
        problem = Problem("The password is not correct for this email.", status=400)
        return await _failed(request, session, csrf, details, token, problem)
    await attempt.succeeded()
    try:
        result = await acceptance.accept_opened(session, details, user)
    except Problem as problem:
        return await _failed(request, session, csrf, details, token, problem)
    return _accepted(request, result)


@router.post("/accept/new-account", response_class=HTMLResponse)
async def create_account_and_accept(
    request: Request,
    session: DbSession,
    csrf: AcceptPageCsrf,
    passwords: AppPasswords,
    token: FormField = "",
    csrf_token: FormField = "",
    full_name: FormField = "",
    password: FormField = "",
) -> HTMLResponse:
    details = await _open_for_post(request, session, csrf, token, csrf_token)
    if isinstance(details, HTMLResponse):
        return details
    try:
        form = InvitationAcceptNewUser(token=token, full_name=full_name, password=password)
    except ValidationError as exc:
        message = " ".join(_friendly(error) for error in exc.errors())
        problem = Problem(message, status=422)
        return await _failed(request, session, csrf, details, token, problem, full_name=full_name)
    try:
        result = await acceptance.accept_opened_as_new_user(
            session, details, full_name=form.full_name, password=form.password, passwords=passwords
        )
    except Problem as problem:
        return await _failed(request, session, csrf, details, token, problem, full_name=full_name)
    return _accepted(request, result)
