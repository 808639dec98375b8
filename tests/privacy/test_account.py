"""GET /api/v1/users/me/export and DELETE /api/v1/users/me (GDPR Art. 20 and 17)."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.identity.api_keys import new_api_key
from backend.identity.models import AdminSession, ApiKey, PlatformAuditEvent, RefreshToken, User
from backend.invitations.models import Invitation, InvitationStatus
from backend.invitations.tokens import issue_token
from backend.projects.models import ProjectMember, Task
from tenants.idempotency import IdempotencyKey
from tenants.models import AuditEvent, Membership
from tenants.outbox import OutboxEvent
from tenants.roles import ProjectRole, TenantRole
from tests.auth import bearer
from tests.cross_tenant import cross_tenant
from tests.factories import (
    AdminSessionFactory,
    ApiKeyFactory,
    AuditEventFactory,
    InvitationFactory,
    OutboxEventFactory,
    PlatformAuditEventFactory,
    RefreshTokenFactory,
    persist,
)
from tests.world import TenantWorld, build_tenant

PASSWORD = "correct horse battery staple"
ME = "/api/v1/users/me"
KEY = "Idempotency-Key"


async def _two_tenants(
    db: AsyncSession, *, erasable: bool = False
) -> tuple[TenantWorld, TenantWorld]:
    """Mia is a member of acme and owner of globex; `erasable`: not its last owner."""
    acme = await build_tenant(db, "acme", {"olive": TenantRole.OWNER, "mia": TenantRole.MEMBER})
    await acme.add_project(db, "Apollo", {"mia": ProjectRole.EDITOR})
    await acme.add_task(db, "Apollo", assignee="mia")
    globex = await build_tenant(db, "globex", {"gus": TenantRole.MEMBER})
    await globex.add_member(db, "mia", TenantRole.OWNER, user=acme.users["mia"])
    if erasable:
        await globex.add_member(db, "gus2", TenantRole.OWNER)
    return acme, globex


async def test_the_account_export_holds_what_the_service_knows_without_secrets(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, owner_db: AsyncSession
) -> None:
    acme, globex = await _two_tenants(db)
    mia = acme.users["mia"]
    await persist(db, RefreshTokenFactory(user=mia, user_id=mia.id))
    await persist(db, AdminSessionFactory(user=mia, user_id=mia.id))
    clear_key = new_api_key()
    key = ApiKeyFactory(key=clear_key, user=mia, user_id=mia.id, scope_tenant=acme.tenant)
    await persist(db, key)
    await persist(
        db, AuditEventFactory(tenant_id=acme.id, actor_user_id=mia.id, action="task.created")
    )
    await persist(
        db, AuditEventFactory(tenant_id=globex.id, actor_user_id=mia.id, action="project.created")
    )
    await persist(db, AuditEventFactory(tenant_id=acme.id, actor_user_id=acme.users["olive"].id))
    await persist(
        owner_db,
        PlatformAuditEventFactory(
            actor=mia, actor_user_id=mia.id, action="user.updated", target_id=str(mia.id)
        ),
        PlatformAuditEventFactory(action="user.deactivated"),  # a superuser's, not hers
    )

    answer = await client.get(f"{ME}/export", headers=bearer(app, mia))

    assert answer.status_code == 200, answer.text
    exported = answer.json()
    assert exported["profile"]["email"] == mia.email
    assert {(m["tenant_id"], m["role"]) for m in exported["memberships"]} == {
        (str(acme.id), "member"),
        (str(globex.id), "owner"),
    }
    assert [p["role"] for p in exported["project_memberships"]] == ["editor"]
    assert len(exported["sessions"]) == 1
    assert len(exported["panel_sessions"]) == 1
    assert [k["prefix"] for k in exported["api_keys"]] == [key.prefix]
    assert sorted(e["action"] for e in exported["audit_events"]) == [
        "project.created",
        "task.created",
    ]
    [on_platform] = exported["platform_audit_events"]
    assert on_platform["action"] == "user.updated"
    assert on_platform["target_id"] == str(mia.id)
    text = answer.text
    for secret in ("token_hash", "id_hash", "password_hash", "key_hash", "secret", clear_key):
        assert secret not in text


async def test_erasure_removes_the_account_and_keeps_the_audit_anonymous(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, owner_db: AsyncSession
) -> None:
    acme, _ = await _two_tenants(db, erasable=True)
    mia = acme.users["mia"]
    token = RefreshTokenFactory(user=mia, user_id=mia.id)
    clear_key = new_api_key()
    key = ApiKeyFactory(key=clear_key, user=mia, user_id=mia.id, scope_tenant=acme.tenant)
    await persist(db, token, AdminSessionFactory(user=mia, user_id=mia.id), key)
    await persist(
        db, AuditEventFactory(tenant_id=acme.id, actor_user_id=mia.id, action="task.created")
    )
    await persist(
        db, AuditEventFactory(tenant_id=acme.id, target_type="member", target_id=str(mia.id))
    )
    await persist(owner_db, PlatformAuditEventFactory(target_id=str(mia.id)))
    headers = bearer(app, mia)

    answer = await client.request("DELETE", ME, json={"password": PASSWORD}, headers=headers)

    assert answer.status_code == 204, answer.text
    assert (await client.get(ME, headers=headers)).status_code == 401
    by_key = {"Authorization": f"Bearer {clear_key}"}
    assert (await client.get(f"{acme.url}/projects", headers=by_key)).status_code == 401
    db.expunge_all()
    async with cross_tenant(db, "the erased account leaves nothing behind, in any tenant"):
        assert await db.get(User, mia.id) is None
        assert not (await db.scalars(select(Membership).where(Membership.user_id == mia.id))).all()
        assert not (
            await db.scalars(select(ProjectMember).where(ProjectMember.user_id == mia.id))
        ).all()
        assert [t.assignee_id for t in await db.scalars(select(Task))] == [None]
        assert not (
            await db.scalars(select(RefreshToken).where(RefreshToken.user_id == mia.id))
        ).all()
        assert not (
            await db.scalars(select(AdminSession).where(AdminSession.user_id == mia.id))
        ).all()
        assert not (await db.scalars(select(ApiKey).where(ApiKey.user_id == mia.id))).all()
        events = (await db.scalars(select(AuditEvent).where(AuditEvent.tenant_id == acme.id))).all()
        assert str(mia.id) not in {e.target_id for e in events}
        [acted] = [e for e in events if e.action == "task.created"]
        assert acted.actor_user_id is None
        assert acted.anonymous_actor_id is not None
        [targeted] = [e for e in events if e.target_type == "member"]
        assert targeted.target_id == str(acted.anonymous_actor_id)
    async with owner_db.begin():
        platform = (await owner_db.scalars(select(PlatformAuditEvent))).all()
    assert str(mia.id) not in {e.target_id for e in platform}
    [erased] = [e for e in platform if e.action == "user.erased"]
    assert erased.target_id == str(acted.anonymous_actor_id)


async def test_erasure_leaves_neither_id_nor_email_in_audit_or_outbox_data(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, owner_db: AsyncSession
) -> None:
    acme, globex = await _two_tenants(db, erasable=True)
    initech = await build_tenant(db, "initech", {"ivan": TenantRole.OWNER})  # not hers
    mia, olive = acme.users["mia"], acme.users["olive"]
    mia_id, shouted = str(mia.id), mia.email.upper()
    await persist(
        db,
        AuditEventFactory(
            tenant_id=acme.id,
            actor_user_id=olive.id,
            action="task.updated",
            data={"assignee_id": {"from": str(olive.id), "to": mia_id}, "title": "Fuel"},
        ),
        AuditEventFactory(
            tenant_id=acme.id,
            actor_user_id=olive.id,
            action="api_key.revoked",
            data={"user_id": mia_id, "names": ["x", mia_id]},
        ),
    )
    await persist(
        db,
        AuditEventFactory(
            tenant_id=initech.id,
            actor_user_id=initech.users["ivan"].id,
            action="invitation.created",
            data={"email": shouted, "role": "member"},
        ),
    )
    as_member = {"user_id": mia_id, "email": mia.email, "full_name": "Mia", "role": "owner"}
    task = {"id": str(uuid.uuid4()), "title": "Ship", "assignee_id": mia_id}
    await persist(
        db,
        OutboxEventFactory(tenant=globex.tenant, type="member.added", data=as_member),
        OutboxEventFactory(tenant=acme.tenant, type="task.updated", data=task, dispatched=True),
    )
    await persist(
        owner_db,
        PlatformAuditEventFactory(
            actor=mia,
            actor_user_id=mia.id,
            action="user.updated",
            target_id=mia_id,
            data={"full_name": {"from": "Mia", "to": "Mia Wong"}},
        ),
        PlatformAuditEventFactory(data={"email": mia.email, "other": str(olive.id)}),
    )

    answer = await client.request(
        "DELETE", ME, json={"password": PASSWORD}, headers=bearer(app, mia)
    )

    assert answer.status_code == 204, answer.text
    db.expunge_all()
    async with cross_tenant(db, "no audit event of any tenant still names the erased account"):
        events = (await db.scalars(select(AuditEvent))).all()
        outbox = {e.type: e.data for e in await db.scalars(select(OutboxEvent))}
    async with owner_db.begin():
        platform = (await owner_db.scalars(select(PlatformAuditEvent))).all()
    [erased] = [e for e in platform if e.action == "user.erased"]
    anonymous = erased.target_id
    for data in [*(e.data for e in [*events, *platform]), *outbox.values()]:
        as_text = json.dumps(data).lower()
        assert mia_id not in as_text, data
        assert mia.email.lower() not in as_text, data
    # What webhooks carry: the member she was is nameless, the task she had is unassigned.
    assert outbox["member.added"] == {
        "user_id": anonymous,
        "email": anonymous,
        "full_name": None,
        "role": "owner",
    }
    assert outbox["task.updated"] == {**task, "assignee_id": anonymous}
    by_action = {e.action: e.data for e in events}
    assert by_action["task.updated"] == {
        "assignee_id": {"from": str(olive.id), "to": anonymous},
        "title": "Fuel",
    }
    assert by_action["api_key.revoked"] == {"user_id": anonymous, "names": ["x", anonymous]}
    assert by_action["invitation.created"] == {"email": anonymous, "role": "member"}
    platform_data = {e.action: e.data for e in platform if e.action != "user.erased"}
    assert platform_data["user.updated"] == {}  # the name she had is gone with her
    assert platform_data["admin.user.deactivated"] == {"email": anonymous, "other": str(olive.id)}


async def test_erasure_revokes_the_invitations_they_sent_and_keeps_those_sent_to_them(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    acme, globex = await _two_tenants(db, erasable=True)
    initech = await build_tenant(db, "initech", {"ivan": TenantRole.OWNER})
    mia = acme.users["mia"]
    sent = InvitationFactory(tenant=globex.tenant, inviter=mia)
    token = issue_token(initech.id)
    to_her = InvitationFactory(
        token=token, tenant=initech.tenant, email=mia.email, inviter=initech.users["ivan"]
    )
    await persist(db, sent)
    await persist(db, to_her)

    answer = await client.request(
        "DELETE", ME, json={"password": PASSWORD}, headers=bearer(app, mia)
    )

    assert answer.status_code == 204, answer.text
    db.expunge_all()
    async with cross_tenant(db, "the invitations she sent and those sent to her"):
        after = {i.id: i for i in await db.scalars(select(Invitation))}
        revocations = (
            await db.scalars(select(AuditEvent).where(AuditEvent.action == "invitation.revoked"))
        ).all()
    assert after[sent.id].status is InvitationStatus.REVOKED
    assert after[sent.id].invited_by is None
    [revoked] = revocations
    assert revoked.target_id == str(sent.id)
    assert revoked.actor_user_id is None
    assert revoked.anonymous_actor_id is not None
    # The tenant's offer to her address stays its own: revoking it would tell the tenant that
    # she had an account and erased it. Accepting it later makes a new account.
    assert after[to_her.id].status is InvitationStatus.PENDING
    preview = await client.get(f"/api/v1/invitations/{token.value}")
    assert preview.status_code == 200, preview.text


async def test_erasure_forgets_the_answers_kept_for_their_retries(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, owner_db: AsyncSession
) -> None:
    acme, _ = await _two_tenants(db, erasable=True)
    mia = acme.users["mia"]
    by_key = await acme.add_api_key(db, "mia", TenantRole.MEMBER)
    projects = f"{acme.url}/projects"
    for headers in ({**bearer(app, mia), KEY: "a"}, {**by_key, KEY: "b"}):
        made = await client.post(projects, json={"name": f"By {headers[KEY]}"}, headers=headers)
        assert made.status_code == 201, made.text
    async with owner_db.begin():
        kept = await owner_db.scalar(select(func.count()).select_from(IdempotencyKey))
    assert kept == 2

    answer = await client.request(
        "DELETE", ME, json={"password": PASSWORD}, headers=bearer(app, mia)
    )

    assert answer.status_code == 204, answer.text
    async with owner_db.begin():
        assert await owner_db.scalar(select(func.count()).select_from(IdempotencyKey)) == 0


async def test_the_last_owner_of_a_tenant_is_told_which(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    acme, _ = await _two_tenants(db)
    mia = acme.users["mia"]
    answer = await client.request(
        "DELETE", ME, json={"password": PASSWORD}, headers=bearer(app, mia)
    )
    assert answer.status_code == 409, answer.text
    assert "Globex" in answer.json()["detail"]
    assert "Acme" not in answer.json()["detail"]
    assert (await client.get(ME, headers=bearer(app, mia))).status_code == 200


async def test_a_wrong_password_is_400_and_erases_nothing(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    acme, _ = await _two_tenants(db)
    olive = acme.users["olive"]
    answer = await client.request(
        "DELETE", ME, json={"password": "wrong"}, headers=bearer(app, olive)
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["errors"][0]["loc"] == ["body", "password"]
    assert (await client.get(ME, headers=bearer(app, olive))).status_code == 200


@pytest.mark.parametrize("body", [{}, {"password": ""}, {"password": "x", "extra": 1}])
async def test_erasure_needs_the_password_field(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, body: dict[str, object]
) -> None:
    acme, _ = await _two_tenants(db)
    answer = await client.request("DELETE", ME, json=body, headers=bearer(app, acme.users["olive"]))
    assert answer.status_code == 422, answer.text
