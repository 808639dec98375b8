"""Views of the tenancy layer: tenants, memberships, invitations, personal API keys, tenant audit
events.

Every write calls the tenants or invitations service the API calls, with the admin as the caller
(`admin.callers`), so that the same rules decide (the matrix, the last owner, admins never over
owners, invitation status changes) and the same events are audited.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqladmin import action
from sqlalchemy import ColumnElement, exists, true
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from wtforms import validators

from admin.base import AdminView, AdminWriteRefused, ReadOnlyView, person
from admin.callers import tenant_caller
from admin.filters import enum_filter
from admin.pickers import TENANT
from admin.scoping import AdminScope, current_scope, enter_row_tenant
from backend.api_keys import service as api_keys
from backend.core.ids import parse_uuid
from backend.identity.models import ApiKey, User
from backend.invitations import service as invitations
from backend.invitations.models import Invitation, InvitationStatus
from tenants import lifecycle
from tenants import service as tenancy
from tenants.models import AuditEvent, Membership, Tenant, TenantStatus
from tenants.roles import TenantRole
from tenants.schemas import SLUG_PATTERN

TENANCY = "Tenancy"


def _email(user: User | None) -> str:
    return user.email if user else ""


class TenantAdmin(AdminView, model=Tenant):
    name = "Tenant"
    icon = "fa-solid fa-building"
    category = TENANCY
    can_delete = False  # suspend instead; deleting is the owner's, through the API
    column_list = [Tenant.name, Tenant.slug, Tenant.status, Tenant.created_at]
    column_details_list = [
        Tenant.id,
        Tenant.name,
        Tenant.slug,
        Tenant.status,
        Tenant.purge_after,
        Tenant.created_at,
    ]
    column_labels = {Tenant.purge_after: "purged after"}
    column_searchable_list = [Tenant.name, Tenant.slug]
    column_sortable_list = [Tenant.name, Tenant.slug, Tenant.status, Tenant.created_at]
    column_default_sort = [(Tenant.name, False)]
    column_filters = [enum_filter(Tenant.status, TenantStatus)]
    form_columns = [Tenant.name, Tenant.slug]
    form_args = {"slug": {"validators": [validators.Regexp(SLUG_PATTERN)]}}

    def scope_criteria(self, scope: AdminScope) -> tuple[ColumnElement[bool], ...]:
        # `tenants` is a global table: no tenant context filters it, this does.
        return () if scope.platform else (Tenant.id == scope.tenant_id,)

    def tenant_of(self, obj: Any) -> uuid.UUID | None:
        tenant_id: uuid.UUID = obj.id
        return tenant_id

    def tenant_of_identifier(self, identifier: str) -> uuid.UUID | None:
        tenant_id = parse_uuid(identifier)
        if tenant_id is None:
            raise HTTPException(status_code=404)
        return tenant_id

    async def create_row(
        self, session: AsyncSession, scope: AdminScope, data: dict[str, Any]
    ) -> Any:
        # Created empty: the platform admin does not become its owner; owners join after.
        return await tenancy.create_tenant(
            session, scope.actor, data["name"], data["slug"], owner_id=None
        )

    async def update_row(
        self, session: AsyncSession, scope: AdminScope, obj: Any, data: dict[str, Any]
    ) -> None:
        caller = await tenant_caller(session, scope, obj.id)
        await tenancy.update_tenant(session, caller, name=data.get("name"), slug=data.get("slug"))

    async def suspend_row(self, session: AsyncSession, scope: AdminScope, tenant: Tenant) -> None:
        await tenancy.set_tenant_status(session, tenant.id, TenantStatus.SUSPENDED, scope.actor)

    async def reactivate_row(
        self, session: AsyncSession, scope: AdminScope, tenant: Tenant
    ) -> None:
        await tenancy.set_tenant_status(session, tenant.id, TenantStatus.ACTIVE, scope.actor)

    @action("suspend", "Suspend", "Suspend? Its members' API calls will get 403.")
    async def suspend(self, request: Request) -> Response:
        return await self.run_action(request, self.suspend_row)

    @action("reactivate", "Reactivate", "Reactivate? Its API opens again.")
    async def reactivate(self, request: Request) -> Response:
        return await self.run_action(request, self.reactivate_row)

    async def restore_row(self, session: AsyncSession, scope: AdminScope, tenant: Tenant) -> None:
        await lifecycle.restore_tenant(session, await tenant_caller(session, scope, tenant.id))

    async def purge_row(self, session: AsyncSession, scope: AdminScope, tenant: Tenant) -> None:
        await lifecycle.purge_tenant_now(session, await tenant_caller(session, scope, tenant.id))

    @action("restore", "Restore", "Cancel the deletion? The tenant is active again.")
    async def restore(self, request: Request) -> Response:
        return await self.run_action(request, self.restore_row)

    @action("purge", "Purge now", "Purge now? Every row of the tenant goes, for good.")
    async def purge(self, request: Request) -> Response:
        return await self.run_action(request, self.purge_row, removes=True)


def members_only(request: Request, term: str) -> ColumnElement[bool]:
    """The user look-up of the membership form: in the tenant view, the tenant's members only
    (the subquery on memberships is scoped by the session like any other)."""
    if current_scope().platform:
        return true()
    return exists().where(Membership.user_id == User.id)


class MembershipAdmin(AdminView, model=Membership):
    name = "Membership"
    icon = "fa-solid fa-id-badge"
    category = TENANCY
    column_list = [Membership.user, Membership.role, Membership.tenant, Membership.created_at]
    column_details_list = [
        Membership.tenant,
        Membership.user,
        Membership.role,
        Membership.created_at,
    ]
    column_formatters = {
        Membership.user: lambda m, _: _email(m.user),
        Membership.tenant: lambda m, _: m.tenant.name,
    }
    column_formatters_detail = column_formatters
    non_link_related_fields = [Membership.user]
    column_searchable_list = ["user.email", "user.full_name"]
    # Sorts only an index serves: a tenant may have a hundred thousand members.
    column_sortable_list = [Membership.created_at]
    column_labels = {"user.email": "email", "user.full_name": "name"}
    column_default_sort = [(Membership.created_at, True)]
    column_filters = [enum_filter(Membership.role, TenantRole)]
    column_export_list = [
        Membership.tenant_id,
        Membership.user_id,
        Membership.role,
        Membership.created_at,
    ]
    form_columns = [Membership.user, Membership.role]
    form_ajax_refs = {
        "user": {"fields": ("email", "full_name"), "order_by": "email", "where": members_only}
    }
    form_pickers = {"tenant_id": TENANT}
    form_create_rules = ["tenant_id", "user", "role"]
    form_edit_rules = ["role"]

    async def create_row(
        self, session: AsyncSession, scope: AdminScope, data: dict[str, Any]
    ) -> Any:
        user_id = parse_uuid(data.get("user"))
        if user_id is None:
            raise AdminWriteRefused("Pick a user.")
        caller = await tenant_caller(session, scope, data["tenant_id"])
        return await tenancy.grant_membership(session, caller, user_id, TenantRole(data["role"]))

    async def update_row(
        self, session: AsyncSession, scope: AdminScope, obj: Any, data: dict[str, Any]
    ) -> None:
        caller = await tenant_caller(session, scope, obj.tenant_id)
        await tenancy.change_member_role(session, caller, obj.user_id, TenantRole(data["role"]))

    async def delete_row(self, session: AsyncSession, scope: AdminScope, obj: Any) -> None:
        caller = await tenant_caller(session, scope, obj.tenant_id)
        await tenancy.remove_member(session, caller, obj.user_id)


class InvitationAdmin(ReadOnlyView, model=Invitation):
    name = "Invitation"
    icon = "fa-solid fa-envelope"
    category = TENANCY
    column_list = [
        Invitation.email,
        Invitation.role,
        Invitation.project,
        Invitation.project_role,
        Invitation.status,
        Invitation.expires_at,
        Invitation.created_at,
    ]
    column_details_list = [
        Invitation.id,
        Invitation.tenant,
        Invitation.email,
        Invitation.role,
        Invitation.project,
        Invitation.project_role,
        Invitation.status,
        Invitation.invited_by,
        Invitation.expires_at,
        Invitation.accepted_at,
        Invitation.accepted_by,
        Invitation.created_at,
    ]
    # A pending invitation past its expiry shows as expired, as the API shows it.
    column_formatters = {
        Invitation.status: lambda i, _: i.current_status.value,
        Invitation.project: lambda i, _: i.project.name if i.project else "",
    }
    column_formatters_detail = {
        **column_formatters,
        Invitation.tenant: lambda i, _: i.tenant.name,
        Invitation.invited_by: person("inviter", "invited_by"),
        Invitation.accepted_by: person("accepter", "accepted_by"),
    }
    column_labels = {Invitation.invited_by: "inviter", Invitation.accepted_by: "accepted by"}
    details_loads = (Invitation.inviter, Invitation.accepter)
    column_export_list = [  # ids, as before: exports are data, not pages
        Invitation.email,
        Invitation.role,
        Invitation.project_id,
        Invitation.project_role,
        Invitation.status,
        Invitation.expires_at,
        Invitation.created_at,
    ]
    column_searchable_list = [Invitation.email]
    column_sortable_list = [Invitation.email, Invitation.status, Invitation.expires_at]
    column_default_sort = [(Invitation.created_at, True)]
    column_filters = [
        enum_filter(Invitation.status, InvitationStatus),
        enum_filter(Invitation.role, TenantRole),
    ]

    async def resend_row(
        self, session: AsyncSession, scope: AdminScope, invitation: Invitation
    ) -> None:
        state = self.main_app.state
        caller = await tenant_caller(session, scope, invitation.tenant_id)
        await invitations.resend_invitation(
            session,
            caller,
            invitation.id,
            mailer=state.mailer,
            settings=state.settings,
            limits=state.invitation_limits,
        )

    async def revoke_row(
        self, session: AsyncSession, scope: AdminScope, invitation: Invitation
    ) -> None:
        caller = await tenant_caller(session, scope, invitation.tenant_id)
        await invitations.revoke_invitation(session, caller, invitation.id)

    @action("resend", "Resend", "Mail a new link? The old one stops working.")
    async def resend(self, request: Request) -> Response:
        return await self.run_action(request, self.resend_row)

    @action("revoke", "Revoke", "Revoke? Its link stops working for good.")
    async def revoke(self, request: Request) -> Response:
        return await self.run_action(request, self.revoke_row)


class ApiKeyAdmin(ReadOnlyView, model=ApiKey):
    """Personal API keys acting in the tenant (a global table: scoped here, by its tenant
    column). Revoking one is the service's decision: owners and admins, in their tenant."""

    name = "API key"
    icon = "fa-solid fa-key"
    category = TENANCY
    column_list = [
        ApiKey.name,
        ApiKey.prefix,
        ApiKey.user_id,
        ApiKey.role,
        ApiKey.expires_at,
        ApiKey.last_used_at,
        ApiKey.revoked_at,
    ]
    column_details_list = [ApiKey.id, ApiKey.scope_tenant_id, *column_list, ApiKey.created_at]
    column_formatters = {ApiKey.user_id: person("user", "user_id")}
    column_formatters_detail = column_formatters
    column_labels = {ApiKey.user_id: "user", ApiKey.scope_tenant_id: "tenant"}
    list_loads = (ApiKey.user,)
    details_loads = (ApiKey.user,)
    column_export_list = [ApiKey.id, ApiKey.scope_tenant_id, *column_list, ApiKey.created_at]
    column_searchable_list = [ApiKey.name, ApiKey.prefix]
    column_sortable_list = [ApiKey.created_at, ApiKey.expires_at, ApiKey.last_used_at]
    column_default_sort = [(ApiKey.created_at, True)]

    def scope_criteria(self, scope: AdminScope) -> tuple[ColumnElement[bool], ...]:
        return () if scope.platform else (ApiKey.scope_tenant_id == scope.tenant_id,)

    def tenant_of(self, obj: Any) -> uuid.UUID | None:
        tenant_id: uuid.UUID = obj.scope_tenant_id
        return tenant_id

    async def revoke_row(self, session: AsyncSession, scope: AdminScope, key: ApiKey) -> None:
        await enter_row_tenant(session, scope, key.scope_tenant_id)
        caller = await tenant_caller(session, scope, key.scope_tenant_id)
        await api_keys.revoke_tenant_api_key(session, caller, key.id)

    @action("revoke", "Revoke", "Revoke? Whatever uses it gets 401 from its next request.")
    async def revoke(self, request: Request) -> Response:
        return await self.run_action(request, self.revoke_row)


class AuditEventAdmin(ReadOnlyView, model=AuditEvent):
    name = "Audit event"
    icon = "fa-solid fa-clipboard-list"
    category = TENANCY
    column_list = [
        AuditEvent.created_at,
        AuditEvent.action,
        AuditEvent.target_type,
        AuditEvent.target_id,
        AuditEvent.actor_user_id,
        AuditEvent.actor_client_id,
    ]
    column_details_list = [
        AuditEvent.id,
        AuditEvent.tenant,
        *column_list,
        AuditEvent.data,
    ]
    column_formatters = {AuditEvent.actor_user_id: person("actor", "actor_user_id")}
    column_formatters_detail = {**column_formatters, AuditEvent.tenant: lambda e, _: e.tenant.name}
    column_labels = {AuditEvent.actor_user_id: "actor", AuditEvent.actor_client_id: "client"}
    list_loads = (AuditEvent.actor,)
    details_loads = (AuditEvent.actor,)
    column_searchable_list = [AuditEvent.action, AuditEvent.target_id]
    column_sortable_list = [AuditEvent.created_at, AuditEvent.action]
    column_default_sort = [(AuditEvent.created_at, True)]
