"""HTTP routes of the tenants layer. Thin: parse, authorise through dependencies, call services."""

from __future__ import annotations

from fastapi import APIRouter

from backend.core.database import DbSession
from backend.identity.dependencies import CurrentUser
from tenants import service
from tenants.schemas import UserWithMemberships

account_router = APIRouter(prefix="/api/v1/users", tags=["users"])


@account_router.get("/me", response_model=UserWithMemberships)
async def read_me(user: CurrentUser, session: DbSession) -> UserWithMemberships:
    memberships = await service.memberships_of_user(session, user.id)
    return UserWithMemberships(
        id=user.id,
        email=user.email,
        full_name=user.full_name,
        is_superuser=user.is_superuser,
        email_verified_at=user.email_verified_at,
        created_at=user.created_at,
        memberships=memberships,
    )
