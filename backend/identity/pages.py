"""The browser pages behind the mailed links: /verify-email and /reset-password.

Server-rendered, no JavaScript; a failure renders a page, never JSON. The forms need no CSRF
token: their only authority is the one-time token they carry, which a forging site would need
to know already, and knowing it, could use directly.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.database import DbSession
from backend.core.errors import Problem
from backend.core.pages import FormField, PageRenderer
from backend.identity import one_time_tokens, service
from backend.identity.dependencies import AppPasswords
from backend.identity.models import OneTimePurpose
from backend.identity.password_policy import MIN_LENGTH, password_problem

router = APIRouter(include_in_schema=False)

_render = PageRenderer("no-referrer").render


def _message(request: Request, heading: str, message: str, status_code: int = 200) -> HTMLResponse:
    kind = "success" if status_code < 400 else "error"
    return _render(
        request, "account_message.html", status_code, heading=heading, message=message, kind=kind
    )


def _invalid_link(request: Request) -> HTMLResponse:
    return _message(request, "This link cannot be used", service.INVALID_LINK, 400)


async def _usable(session: AsyncSession, token: str, purpose: OneTimePurpose) -> bool:
    return bool(token) and await one_time_tokens.is_usable(session, token, purpose)


@router.get(service.VERIFY_EMAIL_PATH, response_class=HTMLResponse)
async def verify_email_page(request: Request, session: DbSession, token: str = "") -> HTMLResponse:
    if not await _usable(session, token, OneTimePurpose.EMAIL_VERIFICATION):
        return _invalid_link(request)
    return _render(request, "account_verify_email.html", token=token)


@router.post(service.VERIFY_EMAIL_PATH, response_class=HTMLResponse)
async def verify_email(request: Request, session: DbSession, token: FormField = "") -> HTMLResponse:
    try:
        await service.verify_email(session, token)
    except Problem:
        await session.rollback()
        return _invalid_link(request)
    return _message(request, "Email address confirmed", "Thank you: your address is confirmed.")


@router.get(service.RESET_PASSWORD_PATH, response_class=HTMLResponse)
async def reset_password_page(
    request: Request, session: DbSession, token: str = ""
) -> HTMLResponse:
    if not await _usable(session, token, OneTimePurpose.PASSWORD_RESET):
        return _invalid_link(request)
    return _reset_form(request, token)


def _reset_form(
    request: Request, token: str, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    return _render(
        request,
        "account_reset_password.html",
        status_code,
        token=token,
        error=error,
        password_min_length=MIN_LENGTH,
    )


@router.post(service.RESET_PASSWORD_PATH, response_class=HTMLResponse)
async def reset_password(
    request: Request,
    session: DbSession,
    passwords: AppPasswords,
    token: FormField = "",
    new_password: FormField = "",
    repeat_password: FormField = "",
) -> HTMLResponse:
    problem = password_problem(new_password)
    if problem is None and new_password != repeat_password:
        problem = "The two passwords differ."
    if problem is not None:
        return _reset_form(request, token, problem, 422)
    try:
        await service.confirm_password_reset(session, passwords, token, new_password)
    except Problem:
        await session.rollback()
        return _invalid_link(request)
    return _message(
        request,
        "Password changed",
        "Your new password is saved, and every device has been signed out. Sign in again.",
    )
