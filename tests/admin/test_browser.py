"""The admin panel in headless Chromium: the bootstrap superuser's platform view, a tenant
owner's tenant view, and a forged cross-origin request that fails."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from admin.setup import MODEL_VIEWS
from backend.identity.bootstrap import ensure_superuser
from backend.projects.models import Project, Task
from tenants.models import Tenant, TenantStatus
from tests.admin.conftest import AdminWorld
from tests.conftest import screenshot_path
from tests.cross_tenant import cross_tenant
from tests.factories import DEFAULT_PASSWORD
from tests.harness.live import LiveServer
from tests.harness.postgres import free_port

pytestmark = pytest.mark.browser

BOOTSTRAP_EMAIL = "admin@example.com"
BOOTSTRAP_PASSWORD = "the bootstrap admin's password"


async def sign_in(page: Page, live_server: LiveServer, email: str, password: str) -> None:
    await page.goto(f"{live_server.url}/admin/")
    await expect(page).to_have_url(f"{live_server.url}/admin/login")
    await page.fill('input[name="username"]', email)
    await page.fill('input[name="password"]', password)
    await page.click('button[type="submit"]')
    await expect(page.locator("#admin-scope-name")).to_be_visible()


async def fresh(db: AsyncSession, model: type, *criteria: object) -> object:
    async with cross_tenant(db, "test assertion"):
        statement = select(model).where(*criteria).execution_options(populate_existing=True)
        return (await db.scalars(statement)).one_or_none()


async def test_the_bootstrap_superuser_opens_every_view_and_suspends_a_tenant(
    world: AdminWorld, db: AsyncSession, owner_db: AsyncSession, live_server: LiveServer, page: Page
) -> None:
    passwords = live_server.app.state.passwords
    # Bootstrap runs as the schema owner: the app role cannot make a superuser.
    assert await ensure_superuser(owner_db, passwords, BOOTSTRAP_EMAIL, BOOTSTRAP_PASSWORD)
    await owner_db.commit()
    await sign_in(page, live_server, BOOTSTRAP_EMAIL, BOOTSTRAP_PASSWORD)
    await expect(page.locator("#admin-scope-name")).to_have_text("Platform view: every tenant")

    for view in MODEL_VIEWS:
        response = await page.goto(f"{live_server.url}/admin/{view.identity}/list")
        assert response is not None
        assert response.status == 200, view.identity
        await expect(page.locator(".card-title").first).to_contain_text(view.name_plural)
        await page.screenshot(path=screenshot_path(f"admin-platform-{view.identity}"))

    await page.goto(f"{live_server.url}/admin/tenant/list")
    await page.locator("tr", has_text="Acme").locator("input.select-box").check()
    await page.click("button:has-text('Actions')")
    await page.click("#action-customconfirm-suspend")
    await page.click("#action-custom-modal-suspend")
    await expect(page.locator("table")).to_contain_text("suspended")
    await page.screenshot(path=screenshot_path("admin-platform-tenant-suspended"))
    assert (await fresh(db, Tenant, Tenant.id == world.acme.id)).status is TenantStatus.SUSPENDED


async def test_a_tenant_owner_sees_and_edits_only_their_tenant(
    world: AdminWorld, db: AsyncSession, live_server: LiveServer, page: Page
) -> None:
    await sign_in(page, live_server, "olive.acme@example.com", DEFAULT_PASSWORD)
    await expect(page.locator("#admin-scope-name")).to_have_text("Tenant: Acme (owner)")
    await expect(page.locator("#navbar-menu")).not_to_contain_text("Identity")

    await page.goto(f"{live_server.url}/admin/tenant/list")
    await expect(page.locator("tbody tr")).to_have_count(1)
    await expect(page.locator("tbody")).to_contain_text("Acme")
    await page.goto(f"{live_server.url}/admin/project/list")
    await expect(page.locator("tbody")).to_contain_text("acme Apollo")
    await expect(page.locator("tbody")).not_to_contain_text("globex")
    await page.screenshot(path=screenshot_path("admin-tenant-owner-projects"))

    # A form posted from the panel's own page carries the token the page added.
    apollo = world.acme.projects["Apollo"]
    await page.goto(f"{live_server.url}/admin/project/edit/{world.pk(apollo)}")
    await page.fill('input[name="name"]', "Apollo 11")
    await page.click("input[value='Save']")
    await expect(page.locator("tbody")).to_contain_text("Apollo 11")
    assert (await fresh(db, Project, Project.id == apollo.id)).name == "Apollo 11"

    # And so does SQLAdmin's DELETE request.
    task = world.acme.tasks[0]
    await page.goto(f"{live_server.url}/admin/task/details/{world.pk(task)}")
    await page.click("a:has-text('Delete')")
    # SQLAdmin hands the URL to the modal's button once the modal is shown.
    confirm = page.locator("#modal-delete-button")
    await expect(confirm).to_have_attribute("data-url", re.compile("/admin/task/delete"))
    await confirm.click()
    await expect(page).to_have_url(f"{live_server.url}/admin/task/list")
    assert await fresh(db, Task, Task.id == task.id) is None
    await page.screenshot(path=screenshot_path("admin-tenant-owner-after-delete"))


@contextmanager
def page_on_another_origin(html: str) -> Iterator[str]:
    """Serve `html` from another local port: another origin to the browser (the same site,
    so the SameSite cookie is still sent: only the CSRF guard stands in the way)."""
    body = html.encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


async def test_a_forged_cross_origin_request_fails_in_chromium(
    world: AdminWorld, db: AsyncSession, live_server: LiveServer, page: Page
) -> None:
    await sign_in(page, live_server, "root@example.com", DEFAULT_PASSWORD)
    target = f"{live_server.url}/admin/tenant/edit/{world.acme.id}"
    forged_form = f"""<!doctype html><html><body>
      <form method="POST" action="{target}">
        <input name="name" value="Hacked"><input name="slug" value="hacked">
        <input name="csrf_token" value="guessed"><input name="save" value="Save">
      </form>
      <script>document.forms[0].submit()</script>
    </body></html>"""
    with page_on_another_origin(forged_form) as evil:
        await page.goto(evil)
        await expect(page).to_have_url(target)
        await expect(page.locator("body")).to_contain_text("Forbidden")
        await page.screenshot(path=screenshot_path("admin-forged-cross-origin-post"))

    action = f"{live_server.url}/admin/tenant/action/suspend?pks={world.acme.id}"
    forged_link = f'<!doctype html><script>location.href = "{action}"</script>'
    with page_on_another_origin(forged_link) as evil:
        await page.goto(evil)
        await expect(page.locator("body")).to_contain_text("Forbidden")

    acme = await fresh(db, Tenant, Tenant.id == world.acme.id)
    assert (acme.name, acme.status) == ("Acme", TenantStatus.ACTIVE)
    # The session itself was fine all along: the panel still works for its own pages.
    await page.goto(f"{live_server.url}/admin/tenant/list")
    await expect(page.locator("tbody")).to_contain_text("Acme")
