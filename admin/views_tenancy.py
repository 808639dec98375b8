"""Views of the tenancy layer: tenants, memberships, invitations, tenant audit events.

Writes go through the tenants and invitations services, so that their rules (the last owner,
admins never over owners, invitation status changes) hold in the panel as in the API.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqladmin import action
from sqlalchemy import ColumnElement, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from wtforms import validators

from admin.base import AdminView, AdminWriteRefused, ReadOnlyView, person
from admin.filters import enum_filter
from admin.pickers import TENANT, optional_uuid
from admin.scoping import AdminScope, current_scope, enter_row_tenant
from backend.identity.dependencies import Principal
from backend.identity.keys import AccessTokenClaims
from backend.identity.models import User
from backend.invitations import service as invitations
from backend.invitations.models import Invitation, InvitationStatus
from tenants import service as tenancy
from tenants.dependencies import TenantAccessContext
from tenants.models import AuditEvent, Membership, Tenant, TenantStatus
from tenants.roles import TenantRole, may_assign_role
from tenants.schemas import SLUG_PATTERN

TENANCY = "Tenancy"
ADMIN_PANEL_CLIENT = "admin-panel"


def _email(user: User | None) -> str:
    return user.email if user else ""


async def admin_access(
    session: AsyncSession, scope: AdminScope, tenant_id: uuid.UUID
) -> TenantAccessContext:
    """The admin's standing in a tenant, in the shape the tenants services take.

    A superuser acts as an owner; a tenant admin with their own role. There is no access token
    behind a panel session, so the claims only name the admin and the panel.
    """
    tenant = await session.get(Tenant, tenant_id)
    user = await session.get(User, scope.user_id)
    if tenant is None or user is None:
        raise HTTPException(status_code=404)
    claims = AccessTokenClaims(
        subject=str(scope.user_id),
        client_id=ADMIN_PANEL_CLIENT,
        jwt_id="",
        issued_at=0,
        expires_at=0,
        tenant_id=None,
        scope="",
    )
    role = TenantRole.OWNER if scope.platform else scope.role
    if role is None:
        raise HTTPException(status_code=403)
    return TenantAccessContext(
        tenant=tenant, principal=Principal(claims=claims, user=user), role=role
    )


class TenantAdmin(AdminView, model=Tenant):
    name = "Tenant"
    icon = "fa-solid fa-building"
    category = TENANCY
    can_delete = False  # suspend instead; deleting is the owner's, through the API
    column_list = [Tenant.name, Tenant.slug, Tenant.status, Tenant.created_at]
    column_details_list = [Tenant.id, Tenant.name, Tenant.slug, Tenant.status, Tenant.created_at]
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
        return obj.id

    def tenant_of_identifier(self, identifier: str) -> uuid.UUID | None:
        try:
            return optional_uuid(identifier)
        except ValueError as exc:
            raise HTTPException(status_code=404) from exc

    async def create_row(self, session: AsyncSession, scope: AdminScope, data: dict) -> Any:
        tenant = Tenant(id=uuid.uuid4(), name=data["name"], slug=data["slug"])
        await enter_row_tenant(session, scope, tenant.id)  # its audit log is its own
        session.add(tenant)
        await session.flush()
        await self.audit(
            session, scope, "created", tenant, {"name": tenant.name, "slug": tenant.slug}
        )
        return tenant

    async def _set_status(self, request: Request, status: TenantStatus) -> Response:
        async def apply(session: AsyncSession, scope: AdminScope, tenant: Tenant) -> None:
            await tenancy.set_tenant_status(session, tenant.id, status, scope.actor)

        return await self.run_action(request, apply)

    @action("suspend", "Suspend", "Suspend? Its members' API calls will get 403.")
    async def suspend(self, request: Request) -> Response:
        return await self._set_status(request, TenantStatus.SUSPENDED)

    @action("reactivate", "Reactivate", "Reactivate? Its API opens again.")
    async def reactivate(self, request: Request) -> Response:
        return await self._set_status(request, TenantStatus.ACTIVE)


def members_only(request: Request, term: str) -> ColumnElement[bool]:
    """The user look-up of the membership form: in the tenant view, the tenant's members only
    (the subquery on memberships is scoped by the session like any other)."""
    if current_scope().platform:
        return true()
    return User.id.in_(select(Membership.user_id))


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
    column_sortable_list = [Membership.role, Membership.created_at, "user.email"]
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

    def audit_target_id(self, obj: Any) -> object:
        return obj.user_id

    async def create_row(self, session: AsyncSession, scope: AdminScope, data: dict) -> Any:
        user_id = optional_uuid(data.get("user"))
        if user_id is None or await session.get(User, user_id) is None:
            raise AdminWriteRefused("Pick a user.")
        role = TenantRole(data["role"])
        return await tenancy.add_member(session, data["tenant_id"], user_id, role, scope.actor)

    async def update_row(
        self, session: AsyncSession, scope: AdminScope, obj: Any, data: dict
    ) -> None:
        access = await admin_access(session, scope, obj.tenant_id)
        await tenancy.change_member_role(session, access, obj.user_id, TenantRole(data["role"]))

    async def delete_row(self, session: AsyncSession, scope: AdminScope, obj: Any) -> None:
        access = await admin_access(session, scope, obj.tenant_id)
        await tenancy.remove_member(session, access, obj.user_id)


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

    def _manageable(self, scope: AdminScope, invitation: Invitation) -> None:
        # The invitations service's rule for the API: admins never manage owner invitations.
        if not scope.platform and not may_assign_role(scope.role, None, invitation.role):
            raise AdminWriteRefused(f"Your role ({scope.role}) may not manage owner invitations.")

    @action("resend", "Resend", "Mail a new link? The old one stops working.")
    async def resend(self, request: Request) -> Response:
        state = self._admin_ref.main_app.state

        async def apply(session: AsyncSession, scope: AdminScope, invitation: Invitation) -> None:
            self._manageable(scope, invitation)
            await invitations.resend_invitation(
                session, invitation, actor=scope.actor, mailer=state.mailer, settings=state.settings
            )

        return await self.run_action(request, apply)

    @action("revoke", "Revoke", "Revoke? Its link stops working for good.")
    async def revoke(self, request: Request) -> Response:
        async def apply(session: AsyncSession, scope: AdminScope, invitation: Invitation) -> None:
            self._manageable(scope, invitation)
            await invitations.revoke_invitation(session, invitation, actor=scope.actor)

        return await self.run_action(request, apply)


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
