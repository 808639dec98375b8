"""least privilege for the app role

Revision ID: 0002
Revises: 0001

PostgreSQL only (SQLite has no roles and no row-level security):

- the tenant policy reads `app.tenant_id` alone: the bypass setting the app role could flip goes;
- the schema owner (who runs this migration) may read every tenant's rows (policy
  `owner_reads`). RLS stays forced, so the app role gains nothing; the owner's reads are the
  SECURITY DEFINER functions below and the read-only platform view of the admin panel;
- cross-tenant reads are SECURITY DEFINER functions owned by the schema owner, with a fixed
  `search_path`, that the app role may only execute;
- the app role's privileges are cut to what the request path uses, down to columns: it cannot
  change `users.is_superuser`, nor insert a superuser (a policy on `users`), nor rewrite an OAuth
  client; the audit logs are append-only for it; a new table grants it nothing until its
  migration says so.

Create Date: 2026-12-01 01:45:00
"""

from collections.abc import Sequence

from alembic import op
from backend.core.app_role_grants import for_app_role

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = (
    "memberships",
    "projects",
    "project_members",
    "tasks",
    "invitations",
    "audit_events",
)
# Evaluated once per statement (the sub-select); '' (no tenant) reads as no tenant at all.
TENANT_MATCHES = "tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid)"
BYPASS_MATCHES = f"{TENANT_MATCHES} OR (SELECT current_setting('app.bypass_rls', true)) = 'on'"

# What the request path (API, admin panel, invitation pages) does, table by table. Reading is
# allowed on every column (RETURNING and WHERE need it); writing only where listed.
APP_PRIVILEGES = {
    "users": (
        "SELECT, INSERT, UPDATE (full_name, password_hash, is_active, email_verified_at, "
        "tokens_valid_after)"
    ),
    "oauth_clients": "SELECT, INSERT, UPDATE (revoked_at)",
    "refresh_tokens": "SELECT, INSERT, UPDATE (rotated_at, revoked_at)",
    "revoked_access_tokens": "SELECT, INSERT",
    "one_time_tokens": "SELECT, INSERT, UPDATE (used_at)",
    "tenants": "SELECT, INSERT, UPDATE (name, slug, status), DELETE",
    "platform_audit_events": "INSERT",
    "audit_events": "SELECT, INSERT",
    "memberships": "SELECT, INSERT, UPDATE (role), DELETE",
    "projects": "SELECT, INSERT, UPDATE (name, description, updated_at), DELETE",
    "project_members": "SELECT, INSERT, UPDATE (role), DELETE",
    "tasks": (
        "SELECT, INSERT, UPDATE (project_id, title, description, status, assignee_id, "
        "updated_at), DELETE"
    ),
    "invitations": (
        "SELECT, INSERT, UPDATE (status, token_hash, expires_at, accepted_at, accepted_by), DELETE"
    ),
}

# Cross-tenant reads (tenants.isolation.CROSS_TENANT_READS names them for the Python side).
USER_TENANTS = """
CREATE FUNCTION user_tenants(p_user_id uuid)
RETURNS TABLE (tenant_id uuid, role varchar)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT m.tenant_id, m.role FROM public.memberships AS m WHERE m.user_id = p_user_id
$$
"""
FUNCTIONS = {"user_tenants(uuid)": USER_TENANTS}


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _tenant_policies(matches: str) -> None:
    for table in TENANT_TABLES:
        op.execute(f"DROP POLICY tenant_isolation ON {table}")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} USING ({matches}) WITH CHECK ({matches})"
        )


def upgrade() -> None:
    if not _postgresql():
        return
    _tenant_policies(TENANT_MATCHES)
    for table in TENANT_TABLES:
        op.execute(f"CREATE POLICY owner_reads ON {table} FOR SELECT TO CURRENT_USER USING (true)")

    # users has no tenant, but the app role may only ever create ordinary accounts.
    op.execute("ALTER TABLE users ENABLE ROW LEVEL SECURITY")
    op.execute("CREATE POLICY app_reads ON users FOR SELECT USING (true)")
    op.execute("CREATE POLICY app_updates ON users FOR UPDATE USING (true) WITH CHECK (true)")
    op.execute("CREATE POLICY app_signs_up ON users FOR INSERT WITH CHECK (NOT is_superuser)")

    for signature, definition in FUNCTIONS.items():
        op.execute(definition)
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
    for_app_role(
        [
            "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
            "REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {role}",
            *(f"GRANT {grants} ON {table} TO {{role}}" for table, grants in APP_PRIVILEGES.items()),
            *(f"GRANT EXECUTE ON FUNCTION {signature} TO {{role}}" for signature in FUNCTIONS),
        ]
    )


def downgrade() -> None:
    if not _postgresql():
        return
    for_app_role(
        [
            "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
            "REVOKE ALL ON alembic_version FROM {role}",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
            "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}",
        ]
    )
    for signature in FUNCTIONS:
        op.execute(f"DROP FUNCTION {signature}")
    for policy in ("app_reads", "app_updates", "app_signs_up"):
        op.execute(f"DROP POLICY {policy} ON users")
    op.execute("ALTER TABLE users DISABLE ROW LEVEL SECURITY")
    for table in TENANT_TABLES:
        op.execute(f"DROP POLICY owner_reads ON {table}")
    _tenant_policies(BYPASS_MATCHES)
