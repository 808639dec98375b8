"""Users endpoints (GET and PATCH /users/me are the tenants layer's: they include memberships).

Thin: parse, authorise through dependencies, throttle, call the service.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from backend.core.audit import Actor
from backend.core.database import DbSession
from backend.core.dependencies import AppMailer, AppSettings, client_address
from backend.core.errors import Forbidden, TooManyRequests
from backend.core.ids import parse_uuid
from backend.identity import pages, service
from backend.identity.accounts import normalise_email
from backend.identity.dependencies import AppPasswords, CurrentPrincipal, CurrentUser
from backend.identity.oauth2.router import router as oauth_router
from backend.identity.schemas import (
    Accepted,
    EmailVerification,
    PasswordChange,
    PasswordResetConfirmation,
    PasswordResetRequest,
    SignUp,
    UserRead,
)
from backend.identity.sign_in_throttle import SignInThrottle

users_router = APIRouter(prefix="/api/v1/users", tags=["users"])


async def _throttle(request: Request, *keys: str) -> None:
    _refuse_when_throttled(await request.app.state.login_throttle.hit(*keys))


def _refuse_when_throttled(wait: int | None) -> None:
    if wait is not None:
        raise TooManyRequests("Too many attempts; retry later.", headers={"Retry-After": str(wait)})


@users_router.post("", status_code=status.HTTP_201_CREATED, response_model=UserRead)
async def sign_up(
    data: SignUp,
    request: Request,
    session: DbSession,
    settings: AppSettings,
    passwords: AppPasswords,
    mailer: AppMailer,
) -> UserRead:
    """Create an account and mail a link that verifies the email address."""
    if not settings.allow_signup:
        raise Forbidden("Sign-up is closed on this server.")
    await _throttle(request, f"signup:ip:{client_address(request)}")
    user = await service.sign_up(session, passwords, settings, mailer, data)
    return UserRead.model_validate(user)


@users_router.post("/verify-email", status_code=status.HTTP_204_NO_CONTENT)
async def verify_email(data: EmailVerification, session: DbSession) -> Response:
    await service.verify_email(session, data.token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@users_router.post(
    service.VERIFICATION_MAIL_ENDPOINT.removeprefix(users_router.prefix),
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
)
async def resend_verification_mail(
    request: Request,
    user: CurrentUser,
    session: DbSession,
    settings: AppSettings,
    mailer: AppMailer,
) -> Accepted:
    """Mail a new link that verifies the account's email address (sending invitations needs
    it)."""
    if user.email_verified_at is not None:
        return Accepted(detail="Your email address is verified already.")
    await _throttle(request, f"verification:account:{user.id}")
    service.send_verification_mail(session, settings, mailer, user)
    return Accepted(detail=f"A verification link is on its way to {user.email}.")


@users_router.post("/password-reset", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
async def request_password_reset(
    data: PasswordResetRequest,
    request: Request,
    session: DbSession,
    settings: AppSettings,
    mailer: AppMailer,
) -> Accepted:
    """Always 202: whether the account exists is not told, and the mail leaves after the answer."""
    email = normalise_email(data.email)
    await _throttle(request, f"reset:account:{email}", f"reset:ip:{client_address(request)}")
    await service.request_password_reset(session, settings, mailer, email)
    return Accepted(detail="If an account has this email, a reset link is on its way.")


@users_router.post("/password-reset/confirm", status_code=status.HTTP_204_NO_CONTENT)
async def confirm_password_reset(
    data: PasswordResetConfirmation, session: DbSession, passwords: AppPasswords
) -> Response:
    """Set the new password and sign the account out everywhere."""
    await service.confirm_password_reset(session, passwords, data.token, data.new_password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@users_router.post("/me/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(
    data: PasswordChange,
    request: Request,
    principal: CurrentPrincipal,
    user: CurrentUser,
    session: DbSession,
    passwords: AppPasswords,
) -> Response:
    """Needs the current password; ends every other sign-in session (this one stays)."""
    # Counted like a sign-in, so that a stolen access token cannot guess passwords faster.
    throttle: SignInThrottle = request.app.state.sign_in_throttle
    attempt = await throttle.begin(user.email, client_address(request))
    _refuse_when_throttled(attempt.retry_after)
    await service.change_password(
        session,
        passwords,
        user,
        data.current_password,
        data.new_password,
        keep_session=parse_uuid(principal.claims.session_id),
    )
    await attempt.succeeded()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@users_router.post("/me/sessions/revoke", status_code=status.HTTP_204_NO_CONTENT)
async def log_out_everywhere(user: CurrentUser, session: DbSession) -> Response:
    """End every refresh token and every access token of the account, this one included."""
    await service.log_out_everywhere(session, user, actor=Actor(user_id=user.id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


router = APIRouter()
router.include_router(users_router)
router.include_router(oauth_router)
router.include_router(pages.router)
