"""Helpers of the invitation tests: Acme, the tenant they start from, inviting, reading mail.

People in Acme (emails `<name>.acme@example.com`):
  olive owner · adam admin · mia member · vic viewer · pat member · eddie member
Project Apollo: pat owner · eddie editor · vic viewer (mia is not in it).
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.database import utcnow
from backend.invitations.models import Invitation
from tenants.isolation import enter_tenant
from tenants.models import AuditEvent
from tenants.roles import ProjectRole, TenantRole
from tests.harness.smtp import Mailbox
from tests.world import TenantWorld, build_tenant

ACME_PEOPLE = {
    "olive": TenantRole.OWNER,
    "adam": TenantRole.ADMIN,
    "mia": TenantRole.MEMBER,
    "vic": TenantRole.VIEWER,
    "pat": TenantRole.MEMBER,
    "eddie": TenantRole.MEMBER,
}
APOLLO_TEAM = {"pat": ProjectRole.OWNER, "eddie": ProjectRole.EDITOR, "vic": ProjectRole.VIEWER}


async def build_acme(db: AsyncSession) -> TenantWorld:
    world = await build_tenant(db, "acme", members=ACME_PEOPLE)
    await world.add_project(db, "Apollo", members=APOLLO_TEAM)
    return world


_LINK = re.compile(r"https?://\S+/invitations/accept\?token=\S+")


async def invite(
    client: httpx.AsyncClient,
    app: FastAPI,
    world: TenantWorld,
    who: str,
    email: str,
    role: str = "member",
    **extra: Any,
) -> httpx.Response:
    """`who` invites `email` through the tenant route (`project_id`, `project_role` in extra)."""
    body = {"email": email, "role": role, **{k: str(v) for k, v in extra.items()}}
    return await client.post(f"{world.url}/invitations", json=body, headers=world.headers(app, who))


async def invite_to_project(
    client: httpx.AsyncClient,
    app: FastAPI,
    world: TenantWorld,
    who: str,
    email: str,
    role: str = "editor",
    project: str = "Apollo",
) -> httpx.Response:
    return await client.post(
        f"{world.project_url(project)}/invitations",
        json={"email": email, "role": role},
        headers=world.headers(app, who),
    )


def link_in(message: EmailMessage) -> str:
    """The acceptance link of an invitation mail (from its plain-text part)."""
    match = _LINK.search(Mailbox.text_of(message))
    assert match, "the mail carries no acceptance link"
    return match.group(0)


def token_in(message: EmailMessage) -> str:
    return parse_qs(urlsplit(link_in(message)).query)["token"][0]


async def mailed_token(mailbox: Mailbox, email: str, count: int = 1) -> str:
    """The token of the `count`-th invitation mail to `email` (waiting for it)."""
    messages = await mailbox.wait_for(email, count)
    return token_in(messages[count - 1])


async def invitation_row(db: AsyncSession, world: TenantWorld, invitation_id: str) -> Invitation:
    await enter_tenant(db, world.id)
    statement = select(Invitation).where(Invitation.id == uuid.UUID(invitation_id))
    row = await db.scalar(statement.execution_options(populate_existing=True))
    assert row is not None
    return row


async def expire(db: AsyncSession, world: TenantWorld, invitation_id: str) -> None:
    """Move the invitation's expiry into the past, as time would."""
    await enter_tenant(db, world.id)
    await db.execute(
        update(Invitation)
        .where(Invitation.id == uuid.UUID(invitation_id))
        .values(expires_at=utcnow() - timedelta(minutes=1))
    )
    await db.commit()


async def audit_actions(db: AsyncSession, world: TenantWorld) -> list[str]:
    await enter_tenant(db, world.id)
    statement = select(AuditEvent.action).order_by(AuditEvent.created_at, AuditEvent.id)
    return list(await db.scalars(statement))


async def count(db: AsyncSession, world: TenantWorld, model: Any, *where: Any) -> int:
    await enter_tenant(db, world.id)
    return await db.scalar(select(func.count()).select_from(model).where(*where)) or 0
