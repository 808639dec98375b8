"""Views of the global identity tables: superusers only (see `admin.permissions`).

Hashes and secrets are never listed (`AdminView` refuses a view that would show one).
"""

from __future__ import annotations

from typing import Any

from sqladmin import action
from sqladmin.filters import BooleanFilter
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from admin.base import AdminView, ReadOnlyView
from admin.scoping import AdminScope
from backend.identity import administration
from backend.identity.models import OAuthClient, PlatformAuditEvent, RefreshToken, User

IDENTITY = "Identity"


class UserAdmin(AdminView, model=User):
    name = "User"
    icon = "fa-solid fa-user"
    category = IDENTITY
    can_create = False  # people sign up, accept an invitation, or `tenantdesk create-superuser`
    can_delete = False  # deactivate instead: audit events and tasks keep pointing at them
    column_list = [User.email, User.full_name, User.is_active, User.is_superuser, User.created_at]
    column_details_list = [
        User.id,
        User.email,
        User.full_name,
        User.is_active,
        User.is_superuser,
        User.email_verified_at,
        User.tokens_valid_after,
        User.created_at,
    ]
    column_searchable_list = [User.email, User.full_name]
    column_sortable_list = [User.email]  # the one an index serves
    column_default_sort = [(User.email, False)]
    column_filters = [BooleanFilter(User.is_active), BooleanFilter(User.is_superuser)]
    # Shown, never edited: the app role cannot change it (column grants); promotion is
    # `tenantdesk set-superuser`, as the schema owner.
    form_columns = [User.full_name]

    async def update_row(
        self, session: AsyncSession, scope: AdminScope, obj: Any, data: dict[str, Any]
    ) -> None:
        await administration.update_user(
            session,
            scope.actor,
            obj,
            full_name=data.get("full_name") or "",
        )

    async def revoke_sessions_row(
        self, session: AsyncSession, scope: AdminScope, user: User
    ) -> None:
        await administration.revoke_user_sessions(session, scope.actor, user)

    async def deactivate_row(self, session: AsyncSession, scope: AdminScope, user: User) -> None:
        await administration.deactivate_user(session, scope.actor, user)

    async def reactivate_row(self, session: AsyncSession, scope: AdminScope, user: User) -> None:
        await administration.reactivate_user(session, scope.actor, user)

    @action("revoke-sessions", "Revoke all sessions", "End every session of this user?")
    async def revoke_sessions(self, request: Request) -> Response:
        return await self.run_action(request, self.revoke_sessions_row)

    @action("deactivate", "Deactivate", "Deactivate? They are signed out everywhere at once.")
    async def deactivate(self, request: Request) -> Response:
        return await self.run_action(request, self.deactivate_row)

    @action("reactivate", "Reactivate", "Reactivate? They may sign in again.")
    async def reactivate(self, request: Request) -> Response:
        return await self.run_action(request, self.reactivate_row)


class OAuthClientAdmin(ReadOnlyView, model=OAuthClient):
    name = "OAuth client"
    icon = "fa-solid fa-key"
    category = IDENTITY
    column_list = [
        OAuthClient.client_id,
        OAuthClient.name,
        OAuthClient.owner_tenant_id,
        OAuthClient.role,
        OAuthClient.revoked_at,
    ]
    column_details_list = [
        OAuthClient.client_id,
        OAuthClient.name,
        "is_confidential",
        OAuthClient.grant_types,
        OAuthClient.owner_tenant_id,
        OAuthClient.role,
        OAuthClient.created_by,
        OAuthClient.created_at,
        OAuthClient.revoked_at,
    ]
    column_labels = {"is_confidential": "Confidential (has a secret)"}
    column_searchable_list = [OAuthClient.client_id, OAuthClient.name]
    column_sortable_list = [OAuthClient.client_id, OAuthClient.name, OAuthClient.created_at]
    column_default_sort = [(OAuthClient.created_at, True)]


class RefreshTokenAdmin(ReadOnlyView, model=RefreshToken):
    name = "Refresh token"
    icon = "fa-solid fa-rotate"
    category = IDENTITY
    column_list = [
        RefreshToken.user_id,
        RefreshToken.client_id,
        RefreshToken.family_id,
        RefreshToken.issued_at,
        RefreshToken.expires_at,
        RefreshToken.rotated_at,
        RefreshToken.revoked_at,
    ]
    column_details_list = [RefreshToken.id, *column_list, RefreshToken.scope]
    column_searchable_list = [RefreshToken.user_id, RefreshToken.client_id]
    column_sortable_list = [RefreshToken.issued_at, RefreshToken.expires_at]
    column_default_sort = [(RefreshToken.issued_at, True)]


class PlatformAuditEventAdmin(ReadOnlyView, model=PlatformAuditEvent):
    name = "Platform audit event"
    icon = "fa-solid fa-scroll"
    category = IDENTITY
    column_list = [
        PlatformAuditEvent.created_at,
        PlatformAuditEvent.action,
        PlatformAuditEvent.target_type,
        PlatformAuditEvent.target_id,
        PlatformAuditEvent.actor_user_id,
    ]
    column_details_list = [PlatformAuditEvent.id, *column_list, PlatformAuditEvent.data]
    column_searchable_list = [PlatformAuditEvent.action, PlatformAuditEvent.target_id]
    column_sortable_list = [PlatformAuditEvent.created_at, PlatformAuditEvent.action]
    column_default_sort = [(PlatformAuditEvent.created_at, True)]
