"""Every list, details, create and edit page renders (everything it shows is eager-loaded), and
no page or export ever shows a hash or a secret."""

from __future__ import annotations

import re

import pytest
from sqladmin.helpers import get_object_identifier
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from admin.base import SECRET_COLUMNS, AdminView
from admin.setup import MODEL_VIEWS
from backend.core.audit import Actor
from backend.identity.models import ClientRole, User
from backend.main import create_app
from tenants.audit import record_audit
from tenants.isolation import enter_tenant
from tenants.roles import TenantRole
from tests.admin.conftest import AdminBrowser, AdminWorld
from tests.admin.test_tenant_scoping import TENANT_VIEWS
from tests.cross_tenant import cross_tenant
from tests.factories import PlatformAuditEventFactory, RefreshTokenFactory, persist

VIEWS = {view.identity: view for view in MODEL_VIEWS}
WRITABLE = ["tenant", "membership", "project", "project-member", "task", "user"]


@pytest.fixture
async def full_world(world: AdminWorld, db: AsyncSession) -> AdminWorld:
    """One row at least in every table, the secret-bearing ones included."""
    client = await world.acme.add_client(db, "bot", ClientRole.MEMBER)
    await world.acme.add_api_key(db, "mia", TenantRole.MEMBER)
    await persist(
        db,
        RefreshTokenFactory(user=world.acme.users["olive"], client=client),
        PlatformAuditEventFactory(
            actor=world.root, action="test", target_type="t", target_id="1", data={}
        ),
    )
    await enter_tenant(db, world.acme.id)
    record_audit(db, Actor(user_id=world.root.id), "test", "t", "1", {"k": "v"})
    await db.commit()
    return world


async def first_identifier(db: AsyncSession, view: str) -> str:
    async with cross_tenant(db, "test arrangement"):
        row = (await db.scalars(select(VIEWS[view].model).limit(1))).first()
    assert row is not None, view
    return str(get_object_identifier(row))


async def secrets_in_db(db: AsyncSession) -> set[str]:
    """Every stored hash: none may appear on any admin page."""
    found: set[str] = set()
    async with cross_tenant(db, "test arrangement"):
        for view in MODEL_VIEWS:
            for name in SECRET_COLUMNS & set(view.model.__table__.c.keys()):
                column = view.model.__table__.c[name]
                found |= {value for value in await db.scalars(select(column)) if value}
    return found


def assert_no_secret(page: str, secrets: set[str]) -> None:
    assert "$argon2" not in page
    for secret in secrets:
        assert secret not in page
    assert not re.search(r"(password|token|client_secret)_hash", page)


@pytest.mark.parametrize("view", list(VIEWS))
async def test_every_page_renders_for_a_superuser(
    browser_client: AdminBrowser, full_world: AdminWorld, db: AsyncSession, view: str
) -> None:
    secrets = await secrets_in_db(db)
    await browser_client.login("root@example.com")
    pk = await first_identifier(db, view)
    pages = [f"/admin/{view}/list", f"/admin/{view}/details/{pk}", f"/admin/{view}/export/csv"]
    pages.append(f"/admin/{view}/export/json")
    if view in WRITABLE:
        pages.append(f"/admin/{view}/edit/{pk}")
    if VIEWS[view].can_create:
        pages.append(f"/admin/{view}/create")
    for url in pages:
        response = await browser_client.get(url)
        assert response.status_code == 200, url
        assert_no_secret(response.text, secrets)


@pytest.mark.parametrize("view", TENANT_VIEWS)
async def test_every_page_of_the_tenant_view_renders_for_a_tenant_owner(
    browser_client: AdminBrowser, full_world: AdminWorld, db: AsyncSession, view: str
) -> None:
    secrets = await secrets_in_db(db)
    await browser_client.login("olive.acme@example.com")
    page = await browser_client.get(f"/admin/{view}/list")
    assert page.status_code == 200
    for url in re.findall(rf'href="https://testserver(/admin/{view}/details/[^"]+)"', page.text):
        details = await browser_client.get(url)
        assert details.status_code == 200, url
        assert_no_secret(details.text, secrets)
    if view in ("project", "project-member", "task"):
        assert (await browser_client.get(f"/admin/{view}/create")).status_code == 200


def test_a_view_that_would_show_a_secret_refuses_to_start() -> None:
    class LeakyUsers(AdminView, model=User):
        column_details_list = [User.email, User.password_hash]

    with pytest.raises(TypeError, match="password_hash"):
        LeakyUsers()


def test_every_view_starts() -> None:
    for view in MODEL_VIEWS:
        view()


def test_two_apps_in_one_process_keep_their_own_views(settings) -> None:
    """SQLAdmin configures views through class attributes; each app gets its own classes, or a
    second app (the live server) would take over the first one's sessions."""
    first, second = create_app(settings), create_app(settings)
    for mine, theirs in zip(first.state.admin.views, second.state.admin.views, strict=True):
        assert type(mine) is not type(theirs)
        assert mine._admin_ref.main_app is first
        if isinstance(mine, AdminView):
            assert mine.session_maker is not theirs.session_maker
