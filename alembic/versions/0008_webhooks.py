"""webhooks: the transactional outbox, endpoints, deliveries and their attempts

Revision ID: 0008_webhooks
Revises: 0006_idempotency_keys
Create Date: 2026-12-01 04:45:51

Four tenant tables, with row-level security like every other (forced, the tenant policy, and
the owner's read policy of 0002). On PostgreSQL the app role may:

- add outbox events, hand them out (`dispatch_after` only), and delete them (the purge: their
  deliveries and attempts go with them, by the foreign keys' cascade);
- manage endpoints (not their creator nor creation time);
- add deliveries and move them along (status, attempts, next attempt, lease);
- add attempts: the delivery log is append-only for it.

The dispatcher's one look across tenants is two SECURITY DEFINER functions, owned by the schema
owner, with a fixed search_path, that return the ids of tenants with work due and nothing else.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from backend.core.app_role_grants import for_app_role

revision: str = "0008_webhooks"
down_revision: str | None = "0006_idempotency_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = ("outbox_events", "webhook_endpoints", "webhook_deliveries", "webhook_attempts")
TENANT_MATCHES = "tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid)"
APP_PRIVILEGES = {
    "outbox_events": "SELECT, INSERT, UPDATE (dispatch_after), DELETE",
    "webhook_endpoints": (
        "SELECT, INSERT, UPDATE (url, description, events, secret_encrypted, "
        "previous_secret_encrypted, previous_secret_expires_at, enabled, consecutive_failures, "
        "updated_at), DELETE"
    ),
    "webhook_deliveries": (
        "SELECT, INSERT, UPDATE (status, attempts, next_attempt_at, claimed_until, claim_token)"
    ),
    "webhook_attempts": "SELECT, INSERT",
}
FUNCTIONS = {
    "outbox_tenants_due(timestamptz)": """
CREATE FUNCTION outbox_tenants_due(p_now timestamptz)
RETURNS TABLE (tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT DISTINCT e.tenant_id FROM public.outbox_events AS e WHERE e.dispatch_after <= p_now
$$
""",
    "webhook_tenants_due(timestamptz)": """
CREATE FUNCTION webhook_tenants_due(p_now timestamptz)
RETURNS TABLE (tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT DISTINCT d.tenant_id FROM public.webhook_deliveries AS d
    WHERE d.next_attempt_at <= p_now
$$
""",
}


def _secure() -> None:
    for table in TENANT_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            f"USING ({TENANT_MATCHES}) WITH CHECK ({TENANT_MATCHES})"
        )
        op.execute(f"CREATE POLICY owner_reads ON {table} FOR SELECT TO CURRENT_USER USING (true)")
    for signature, definition in FUNCTIONS.items():
        op.execute(definition)
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
    for_app_role(
        [
            *(f"REVOKE ALL ON {table} FROM {{role}}" for table in TENANT_TABLES),
            *(f"GRANT {grants} ON {table} TO {{role}}" for table, grants in APP_PRIVILEGES.items()),
            *(f"GRANT EXECUTE ON FUNCTION {signature} TO {{role}}" for signature in FUNCTIONS),
        ]
    )


def upgrade() -> None:
    op.create_table(
        "outbox_events",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dispatch_after", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_outbox_events_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_outbox_events")),
    )
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_events_tenant_id_dispatch_after",
            ["tenant_id", "dispatch_after"],
            unique=False,
            postgresql_where=sa.text("dispatch_after IS NOT NULL"),
            sqlite_where=sa.text("dispatch_after IS NOT NULL"),
        )
        batch_op.create_index(
            "ix_outbox_events_tenant_id_occurred_at_id",
            ["tenant_id", "occurred_at", "id"],
            unique=False,
        )

    op.create_table(
        "webhook_endpoints",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("previous_secret_encrypted", sa.Text(), nullable=True),
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_webhook_endpoints_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_webhook_endpoints_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_webhook_endpoints")),
    )
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_endpoints_tenant_id_created_at_id",
            ["tenant_id", "created_at", "id"],
            unique=False,
        )

    op.create_table(
        "webhook_deliveries",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "succeeded",
                "failed",
                name="webhook_delivery_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claim_token", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "endpoint_id"],
            ["webhook_endpoints.tenant_id", "webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_tenant_id_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "event_id"],
            ["outbox_events.tenant_id", "outbox_events.id"],
            name=op.f("fk_webhook_deliveries_tenant_id_event_id_outbox_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_webhook_deliveries_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_webhook_deliveries")),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_deliveries_tenant_id_endpoint_id",
            ["tenant_id", "endpoint_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_webhook_deliveries_tenant_id_event_id", ["tenant_id", "event_id"], unique=False
        )
        batch_op.create_index(
            "ix_webhook_deliveries_tenant_id_next_attempt_at",
            ["tenant_id", "next_attempt_at"],
            unique=False,
            postgresql_where=sa.text("next_attempt_at IS NOT NULL"),
            sqlite_where=sa.text("next_attempt_at IS NOT NULL"),
        )

    op.create_table(
        "webhook_attempts",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "delivery_id"],
            ["webhook_deliveries.tenant_id", "webhook_deliveries.id"],
            name=op.f("fk_webhook_attempts_tenant_id_delivery_id_webhook_deliveries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_webhook_attempts_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_webhook_attempts")),
    )
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_attempts_tenant_id_delivery_id", ["tenant_id", "delivery_id"], unique=False
        )
        batch_op.create_index(
            "ix_webhook_attempts_tenant_id_endpoint_id_created_at_id",
            ["tenant_id", "endpoint_id", "created_at", "id"],
            unique=False,
        )

    if op.get_bind().dialect.name == "postgresql":
        _secure()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for signature in FUNCTIONS:
            op.execute(f"DROP FUNCTION {signature}")
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_attempts_tenant_id_endpoint_id_created_at_id")
        batch_op.drop_index("ix_webhook_attempts_tenant_id_delivery_id")

    op.drop_table("webhook_attempts")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_webhook_deliveries_tenant_id_next_attempt_at",
            postgresql_where=sa.text("next_attempt_at IS NOT NULL"),
            sqlite_where=sa.text("next_attempt_at IS NOT NULL"),
        )
        batch_op.drop_index("ix_webhook_deliveries_tenant_id_event_id")
        batch_op.drop_index("ix_webhook_deliveries_tenant_id_endpoint_id")

    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_endpoints_tenant_id_created_at_id")

    op.drop_table("webhook_endpoints")
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_events_tenant_id_occurred_at_id")
        batch_op.drop_index(
            "ix_outbox_events_tenant_id_dispatch_after",
            postgresql_where=sa.text("dispatch_after IS NOT NULL"),
            sqlite_where=sa.text("dispatch_after IS NOT NULL"),
        )

    op.drop_table("outbox_events")
