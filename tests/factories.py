"""factory-boy factories for every model, and `persist` to store what they build.

Factories only build (the app's sessions are async, factory-boy's SQLAlchemy support is sync).
A row's parents come from sub-factories unless given, and `persist` stores the new ones with it:

    user = await persist(db, UserFactory(email="ada@example.com"))
    await persist(db, MembershipFactory(tenant=acme, user=user, role=TenantRole.OWNER))
    await persist(db, MembershipFactory(tenant_id=acme.id, user_id=user.id))  # ids do as well
    task = await persist(db, TaskFactory())  # with a new tenant and project

`persist` writes each tenant's rows in that tenant's context, as the app would: nothing in the
app role lifts row-level security, so neither can the tests.

Traits name the states tests need (`UserFactory(superuser=True)`,
`InvitationFactory(accepted=True)`, `OAuthClientFactory(service=True)`). A secret-bearing row
takes its clear value as a parameter (`secret`, `token`) and stores only the hash.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta
from itertools import groupby
from typing import Any, TypeVar, cast
from weakref import WeakKeyDictionary

import factory
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.config import Settings
from backend.core.database import Base, utcnow
from backend.core.leases import Lease
from backend.core.secrets import hash_token
from backend.identity.api_keys import display_prefix, new_api_key
from backend.identity.models import (
    AdminSession,
    ApiKey,
    ClientRole,
    OAuthClient,
    OneTimePurpose,
    OneTimeToken,
    PlatformAuditEvent,
    RefreshToken,
    RevokedAccessToken,
    User,
)
from backend.identity.passwords import TEST_ARGON2ID
from backend.invitations.models import Invitation, InvitationStatus
from backend.invitations.tokens import issue_token
from backend.projects.models import Project, ProjectMember, Task, TaskStatus
from backend.webhooks.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from backend.webhooks.signing import SecretBox, generate_secret
from tenants.idempotency import IdempotencyKey, KeyState
from tenants.isolation import TenantScoped, current_tenant_id, enter_tenant, leave_tenant_sync
from tenants.models import AuditEvent, Membership, Tenant, TenantStatus
from tenants.outbox import OutboxEvent
from tenants.roles import ProjectRole, TenantRole

DEFAULT_PASSWORD = "correct horse battery staple"
# The suite's SECRET_KEY (tests/conftest.py), which seals webhook signing secrets.
TEST_SECRET_KEY = "test-secret-key-" + "x" * 32
_DEFAULT_PASSWORD_HASH = PasswordHash((Argon2Hasher(**TEST_ARGON2ID),)).hash(DEFAULT_PASSWORD)

ModelT = TypeVar("ModelT")

# The parent rows each built row refers to, which `persist` stores with it.
_parents: WeakKeyDictionary[Base, list[Base]] = WeakKeyDictionary()


def _from_now(**delta: float) -> factory.LazyFunction:
    return factory.LazyFunction(lambda: utcnow() + timedelta(**delta))


def _primary_key(row: Base) -> list[Any]:
    return list(inspect(row).mapper.primary_key_from_instance(row))


class ModelFactory(factory.Factory):
    """Builds a model. The arguments that are rows (sub-factories' or given parents) are kept
    aside for `persist` when the new row refers to them, and dropped when their id was given
    instead."""

    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class: type[Base], *args: Any, **kwargs: Any) -> Base:
        given = [kwargs.pop(key) for key, value in list(kwargs.items()) if isinstance(value, Base)]
        row = model_class(*args, **kwargs)
        values = list(kwargs.values())
        _parents[row] = [p for p in given if all(key in values for key in _primary_key(p))]
        return row


class UserFactory(ModelFactory):
    class Meta:
        model = User

    class Params:
        superuser = factory.Trait(is_superuser=True)
        unverified = factory.Trait(email_verified_at=None)
        deactivated = factory.Trait(
            is_active=False, tokens_valid_after=factory.LazyFunction(utcnow)
        )
        without_password = factory.Trait(password_hash=None)

    id = factory.LazyFunction(uuid.uuid4)
    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Faker("name")
    password_hash = _DEFAULT_PASSWORD_HASH
    is_active = True
    is_superuser = False
    email_verified_at = factory.LazyFunction(utcnow)
    created_at = factory.LazyFunction(utcnow)


class TenantFactory(ModelFactory):
    class Meta:
        model = Tenant

    class Params:
        suspended = factory.Trait(status=TenantStatus.SUSPENDED)

    id = factory.LazyFunction(uuid.uuid4)
    slug = factory.Sequence(lambda n: f"tenant-{n}")
    name = factory.Sequence(lambda n: f"Tenant {n}")
    status = TenantStatus.ACTIVE
    created_at = factory.LazyFunction(utcnow)


class MembershipFactory(ModelFactory):
    class Meta:
        model = Membership

    class Params:
        owner = factory.Trait(role=TenantRole.OWNER)
        admin = factory.Trait(role=TenantRole.ADMIN)
        viewer = factory.Trait(role=TenantRole.VIEWER)

    tenant = factory.SubFactory(TenantFactory)
    tenant_id = factory.SelfAttribute("tenant.id")
    user = factory.SubFactory(UserFactory)
    user_id = factory.SelfAttribute("user.id")
    role = TenantRole.MEMBER
    created_at = factory.LazyFunction(utcnow)


class ProjectFactory(ModelFactory):
    class Meta:
        model = Project

    class Params:
        in_trash = factory.Trait(deleted_at=factory.LazyFunction(utcnow))

    tenant = factory.SubFactory(TenantFactory)
    tenant_id = factory.SelfAttribute("tenant.id")
    id = factory.LazyFunction(uuid.uuid4)
    name = factory.Sequence(lambda n: f"Project {n}")
    description = ""
    created_by = None
    created_at = factory.LazyFunction(utcnow)
    updated_at = factory.LazyFunction(utcnow)


class ProjectMemberFactory(ModelFactory):
    """A project member, who is a member of the project's tenant (the membership comes too)."""

    class Meta:
        model = ProjectMember

    class Params:
        owner = factory.Trait(role=ProjectRole.OWNER)
        viewer = factory.Trait(role=ProjectRole.VIEWER)

    tenant = factory.SubFactory(TenantFactory)
    tenant_id = factory.SelfAttribute("tenant.id")
    project = factory.SubFactory(ProjectFactory, tenant_id=factory.SelfAttribute("..tenant_id"))
    project_id = factory.SelfAttribute("project.id")
    membership = factory.SubFactory(
        MembershipFactory, tenant_id=factory.SelfAttribute("..tenant_id")
    )
    user_id = factory.SelfAttribute("membership.user_id")
    role = ProjectRole.EDITOR
    created_at = factory.LazyFunction(utcnow)


class TaskFactory(ModelFactory):
    class Meta:
        model = Task

    class Params:
        done = factory.Trait(status=TaskStatus.DONE)
        in_trash = factory.Trait(deleted_at=factory.LazyFunction(utcnow))

    tenant = factory.SubFactory(TenantFactory)
    tenant_id = factory.SelfAttribute("tenant.id")
    project = factory.SubFactory(ProjectFactory, tenant_id=factory.SelfAttribute("..tenant_id"))
    project_id = factory.SelfAttribute("project.id")
    id = factory.LazyFunction(uuid.uuid4)
    title = factory.Sequence(lambda n: f"Task {n}")
    description = ""
    status = TaskStatus.TODO
    assignee_id = None
    created_by = None
    created_at = factory.LazyFunction(utcnow)
    updated_at = factory.LazyFunction(utcnow)


class OAuthClientFactory(ModelFactory):
    """A public first-party client; `service=True` makes a tenant's confidential service client,
    whose clear secret is `secret`."""

    class Meta:
        model = OAuthClient

    class Params:
        secret: str | None = None
        service = factory.Trait(
            secret="secret",
            grant_types=["client_credentials"],
            owner_tenant=factory.SubFactory(TenantFactory),
            owner_tenant_id=factory.SelfAttribute("owner_tenant.id"),
            role=ClientRole.MEMBER,
        )
        revoked = factory.Trait(revoked_at=factory.LazyFunction(utcnow))

    client_id = factory.Sequence(lambda n: f"client-{n}-{uuid.uuid4().hex[:8]}")
    client_secret_hash = factory.LazyAttribute(
        lambda row: hash_token(row.secret) if row.secret is not None else None
    )
    name = factory.Sequence(lambda n: f"Client {n}")
    grant_types = factory.LazyFunction(lambda: ["password", "refresh_token"])
    owner_tenant_id = None
    role = None
    created_by = None
    created_at = factory.LazyFunction(utcnow)


class RefreshTokenFactory(ModelFactory):
    """A live refresh token whose clear value is `token`."""

    class Meta:
        model = RefreshToken

    class Params:
        token = factory.LazyFunction(lambda: f"refresh-{uuid.uuid4()}")
        rotated = factory.Trait(rotated_at=factory.LazyFunction(utcnow))
        revoked = factory.Trait(revoked_at=factory.LazyFunction(utcnow))
        expired = factory.Trait(expires_at=_from_now(minutes=-1))

    id = factory.LazyFunction(uuid.uuid4)
    token_hash = factory.LazyAttribute(lambda row: hash_token(row.token))
    family_id = factory.LazyFunction(uuid.uuid4)
    user = factory.SubFactory(UserFactory)
    user_id = factory.SelfAttribute("user.id")
    client = factory.SubFactory(OAuthClientFactory)
    client_id = factory.SelfAttribute("client.client_id")
    scope = ""
    issued_at = factory.LazyFunction(utcnow)
    expires_at = _from_now(days=1)


class ApiKeyFactory(ModelFactory):
    """A live personal API key of a member role in a new tenant, whose clear value is `key`
    (the user is not made a member: give `user` one, or use `TenantWorld.add_api_key`)."""

    class Meta:
        model = ApiKey

    class Params:
        key = factory.LazyFunction(new_api_key)
        revoked = factory.Trait(revoked_at=factory.LazyFunction(utcnow))
        expired = factory.Trait(expires_at=_from_now(minutes=-1))

    id = factory.LazyFunction(uuid.uuid4)
    user = factory.SubFactory(UserFactory)
    user_id = factory.SelfAttribute("user.id")
    scope_tenant = factory.SubFactory(TenantFactory)
    scope_tenant_id = factory.SelfAttribute("scope_tenant.id")
    name = factory.Sequence(lambda n: f"Script {n}")
    prefix = factory.LazyAttribute(lambda row: display_prefix(row.key))
    key_hash = factory.LazyAttribute(lambda row: hash_token(row.key))
    role = TenantRole.MEMBER.value
    expires_at = _from_now(days=30)
    created_at = factory.LazyFunction(utcnow)


class AdminSessionFactory(ModelFactory):
    """A signed-in admin panel session whose clear cookie value is `session_id`."""

    class Meta:
        model = AdminSession

    class Params:
        session_id = factory.LazyFunction(lambda: uuid.uuid4().hex)

    id_hash = factory.LazyAttribute(lambda row: hash_token(row.session_id))
    user = factory.SubFactory(UserFactory)
    user_id = factory.SelfAttribute("user.id")
    expires_at = _from_now(hours=8)
    created_at = factory.LazyFunction(utcnow)


class RevokedAccessTokenFactory(ModelFactory):
    class Meta:
        model = RevokedAccessToken

    jti = factory.LazyFunction(lambda: uuid.uuid4().hex)
    expires_at = _from_now(minutes=15)


class OneTimeTokenFactory(ModelFactory):
    """A live password-reset link whose clear value is `token`."""

    class Meta:
        model = OneTimeToken

    class Params:
        token = factory.LazyFunction(lambda: f"one-time-{uuid.uuid4()}")
        email_verification = factory.Trait(purpose=OneTimePurpose.EMAIL_VERIFICATION)
        used = factory.Trait(used_at=factory.LazyFunction(utcnow))
        expired = factory.Trait(expires_at=_from_now(minutes=-1))

    id = factory.LazyFunction(uuid.uuid4)
    purpose = OneTimePurpose.PASSWORD_RESET
    token_hash = factory.LazyAttribute(lambda row: hash_token(row.token))
    user = factory.SubFactory(UserFactory)
    user_id = factory.SelfAttribute("user.id")
    expires_at = _from_now(days=1)
    created_at = factory.LazyFunction(utcnow)


class PlatformAuditEventFactory(ModelFactory):
    class Meta:
        model = PlatformAuditEvent

    id = factory.LazyFunction(uuid.uuid4)
    actor = factory.SubFactory(UserFactory, superuser=True)
    actor_user_id = factory.SelfAttribute("actor.id")
    action = "admin.user.deactivated"
    target_type = "user"
    target_id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    data = factory.LazyFunction(dict)
    created_at = factory.LazyFunction(utcnow)


class AuditEventFactory(ModelFactory):
    """An event by a user (any user: an actor need not stay a member); `by_client` for a
    service client's."""

    class Meta:
        model = AuditEvent

    class Params:
        by_client = factory.Trait(actor_user_id=None, actor_client_id="robot")

    id = factory.LazyFunction(uuid.uuid4)
    tenant = factory.SubFactory(TenantFactory)
    tenant_id = factory.SelfAttribute("tenant.id")
    actor = factory.SubFactory(UserFactory)
    actor_user_id = factory.SelfAttribute("actor.id")
    actor_client_id = None
    action = "project.created"
    target_type = "project"
    target_id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    data = factory.LazyFunction(dict)
    created_at = factory.LazyFunction(utcnow)


class InvitationFactory(ModelFactory):
    """A pending invitation into a tenant, whose clear token is `token.value`; `to_project=True`
    invites into a new project of the tenant too."""

    class Meta:
        model = Invitation

    class Params:
        token = factory.LazyAttribute(lambda row: issue_token(row.tenant_id))
        to_project = factory.Trait(
            project=factory.SubFactory(
                ProjectFactory, tenant_id=factory.SelfAttribute("..tenant_id")
            ),
            project_id=factory.SelfAttribute("project.id"),
            project_role=ProjectRole.EDITOR,
        )
        accepted = factory.Trait(
            status=InvitationStatus.ACCEPTED,
            accepted_at=factory.LazyFunction(utcnow),
            accepter=factory.SubFactory(UserFactory),
            accepted_by=factory.SelfAttribute("accepter.id"),
        )
        revoked = factory.Trait(status=InvitationStatus.REVOKED)
        expired = factory.Trait(expires_at=_from_now(minutes=-1))

    id = factory.LazyFunction(uuid.uuid4)
    tenant = factory.SubFactory(TenantFactory)
    tenant_id = factory.SelfAttribute("tenant.id")
    email = factory.Sequence(lambda n: f"invitee{n}@example.com")
    role = TenantRole.MEMBER
    project_id = None
    project_role = None
    token_hash = factory.SelfAttribute("token.hash")
    status = InvitationStatus.PENDING
    inviter = factory.SubFactory(UserFactory)
    invited_by = factory.SelfAttribute("inviter.id")
    expires_at = _from_now(days=7)
    created_at = factory.LazyFunction(utcnow)


class OutboxEventFactory(ModelFactory):
    """An event waiting for the dispatcher; `dispatched=True` for one it has handed out."""

    class Meta:
        model = OutboxEvent

    class Params:
        dispatched = factory.Trait(dispatch_after=None)

    id = factory.LazyFunction(uuid.uuid4)
    tenant = factory.SubFactory(TenantFactory)
    tenant_id = factory.SelfAttribute("tenant.id")
    type = "project.created"
    data = factory.LazyFunction(dict)
    occurred_at = factory.LazyFunction(utcnow)
    dispatch_after = factory.SelfAttribute("occurred_at")


def _sealed(secret: str) -> str:
    return SecretBox(Settings(_env_file=None, secret_key=TEST_SECRET_KEY)).seal(secret)  # type: ignore[call-arg]


class WebhookEndpointFactory(ModelFactory):
    """An endpoint subscribed to every event, whose clear signing secret is `secret`."""

    class Meta:
        model = WebhookEndpoint

    class Params:
        secret = factory.LazyFunction(generate_secret)
        disabled = factory.Trait(enabled=False)

    id = factory.LazyFunction(uuid.uuid4)
    tenant = factory.SubFactory(TenantFactory)
    tenant_id = factory.SelfAttribute("tenant.id")
    url = "http://127.0.0.1:9/hooks"
    description = ""
    events = factory.LazyFunction(lambda: ["*"])
    secret_encrypted = factory.LazyAttribute(lambda row: _sealed(row.secret))
    previous_secret_encrypted = None
    previous_secret_expires_at = None
    enabled = True
    consecutive_failures = 0
    created_by = None
    created_at = factory.LazyFunction(utcnow)
    updated_at = factory.LazyFunction(utcnow)


class WebhookDeliveryFactory(ModelFactory):
    """A delivery due now of a new event to a new endpoint of the same tenant."""

    class Meta:
        model = WebhookDelivery

    class Params:
        failed = factory.Trait(status=DeliveryStatus.FAILED, attempts=8, next_attempt_at=None)

    id = factory.LazyFunction(uuid.uuid4)
    tenant = factory.SubFactory(TenantFactory)
    tenant_id = factory.SelfAttribute("tenant.id")
    endpoint = factory.SubFactory(
        WebhookEndpointFactory, tenant_id=factory.SelfAttribute("..tenant_id")
    )
    endpoint_id = factory.SelfAttribute("endpoint.id")
    event = factory.SubFactory(
        OutboxEventFactory, tenant_id=factory.SelfAttribute("..tenant_id"), dispatched=True
    )
    event_id = factory.SelfAttribute("event.id")
    status = DeliveryStatus.PENDING
    attempts = 0
    next_attempt_at = factory.LazyFunction(utcnow)
    claimed_until = None
    claim_token = None
    created_at = factory.LazyFunction(utcnow)


class WebhookAttemptFactory(ModelFactory):
    """A failed first attempt of a delivery, in the delivery log."""

    class Meta:
        model = WebhookAttempt

    id = factory.LazyFunction(uuid.uuid4)
    delivery = factory.SubFactory(WebhookDeliveryFactory)
    tenant_id = factory.SelfAttribute("delivery.tenant_id")
    delivery_id = factory.SelfAttribute("delivery.id")
    endpoint_id = factory.SelfAttribute("delivery.endpoint_id")
    event_id = factory.SelfAttribute("delivery.event_id")
    event_type = "project.created"
    attempt = 1
    status_code = 500
    duration_ms = 12
    error = "HTTP 500"
    response_body = "oops"
    next_attempt_at = _from_now(seconds=5)
    created_at = factory.LazyFunction(utcnow)


class IdempotencyKeyFactory(ModelFactory):
    """A completed key of a user, outside any tenant (creating a tenant), as a replay finds it."""

    class Meta:
        model = IdempotencyKey

    class Params:
        running = factory.Trait(
            state=KeyState.RUNNING,
            locked_until=_from_now(minutes=1),
            response_status=None,
            response_body=None,
        )

    scope_key = factory.LazyFunction(lambda: uuid.uuid4().hex + uuid.uuid4().hex)
    principal = factory.LazyFunction(lambda: f"user:{uuid.uuid4()}")
    scope_tenant_id = None
    request_digest = factory.LazyFunction(lambda: uuid.uuid4().hex + uuid.uuid4().hex)
    state = KeyState.COMPLETED
    locked_until = None
    response_status = 201
    response_body = '{"id": "x"}'
    created_at = factory.LazyFunction(utcnow)


class LeaseFactory(ModelFactory):
    """A lease of a periodic job; the migrations make the real ones (`backend.core.leases`)."""

    class Meta:
        model = Lease

    name = factory.Sequence(lambda n: f"job.{n}")
    holder = ""
    held_until = factory.LazyFunction(utcnow)


_TABLE_ORDER = {table.name: index for index, table in enumerate(Base.metadata.sorted_tables)}


def _with_parents(rows: Iterable[object]) -> list[Base]:
    """The rows and, first, the parents built with them that are not stored yet."""
    found: list[Base] = []
    for row in cast(Iterable[Base], rows):
        new_parents = [p for p in _parents.get(row, []) if inspect(p).transient]
        found += [*_with_parents(new_parents), row]
    return list(dict.fromkeys(found))


def rows_to_store(*rows: object) -> list[Base]:
    """What `persist` would store for `rows`: their new parents first, then the rows."""
    return _with_parents(rows)


def _tenant_of(row: Base) -> str:
    tenant_id = row.tenant_id if isinstance(row, TenantScoped) else None
    return "" if tenant_id is None else str(tenant_id)


async def persist(session: AsyncSession, *rows: ModelT) -> ModelT:
    """Add (with their new parents) and commit; returns the first row (the usual one-row case).

    Each tenant's rows are written in that tenant's context (global rows in the session's own),
    and the session's context is restored afterwards."""
    context = current_tenant_id(session)
    # Parents first, table by table: the unit of work orders only rows whose mappers are related,
    # and these models' relationships are view-only.
    ordered = sorted(
        _with_parents(rows), key=lambda row: (_TABLE_ORDER[row.__table__.name], _tenant_of(row))
    )
    for (_, tenant), same_run in groupby(
        ordered, key=lambda row: (row.__table__.name, _tenant_of(row))
    ):
        if tenant and uuid.UUID(tenant) != current_tenant_id(session):
            await enter_tenant(session, uuid.UUID(tenant))
        session.add_all(same_run)
        await session.flush()
    await session.commit()
    if current_tenant_id(session) != context:
        if context is None:
            await session.run_sync(leave_tenant_sync)
        else:
            await enter_tenant(session, context)
    return rows[0]
