"""Personal API keys: their users create, list and revoke them; tenant owners and admins (and
platform admins, in the panel) revoke those of their tenant.

`api_keys` is a global table (a key is found before any tenant is known, `backend.identity`), so
neither the ORM filter nor RLS scopes it: every statement here names the user or the tenant.
Each write records its event in the audit log of the key's tenant.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.audit import Actor
from backend.core.database import utcnow
from backend.core.errors import Forbidden, NotFound, Problem
from backend.core.pagination import PageRequest, fetch_page
from backend.core.secrets import hash_token
from backend.identity.api_keys import display_prefix, new_api_key
from backend.identity.models import ApiKey, User
from tenants.audit import record_audit
from tenants.caller import TenantCaller
from tenants.isolation import enter_tenant
from tenants.roles import TenantAction, TenantRole, role_within

KEY_NOT_FOUND = "No such API key."


def _active_keys() -> Select[ApiKey]:
    return select(ApiKey).where(ApiKey.revoked_at.is_(None))


async def create_api_key(
    session: AsyncSession,
    caller: TenantCaller,
    *,
    name: str,
    role: TenantRole,
    expires_in_days: int,
) -> tuple[ApiKey, str]:
    """A new key of the calling person in the caller's tenant, and the key itself (kept only as
    its SHA-256). Its role is at most the caller's: 422 otherwise."""
    if caller.user is None or caller.platform or caller.api_key_id is not None:
        raise Forbidden("Only a signed-in member creates personal API keys.")
    if not role_within(role, caller.role):
        raise Problem(
            f"The key's role ({role}) may not be above yours ({caller.role}).",
            status=422,
            extra={"errors": [{"loc": ["body", "role"], "msg": "above the caller's role"}]},
        )
    secret = new_api_key()
    key = ApiKey(
        id=uuid.uuid4(),
        user_id=caller.user.id,
        scope_tenant_id=caller.tenant_id,
        name=name,
        prefix=display_prefix(secret),
        key_hash=hash_token(secret),
        role=role.value,
        expires_at=utcnow() + timedelta(days=expires_in_days),
    )
    session.add(key)
    data = {"name": name, "prefix": key.prefix, "role": role.value, "days": expires_in_days}
    record_audit(session, caller.actor, "api_key.created", "api_key", key.id, data)
    await session.flush()
    return key, secret


async def list_api_keys(
    session: AsyncSession, user: User, page: PageRequest
) -> tuple[list[ApiKey], str | None]:
    """The user's keys that are not revoked, expired ones included, oldest first."""
    statement = _active_keys().where(ApiKey.user_id == user.id)
    return await fetch_page(session, statement, ApiKey.created_at, ApiKey.id, page)


async def _revoke(session: AsyncSession, actor: Actor, key: ApiKey) -> None:
    key.revoked_at = utcnow()
    # The event belongs to the key's tenant, whoever revokes it (its user may have left).
    await enter_tenant(session, key.scope_tenant_id)
    data = {"name": key.name, "prefix": key.prefix, "user_id": str(key.user_id)}
    record_audit(session, actor, "api_key.revoked", "api_key", key.id, data)
    await session.flush()


async def revoke_api_key(session: AsyncSession, user: User, key_id: uuid.UUID) -> None:
    """The user revokes one of their keys: it gets 401 from the next request on."""
    key = await session.scalar(_active_keys().where(ApiKey.id == key_id, ApiKey.user_id == user.id))
    if key is None:
        raise NotFound(KEY_NOT_FOUND)
    await _revoke(session, Actor(user_id=user.id), key)


async def revoke_tenant_api_key(
    session: AsyncSession, caller: TenantCaller, key_id: uuid.UUID
) -> None:
    """A tenant owner or admin revokes a key of their tenant, whoever's it is: revoking only
    takes access away."""
    caller.require(TenantAction.MANAGE)
    in_tenant = ApiKey.scope_tenant_id == caller.tenant_id
    key = await session.scalar(_active_keys().where(ApiKey.id == key_id, in_tenant))
    if key is None:
        raise NotFound(KEY_NOT_FOUND)
    await _revoke(session, caller.actor, key)
