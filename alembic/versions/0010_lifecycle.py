"""an erased account leaves neither its id nor its email in event data; its platform events

Revision ID: 0010_lifecycle
Revises: 0011_admin_scale

- `erase_audit_actor(user, anonymous)` (same signature, new body) also rewrites the `data` of
  every audit event, in both logs, and of every outbox event, where a JSON string equals the
  account's id or email (case aside): it becomes the anonymous id, and the object holding it
  loses its `full_name` (a member as the API shows it). The account's own `user.updated` events
  lose the name they recorded. It reads the email from `users`, so it runs before the row is
  deleted. The idempotency keys it sent with its personal API keys go with those it sent
  itself (their stored answers are its requests'). The schema owner gets an UPDATE policy on `outbox_events` for it, as on
  `audit_events` (0006).
- `scrub_erased(data, erased, by)`: that rewrite, a pure function the above calls.
- `actor_platform_audit_events(user)`: the platform audit events an account acted in, for its
  export (the app role may only insert into that log).

Create Date: 2026-12-01 07:55:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op
from backend.core.app_role_grants import for_app_role

revision: str = "0010_lifecycle"
down_revision: str | None = "0011_admin_scale"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCRUB = """
CREATE FUNCTION scrub_erased(p_data jsonb, p_erased text[], p_by text)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    names_them boolean;
BEGIN
    CASE jsonb_typeof(p_data)
    WHEN 'object' THEN
        -- An object that names the account by id or email describes it: its name goes too.
        names_them := EXISTS (
            SELECT 1 FROM jsonb_each(p_data) AS e
            WHERE jsonb_typeof(e.value) = 'string' AND lower(e.value #>> '{}') = ANY (p_erased)
        );
        RETURN (
            SELECT coalesce(
                jsonb_object_agg(
                    e.key,
                    CASE WHEN names_them AND e.key = 'full_name' THEN 'null'::jsonb
                    ELSE public.scrub_erased(e.value, p_erased, p_by) END
                ),
                '{}'::jsonb
            )
            FROM jsonb_each(p_data) AS e
        );
    WHEN 'array' THEN
        RETURN (
            SELECT coalesce(
                jsonb_agg(public.scrub_erased(a.value, p_erased, p_by) ORDER BY a.ordinality),
                '[]'::jsonb
            )
            FROM jsonb_array_elements(p_data) WITH ORDINALITY AS a
        );
    WHEN 'string' THEN
        IF lower(p_data #>> '{}') = ANY (p_erased) THEN
            RETURN to_jsonb(p_by);
        END IF;
        RETURN p_data;
    ELSE
        RETURN p_data;
    END CASE;
END
$$
"""
# Any JSON string in `data` that is the id or the email. `LIKE` only narrows the rows to rewrite
# (its `_` matches any character); the rewrite compares whole strings.
_SCRUB_DATA = """
    UPDATE public.{table}
        SET data = public.scrub_erased(data::jsonb, erased, p_anonymous_id::text)::json
        WHERE data::text LIKE '%' || p_user_id::text || '%'
            OR lower(data::text) LIKE '%' || lower(v_email) || '%';
"""
# Both logs, the same steps: the actor, the name in the account's own events, the target, then
# the data.
_ERASE_IN_LOG = """
    UPDATE public.{log} SET actor_user_id = NULL, anonymous_actor_id = p_anonymous_id
        WHERE actor_user_id = p_user_id;
    UPDATE public.{log} SET data = (data::jsonb - 'full_name')::json
        WHERE target_type = 'user' AND target_id = p_user_id::text;
    UPDATE public.{log} SET target_id = p_anonymous_id::text
        WHERE target_id = p_user_id::text;
"""
ERASE = f"""
CREATE OR REPLACE FUNCTION erase_audit_actor(p_user_id uuid, p_anonymous_id uuid)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_email text := (SELECT u.email FROM public.users AS u WHERE u.id = p_user_id);
    erased text[] := ARRAY[p_user_id::text, lower(v_email)];
BEGIN
    IF v_email IS NULL THEN
        RAISE EXCEPTION 'erase_audit_actor: no account %', p_user_id;
    END IF;
{_ERASE_IN_LOG.format(log="audit_events")}
{_SCRUB_DATA.format(table="audit_events")}
{_ERASE_IN_LOG.format(log="platform_audit_events")}
{_SCRUB_DATA.format(table="platform_audit_events")}
{_SCRUB_DATA.format(table="outbox_events")}
    DELETE FROM public.idempotency_keys
        WHERE principal = 'user:' || p_user_id::text
            OR principal IN (
                SELECT 'api_key:' || k.key_hash FROM public.api_keys AS k
                WHERE k.user_id = p_user_id
            );
END
$$
"""
ACTOR_PLATFORM_EVENTS = """
CREATE FUNCTION actor_platform_audit_events(p_user_id uuid)
RETURNS TABLE (
    id uuid, action varchar, target_type varchar, target_id varchar, data json,
    created_at timestamptz
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT e.id, e.action, e.target_type, e.target_id, e.data, e.created_at
    FROM public.platform_audit_events AS e WHERE e.actor_user_id = p_user_id
$$
"""
NEW_FUNCTIONS = {
    "scrub_erased(jsonb, text[], text)": SCRUB,
    "actor_platform_audit_events(uuid)": ACTOR_PLATFORM_EVENTS,
}
# Called by the app role; `scrub_erased` only by `erase_audit_actor`, as the schema owner.
APP_FUNCTIONS = ["actor_platform_audit_events(uuid)"]


def _revision_0006() -> ModuleType:
    """0006 as a module: its `ERASE` is what the downgrade restores."""
    path = Path(__file__).with_name("0006_idempotency_keys.py")
    spec = importlib.util.spec_from_file_location("revision_0006_idempotency_keys", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no functions: `backend.privacy.account` does the same writes
    for signature, definition in NEW_FUNCTIONS.items():
        op.execute(definition)
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
    # The definer function rewrites `data` as the schema owner, whom forced row-level security
    # binds on tenant tables: `audit_events` has its UPDATE policy since 0006, `outbox_events`
    # gets the same (the platform log has no row-level security).
    op.execute(
        "CREATE POLICY owner_erases ON outbox_events FOR UPDATE TO CURRENT_USER "
        "USING (true) WITH CHECK (true)"
    )
    op.execute(ERASE)
    for_app_role(
        [f"GRANT EXECUTE ON FUNCTION {signature} TO {{role}}" for signature in APP_FUNCTIONS]
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_revision_0006().ERASE.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))
    op.execute("DROP POLICY owner_erases ON outbox_events")
    for signature in NEW_FUNCTIONS:
        op.execute(f"DROP FUNCTION {signature}")
