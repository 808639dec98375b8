"""Roles and the permission matrix of DESIGN.md, as data. Every authorisation check reads it."""

from __future__ import annotations

from enum import StrEnum


class TenantRole(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"


class ProjectRole(StrEnum):
    OWNER = "owner"
    EDITOR = "editor"
    VIEWER = "viewer"


class TenantAction(StrEnum):
    READ = "read the tenant and its member list"
    MANAGE = "rename the tenant, manage service clients, read the audit log"
    DELETE = "delete the tenant"
    EXPORT = "export the tenant's data"
    MANAGE_MEMBERS = "invite to the tenant; change or remove members"
    CREATE_PROJECT = "create a project"
    SEE_ALL_PROJECTS = "see every project of the tenant"


class ProjectAction(StrEnum):
    READ = "read the project, its members and tasks"
    EDIT = "edit the project; create, edit and delete tasks"
    MANAGE = "delete the project; invite to it; change or remove its members"


_ALL_TENANT_ROLES = frozenset(TenantRole)
_OWNER_AND_ADMIN = frozenset({TenantRole.OWNER, TenantRole.ADMIN})

TENANT_PERMISSIONS: dict[TenantAction, frozenset[TenantRole]] = {
    TenantAction.READ: _ALL_TENANT_ROLES,
    TenantAction.MANAGE: _OWNER_AND_ADMIN,
    TenantAction.DELETE: frozenset({TenantRole.OWNER}),
    TenantAction.EXPORT: frozenset({TenantRole.OWNER}),
    # Admins hold this too, but never over owners nor to make owners: see may_assign_role.
    TenantAction.MANAGE_MEMBERS: _OWNER_AND_ADMIN,
    TenantAction.CREATE_PROJECT: frozenset({TenantRole.OWNER, TenantRole.ADMIN, TenantRole.MEMBER}),
    TenantAction.SEE_ALL_PROJECTS: _OWNER_AND_ADMIN,
}

PROJECT_PERMISSIONS: dict[ProjectAction, frozenset[ProjectRole]] = {
    ProjectAction.READ: frozenset(ProjectRole),
    ProjectAction.EDIT: frozenset({ProjectRole.OWNER, ProjectRole.EDITOR}),
    ProjectAction.MANAGE: frozenset({ProjectRole.OWNER}),
}

# A service client holds a tenant role and acts on every project of its tenant accordingly.
CLIENT_PROJECT_ROLE: dict[TenantRole, ProjectRole] = {
    TenantRole.ADMIN: ProjectRole.OWNER,
    TenantRole.MEMBER: ProjectRole.EDITOR,
    TenantRole.VIEWER: ProjectRole.VIEWER,
}


def tenant_allows(role: TenantRole, action: TenantAction) -> bool:
    return role in TENANT_PERMISSIONS[action]


def project_allows(role: ProjectRole | None, action: ProjectAction) -> bool:
    return role is not None and role in PROJECT_PERMISSIONS[action]


def effective_project_role(
    tenant_role: TenantRole, project_role: ProjectRole | None
) -> ProjectRole | None:
    """Tenant owners and admins own every project; a tenant viewer is capped at viewer."""
    if tenant_role in _OWNER_AND_ADMIN:
        return ProjectRole.OWNER
    if project_role is None:
        return None
    if tenant_role is TenantRole.VIEWER:
        return ProjectRole.VIEWER
    return project_role


# Strongest first, as `TenantRole` declares them.
_TENANT_ROLE_STRENGTH = {role: -rank for rank, role in enumerate(TenantRole)}


def role_within(role: TenantRole, cap: TenantRole) -> bool:
    """Whether `role` is `cap` or weaker (an API key's role against its creator's)."""
    return _TENANT_ROLE_STRENGTH[role] <= _TENANT_ROLE_STRENGTH[cap]


def weaker_role(first: TenantRole, second: TenantRole) -> TenantRole:
    return first if role_within(first, second) else second


def may_assign_role(
    actor_role: TenantRole, current_role: TenantRole | None, new_role: TenantRole | None
) -> bool:
    """Whether the actor may set someone's tenant role (None: remove or not yet a member).

    Owners may do anything; admins may manage everyone but owners and may not make owners.
    """
    if actor_role is TenantRole.OWNER:
        return True
    if not tenant_allows(actor_role, TenantAction.MANAGE_MEMBERS):
        return False
    return TenantRole.OWNER not in (current_role, new_role)
