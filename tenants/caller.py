"""`TenantCaller`: who acts in a tenant, whoever asks (the API, the admin panel, a script).

A plain value: the tenant, the caller's role in it, the user or the service client, and the
actor the audit log names. The API builds one from a verified access token (`tenants.access`);
the admin panel from its session (`admin.callers`). Services take it and decide from it, with
the matrix of `tenants.roles`; they never see a token or a request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from backend.core.audit import Actor
from backend.core.errors import Forbidden
from backend.identity.models import OAuthClient, User
from backend.identity.service import VERIFICATION_MAIL_ENDPOINT
from tenants.models import Tenant
from tenants.roles import (
    CLIENT_PROJECT_ROLE,
    ProjectRole,
    TenantAction,
    TenantRole,
    effective_project_role,
    tenant_allows,
)


@dataclass(frozen=True)
class TenantCaller:
    tenant: Tenant
    role: TenantRole
    user: User | None = None
    client: OAuthClient | None = None
    # A platform admin acting in the tenant (the admin panel): holds the owner role without
    # being a member, and never becomes one by acting (a project they create has no owner).
    platform: bool = False
    # The personal API key the user acts through, if any: its role already caps `role`.
    api_key_id: uuid.UUID | None = None

    def __post_init__(self) -> None:
        if (self.user is None) == (self.client is None):
            raise ValueError("a tenant caller is either a user or a service client")

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.tenant.id

    @property
    def user_id(self) -> uuid.UUID | None:
        return self.user.id if self.user is not None else None

    @property
    def is_service_client(self) -> bool:
        return self.client is not None

    @property
    def actor(self) -> Actor:
        return Actor(
            user_id=self.user_id,
            client_id=self.client.client_id if self.client is not None else None,
        )

    def can(self, action: TenantAction) -> bool:
        return tenant_allows(self.role, action)

    def require(self, action: TenantAction) -> None:
        """403 unless the caller's role may `action` (the caller is known to be in the tenant)."""
        if not self.can(action):
            raise Forbidden(f"Your role ({self.role}) may not {action.value}.")

    def require_verified_email(self, doing: str) -> None:
        """403, saying how to verify, for a person whose email address is unverified. Service
        clients act on the authority of the verified person who created them; platform admins
        are trusted operators."""
        if self.user is None or self.platform or self.user.email_verified_at is not None:
            return
        raise Forbidden(
            f"Verify your email address before {doing}: open the link mailed to "
            f"{self.user.email}, or have a new one sent with POST {VERIFICATION_MAIL_ENDPOINT}."
        )

    @property
    def sees_all_projects(self) -> bool:
        """Tenant owners and admins see every project, and so does every service client."""
        return self.is_service_client or self.can(TenantAction.SEE_ALL_PROJECTS)

    def project_role(self, membership_role: ProjectRole | None) -> ProjectRole | None:
        """The caller's effective role on a project, from their project membership (if any)."""
        if self.is_service_client:
            return CLIENT_PROJECT_ROLE[self.role]
        return effective_project_role(self.role, membership_role)
