"""idempotency keys; account erasure (anonymous actors in the audit logs)

Revision ID: 0006_idempotency_keys
Revises: 0009_admin_search

- `idempotency_keys`: a global table (a key may precede any tenant: creating one) whose tenant
  is `scope_tenant_id`. Row-level security shows a session the keys of its tenant and the keys
  of no tenant; the app role reads, claims, completes and releases keys, and purges them only
  through `purge_idempotency_keys(before)`, a SECURITY DEFINER function.
- The audit logs name an erased account by `anonymous_actor_id`. The app role cannot rewrite
  them (they are append-only for it): erasure goes through `erase_audit_actor(user, anonymous)`,
  and the account's events are read across tenants through `actor_audit_events(user)`.
- The app role may delete an ordinary account (erasure), never a superuser.

Create Date: 2026-12-01 05:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from backend.core.app_role_grants import for_app_role

revision: str = "0006_idempotency_keys"
down_revision: str | None = "0009_admin_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_MATCHES = (
    "scope_tenant_id IS NULL OR scope_tenant_id = "
    "(SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid)"
)
PURGE = """
CREATE FUNCTION purge_idempotency_keys(p_before timestamptz)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH purged AS (
        DELETE FROM public.idempotency_keys AS k WHERE k.created_at < p_before RETURNING 1
    )
    SELECT count(*) FROM purged
$$
"""
ACTOR_EVENTS = """
CREATE FUNCTION actor_audit_events(p_user_id uuid)
RETURNS TABLE (
    tenant_id uuid, id uuid, action varchar, target_type varchar, target_id varchar,
    data json, created_at timestamptz
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT e.tenant_id, e.id, e.action, e.target_type, e.target_id, e.data, e.created_at
    FROM public.audit_events AS e WHERE e.actor_user_id = p_user_id
$$
"""
# The account's events keep what happened and lose who: its id, as actor or as target, becomes
# the anonymous id. Its idempotency keys (stored answers) go with it.
ERASE = """
CREATE FUNCTION erase_audit_actor(p_user_id uuid, p_anonymous_id uuid)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE public.audit_events SET actor_user_id = NULL, anonymous_actor_id = p_anonymous_id
        WHERE actor_user_id = p_user_id;
    UPDATE public.audit_events SET target_id = p_anonymous_id::text
        WHERE target_id = p_user_id::text;
    UPDATE public.platform_audit_events
        SET actor_user_id = NULL, anonymous_actor_id = p_anonymous_id
        WHERE actor_user_id = p_user_id;
    UPDATE public.platform_audit_events SET target_id = p_anonymous_id::text
        WHERE target_id = p_user_id::text;
    DELETE FROM public.idempotency_keys WHERE principal = 'user:' || p_user_id::text;
END
$$
"""
FUNCTIONS = {
    "purge_idempotency_keys(timestamptz)": PURGE,
    "actor_audit_events(uuid)": ACTOR_EVENTS,
    "erase_audit_actor(uuid, uuid)": ERASE,
}
APP_PRIVILEGES = {
    "idempotency_keys": (
        "SELECT, INSERT, UPDATE (request_digest, state, locked_until, response_status, "
        "response_body, created_at), DELETE"
    ),
    "users": "DELETE",
}


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("scope_key", sa.String(length=64), nullable=False),
        sa.Column("principal", sa.String(length=100), nullable=False),
        sa.Column("scope_tenant_id", sa.Uuid(), nullable=True),
        sa.Column("request_digest", sa.String(length=64), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "running",
                "completed",
                name="idempotency_key_state",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["scope_tenant_id"],
            ["tenants.id"],
            name=op.f("fk_idempotency_keys_scope_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("scope_key", name=op.f("pk_idempotency_keys")),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index("ix_idempotency_keys_created_at", ["created_at"], unique=False)
        batch_op.create_index("ix_idempotency_keys_principal", ["principal"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_idempotency_keys_scope_tenant_id"), ["scope_tenant_id"], unique=False
        )
    for table in ("audit_events", "platform_audit_events"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("anonymous_actor_id", sa.Uuid(), nullable=True))
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY key_scope ON idempotency_keys "
        f"USING ({TENANT_MATCHES}) WITH CHECK ({TENANT_MATCHES})"
    )
    # The definer functions run as the schema owner, whom forced row-level security binds too.
    op.execute("CREATE POLICY owner_purges ON idempotency_keys TO CURRENT_USER USING (true)")
    op.execute(
        "CREATE POLICY owner_erases ON audit_events FOR UPDATE TO CURRENT_USER "
        "USING (true) WITH CHECK (true)"
    )
    op.execute("CREATE POLICY app_erases ON users FOR DELETE USING (NOT is_superuser)")
    for signature, definition in FUNCTIONS.items():
        op.execute(definition)
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
    for_app_role(
        [
            *(f"GRANT {grants} ON {table} TO {{role}}" for table, grants in APP_PRIVILEGES.items()),
            *(f"GRANT EXECUTE ON FUNCTION {signature} TO {{role}}" for signature in FUNCTIONS),
        ]
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for_app_role(["REVOKE DELETE ON users FROM {role}"])
        for signature in FUNCTIONS:
            op.execute(f"DROP FUNCTION {signature}")
        op.execute("DROP POLICY app_erases ON users")
        op.execute("DROP POLICY owner_erases ON audit_events")
    for table in ("platform_audit_events", "audit_events"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("anonymous_actor_id")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_keys_scope_tenant_id"))
        batch_op.drop_index("ix_idempotency_keys_principal")
        batch_op.drop_index("ix_idempotency_keys_created_at")
    op.drop_table("idempotency_keys")
