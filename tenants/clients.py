"""Service clients: OAuth2 clients (client_credentials) that act for one tenant with a role.

`oauth_clients` is a global table (the token endpoint finds a client before any tenant is
known), so neither the ORM filter nor RLS scopes it: every statement here names the tenant.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.database import utcnow
from backend.core.errors import Forbidden, NotFound
from backend.core.pagination import PageRequest, fetch_page
from backend.core.secrets import hash_token, new_token
from backend.identity.models import ClientRole, OAuthClient
from backend.identity.oauth2.models import CLIENT_CREDENTIALS
from tenants.audit import record_audit
from tenants.caller import TenantCaller
from tenants.roles import TenantAction


def _require_person_who_manages(caller: TenantCaller) -> None:
    """Only people, signed in, manage service clients: a client (or an API key) minting clients
    could outlive its own revocation, and an admin-role client would multiply itself."""
    if caller.is_service_client:
        raise Forbidden("Service clients cannot create or manage service clients.")
    if caller.api_key_id is not None:
        raise Forbidden("API keys cannot create or manage service clients: sign in.")
    caller.require(TenantAction.MANAGE)


def _active_clients_of(tenant_id: uuid.UUID) -> Select[OAuthClient]:
    return select(OAuthClient).where(
        OAuthClient.owner_tenant_id == tenant_id, OAuthClient.revoked_at.is_(None)
    )


async def create_service_client(
    session: AsyncSession, caller: TenantCaller, name: str, role: ClientRole
) -> tuple[OAuthClient, str]:
    """A new confidential client of the tenant, and its secret (kept only as a hash). Its
    creator's email address must be verified: a client may send invitations."""
    _require_person_who_manages(caller)
    caller.require_verified_email("creating service clients")
    secret = new_token()
    client = OAuthClient(
        # Recognisable in logs, and unguessable like every other id here.
        client_id=f"svc-{uuid.uuid4().hex}",
        client_secret_hash=hash_token(secret),
        name=name,
        grant_types=[CLIENT_CREDENTIALS],
        owner_tenant_id=caller.tenant_id,
        role=role,
        created_by=caller.user_id,
    )
    session.add(client)
    data = {"name": name, "role": role.value}
    record_audit(session, caller.actor, "client.created", "oauth_client", client.client_id, data)
    await session.flush()
    return client, secret


async def list_service_clients(
    session: AsyncSession, caller: TenantCaller, page: PageRequest
) -> tuple[list[OAuthClient], str | None]:
    _require_person_who_manages(caller)
    statement = _active_clients_of(caller.tenant_id)
    return await fetch_page(session, statement, OAuthClient.created_at, OAuthClient.client_id, page)


async def revoke_service_client(
    session: AsyncSession, caller: TenantCaller, client_id: str
) -> None:
    """Revoke: the principal lookup refuses its tokens from the next request on."""
    _require_person_who_manages(caller)
    client = await session.scalar(
        _active_clients_of(caller.tenant_id).where(OAuthClient.client_id == client_id)
    )
    if client is None:
        raise NotFound("This tenant has no active service client with this id.")
    client.revoked_at = utcnow()
    data = {"name": client.name}
    record_audit(session, caller.actor, "client.revoked", "oauth_client", client_id, data)
    await session.flush()
