"""Service clients: OAuth2 clients (client_credentials) that act for one tenant with a role.

`oauth_clients` is a global table (the token endpoint finds a client before any tenant is
known), so neither the ORM filter nor RLS scopes it: every statement here names the tenant.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.database import utcnow
from backend.core.errors import NotFound
from backend.core.pagination import PageRequest, page_of, paginate
from backend.core.secrets import hash_token, new_token
from backend.identity.models import ClientRole, OAuthClient
from backend.identity.oauth2.models import CLIENT_CREDENTIALS
from tenants.audit import record_audit
from tenants.dependencies import TenantAccessContext


def _active_clients_of(tenant_id: uuid.UUID):
    return select(OAuthClient).where(
        OAuthClient.owner_tenant_id == tenant_id, OAuthClient.revoked_at.is_(None)
    )


async def create_service_client(
    session: AsyncSession, access: TenantAccessContext, name: str, role: ClientRole
) -> tuple[OAuthClient, str]:
    """A new confidential client of the tenant, and its secret (kept only as a hash)."""
    secret = new_token()
    client = OAuthClient(
        # Recognisable in logs, and unguessable like every other id here.
        client_id=f"svc-{uuid.uuid4().hex}",
        client_secret_hash=hash_token(secret),
        name=name,
        grant_types=[CLIENT_CREDENTIALS],
        owner_tenant_id=access.tenant_id,
        role=role,
        created_by=access.principal.user_id,
    )
    session.add(client)
    data = {"name": name, "role": role.value}
    record_audit(session, access.actor, "client.created", "oauth_client", client.client_id, data)
    await session.flush()
    return client, secret


async def list_service_clients(
    session: AsyncSession, tenant_id: uuid.UUID, page: PageRequest
) -> tuple[list[OAuthClient], str | None]:
    statement = paginate(
        _active_clients_of(tenant_id), OAuthClient.created_at, OAuthClient.client_id, page
    )
    rows = (await session.scalars(statement)).all()
    return page_of(rows, page, key=lambda client: (client.created_at, client.client_id))


async def revoke_service_client(
    session: AsyncSession, access: TenantAccessContext, client_id: str
) -> None:
    """Revoke: the principal lookup refuses its tokens from the next request on."""
    client = await session.scalar(
        _active_clients_of(access.tenant_id).where(OAuthClient.client_id == client_id)
    )
    if client is None:
        raise NotFound("This tenant has no active service client with this id.")
    client.revoked_at = utcnow()
    data = {"name": client.name}
    record_audit(session, access.actor, "client.revoked", "oauth_client", client_id, data)
    await session.flush()
