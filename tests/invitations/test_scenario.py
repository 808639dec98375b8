"""Issue 5, "Done when", tried as new users would, against the app on a real port:

a project owner invites two emails (one with an account, one without); one accepts by API, the
other in Chromium from the link in the mail received; each lands with the right roles; replaying
and resending behave.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession

from tenants.roles import ProjectRole, TenantRole
from tests.auth import bearer
from tests.conftest import screenshot_path
from tests.factories import UserFactory, persist
from tests.harness.live import LiveServer
from tests.harness.smtp import Mailbox
from tests.invitations.helpers import link_in, token_in
from tests.world import build_tenant

pytestmark = pytest.mark.browser

CAROL_PASSWORD = "carol's long passphrase"


async def test_a_project_owner_brings_two_people_in_by_email(
    app: FastAPI, db: AsyncSession, live_server: LiveServer, page: Page, mailbox: Mailbox
) -> None:
    # Pat is a plain member of Acme who owns the project Apollo. Bob has an account; Carol not.
    acme = await build_tenant(db, "acme", members={"pat": TenantRole.MEMBER})
    await acme.add_project(db, "Apollo", members={"pat": ProjectRole.OWNER})
    bob = await persist(db, UserFactory(email="bob@example.com", full_name="Bob"))
    live = live_server.app
    pat = acme.headers(live, "pat")
    apollo = acme.project_url("Apollo")

    async with httpx.AsyncClient(base_url=live_server.url) as api:
        # Pat invites both into Apollo.
        for email, role in (("Bob@Example.com", "editor"), ("carol@example.com", "viewer")):
            invited = await api.post(
                f"{apollo}/invitations", json={"email": email, "role": role}, headers=pat
            )
            assert invited.status_code == 201, invited.text
        [bob_mail] = await mailbox.wait_for("bob@example.com")
        [carol_mail] = await mailbox.wait_for("carol@example.com")

        # Bob, signed in, accepts by API with the token from his mail.
        bob_token = token_in(bob_mail)
        accepted = await api.post(
            "/api/v1/invitations/accept", json={"token": bob_token}, headers=bearer(live, bob)
        )
        assert accepted.status_code == 200, accepted.text

        # Carol opens the link from her mail in Chromium and creates her account there.
        carol_link = link_in(carol_mail)
        await page.goto(carol_link)
        await expect(page.locator("#summary")).to_contain_text("pat invited you to join Acme")
        await page.fill("#new-account-name", "Carol")
        await page.fill("#new-account-password", CAROL_PASSWORD)
        await page.screenshot(path=screenshot_path("invitation-scenario-form"))
        await page.click("text=Create my account and accept")
        await expect(page.locator("#accepted")).to_contain_text(
            "You are now viewer of Acme, and viewer of the project acme Apollo"
        )
        await page.screenshot(path=screenshot_path("invitation-scenario-accepted"))

        # Each landed with the right roles: Bob a member and editor, Carol a viewer twice.
        members = await api.get(f"{acme.url}/members", headers=pat)
        roles = {m["email"]: m["role"] for m in members.json()["items"]}
        assert roles == {acme.users["pat"].email: "member", "bob@example.com": "member",
                         "carol@example.com": "viewer"}  # fmt: skip
        team = await api.get(f"{apollo}/members", headers=pat)
        project_roles = {m["email"]: m["role"] for m in team.json()["items"]}
        assert project_roles == {acme.users["pat"].email: "owner", "bob@example.com": "editor",
                                 "carol@example.com": "viewer"}  # fmt: skip

        # Carol's new account works: she signs in and sees Acme.
        form = {"grant_type": "password", "username": "carol@example.com",
                "password": CAROL_PASSWORD, "client_id": "web"}  # fmt: skip
        signed_in = await api.post("/oauth/token", data=form)
        assert signed_in.status_code == 200, signed_in.text
        me = await api.get(
            "/api/v1/users/me",
            headers={"Authorization": f"Bearer {signed_in.json()['access_token']}"},
        )
        assert me.json()["email_verified_at"] is not None
        assert [m["role"] for m in me.json()["memberships"]] == ["viewer"]

        # Replaying: both tokens are spent.
        replay = await api.post(
            "/api/v1/invitations/accept", json={"token": bob_token}, headers=bearer(live, bob)
        )
        assert replay.status_code == 410
        await page.goto(carol_link)
        await expect(page.locator("#error")).to_contain_text("accepted already")

        # Resending: an accepted invitation cannot be; a pending one gets a new link, and the
        # first link stops working.
        listing = await api.get(
            f"{acme.url}/invitations?project_id={acme.projects['Apollo'].id}", headers=pat
        )
        bob_invitation = next(i for i in listing.json()["items"] if i["email"] == "bob@example.com")
        resend_accepted = await api.post(
            f"{acme.url}/invitations/{bob_invitation['id']}/resend", headers=pat
        )
        assert resend_accepted.status_code == 409
        dave = await api.post(
            f"{apollo}/invitations",
            json={"email": "dave@example.com", "role": "editor"},
            headers=pat,
        )
        resent = await api.post(f"{acme.url}/invitations/{dave.json()['id']}/resend", headers=pat)
        assert resent.status_code == 200
        first, second = await mailbox.wait_for("dave@example.com", count=2)
        await page.goto(link_in(first))
        await expect(page.locator("#error")).to_contain_text("not valid")
        await page.goto(link_in(second))
        await expect(page.locator("h1")).to_have_text("Join Acme")
