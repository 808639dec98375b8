"""factory-boy factories for the domain objects, and `persist` to store what they build.

Factories only build (the app's sessions are async, factory-boy's SQLAlchemy support is sync):

    user = await persist(db, UserFactory(email="ada@example.com"))
    project = await persist(db, ProjectFactory(tenant_id=tenant.id))

`persist` writes each tenant's rows in that tenant's context, as the app would: nothing in the
app role lifts row-level security, so neither can the tests.
"""

from __future__ import annotations

import uuid
from itertools import groupby
from typing import TypeVar

import factory
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.database import utcnow
from backend.identity.models import User
from backend.identity.passwords import TEST_ARGON2ID
from backend.projects.models import Project, ProjectMember, Task
from tenants.isolation import TenantScoped, current_tenant_id, enter_tenant, leave_tenant_sync
from tenants.models import Membership, Tenant
from tenants.roles import ProjectRole, TenantRole

DEFAULT_PASSWORD = "correct horse battery staple"

ModelT = TypeVar("ModelT")


def _hash_default_password() -> str:
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher

    return PasswordHash((Argon2Hasher(**TEST_ARGON2ID),)).hash(DEFAULT_PASSWORD)


_DEFAULT_PASSWORD_HASH = _hash_default_password()


class UserFactory(factory.Factory):
    class Meta:
        model = User

    id = factory.LazyFunction(uuid.uuid4)
    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Faker("name")
    password_hash = _DEFAULT_PASSWORD_HASH
    is_active = True
    is_superuser = False
    email_verified_at = factory.LazyFunction(utcnow)
    created_at = factory.LazyFunction(utcnow)


class TenantFactory(factory.Factory):
    class Meta:
        model = Tenant

    id = factory.LazyFunction(uuid.uuid4)
    slug = factory.Sequence(lambda n: f"tenant-{n}")
    name = factory.Sequence(lambda n: f"Tenant {n}")
    created_at = factory.LazyFunction(utcnow)


class MembershipFactory(factory.Factory):
    class Meta:
        model = Membership

    role = TenantRole.MEMBER
    created_at = factory.LazyFunction(utcnow)


class ProjectFactory(factory.Factory):
    class Meta:
        model = Project

    id = factory.LazyFunction(uuid.uuid4)
    name = factory.Sequence(lambda n: f"Project {n}")
    description = ""
    created_at = factory.LazyFunction(utcnow)
    updated_at = factory.LazyFunction(utcnow)


class ProjectMemberFactory(factory.Factory):
    class Meta:
        model = ProjectMember

    role = ProjectRole.EDITOR
    created_at = factory.LazyFunction(utcnow)


class TaskFactory(factory.Factory):
    class Meta:
        model = Task

    id = factory.LazyFunction(uuid.uuid4)
    title = factory.Sequence(lambda n: f"Task {n}")
    description = ""
    created_at = factory.LazyFunction(utcnow)
    updated_at = factory.LazyFunction(utcnow)


def _tenant_of(obj: object) -> uuid.UUID | None:
    return obj.tenant_id if isinstance(obj, TenantScoped) else None


async def persist(session: AsyncSession, *objects: ModelT) -> ModelT:
    """Add and commit, in order, each run of one tenant's rows in that tenant's context (global
    rows in the session's own); returns the first object (the usual one-object case)."""
    context = current_tenant_id(session)
    for tenant_id, run in groupby(objects, key=_tenant_of):
        if tenant_id is not None and tenant_id != current_tenant_id(session):
            await enter_tenant(session, tenant_id)
        session.add_all(list(run))
        await session.commit()
    if current_tenant_id(session) != context:
        if context is None:
            await session.run_sync(leave_tenant_sync)
        else:
            await enter_tenant(session, context)
    return objects[0]
