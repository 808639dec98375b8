"""What each kind of admin may do in the panel, as data.

Superusers (the platform view) may do everything a view offers. Tenant owners and admins (the
tenant view) get the grants below, and only inside their tenant: what rows they reach is decided
by the tenant context of their sessions, not here. A view missing from the table (users, OAuth
clients, refresh tokens, platform audit events) is for superusers only.

Tenant admins see users only as members: email and name on their tenant's memberships, project
members and invitations. They may change a member's role or remove a member (never an owner,
unless they are an owner themselves; never the last owner), but not add one: people join
through invitations, which keeps every other account's email out of their reach.
"""

from __future__ import annotations

from sqladmin.authorization import Action, GrantsAuthorizationBackend, custom_action
from starlette.requests import Request

from admin.scoping import AdminScope

PICKER = "tenant-picker"
READ = frozenset({Action.LIST, Action.DETAILS, Action.EXPORT})
WRITE = READ | {Action.CREATE, Action.EDIT, Action.DELETE}

TENANT_ADMIN_GRANTS: dict[str, frozenset[str]] = {
    "tenant": READ,
    "membership": READ | {Action.EDIT, Action.DELETE},
    "project": WRITE | {custom_action("restore")},
    "project-member": WRITE,
    "task": WRITE | {custom_action("restore")},
    "invitation": READ | {custom_action("resend"), custom_action("revoke")},
    "api-key": READ | {custom_action("revoke")},
    "audit-event": READ,
    PICKER: frozenset({Action.LIST}),
}


def grants_for(scope: AdminScope | None) -> set[tuple[str, str]]:
    if scope is None:
        return set()
    if scope.platform:
        return {("*", "*")}
    if not scope.chosen:
        return {(PICKER, Action.LIST)}
    return {(view, action) for view, actions in TENANT_ADMIN_GRANTS.items() for action in actions}


class ScopeGrants(GrantsAuthorizationBackend):
    async def get_grants(self, request: Request) -> set[tuple[str, str]]:
        return grants_for(getattr(request.state, "admin_scope", None))
