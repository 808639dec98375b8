"""Invitation mail: sent after the commit; a failed delivery keeps the invitation, which can be
resent; the console backend in production logs no token."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from fastapi import FastAPI

from backend.core.config import EmailBackend, Environment, Settings
from backend.core.mail import Mailer, finish_deliveries
from tests.harness.postgres import free_port
from tests.harness.smtp import Mailbox
from tests.invitations.helpers import invite, mailed_token
from tests.world import TenantWorld

GRACE = "grace@example.com"


@contextmanager
def mailer_of(app: FastAPI, settings: Settings) -> Iterator[None]:
    """Swap the app's mailer for one built from `settings`, for the block."""
    kept = app.state.mailer
    app.state.mailer = Mailer(settings)
    try:
        yield
    finally:
        app.state.mailer = kept


async def test_a_failed_delivery_keeps_the_invitation_which_can_be_resent(
    app: FastAPI,
    client: httpx.AsyncClient,
    acme: TenantWorld,
    settings: Settings,
    mailbox: Mailbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed_port = settings.model_copy(update={"smtp_port": free_port(), "smtp_timeout_seconds": 2})
    with mailer_of(app, closed_port):
        created = await invite(client, app, acme, "olive", GRACE)

    assert created.status_code == 201
    await finish_deliveries()
    assert [r for r in caplog.records if r.getMessage() == "mail delivery failed"]
    assert mailbox.to(GRACE) == []
    listed = await client.get(f"{acme.url}/invitations", headers=acme.headers(app, "olive"))
    assert [item["status"] for item in listed.json()["items"]] == ["pending"]

    resent = await client.post(
        f"{acme.url}/invitations/{created.json()['id']}/resend",
        headers=acme.headers(app, "olive"),
    )
    assert resent.status_code == 200
    token = await mailed_token(mailbox, GRACE)
    assert (await client.get(f"/api/v1/invitations/{token}")).status_code == 200


async def test_nothing_is_mailed_when_the_invitation_is_refused(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld, mailbox: Mailbox
) -> None:
    assert (await invite(client, app, acme, "olive", GRACE)).status_code == 201
    assert (await invite(client, app, acme, "olive", GRACE)).status_code == 409
    assert len(await mailbox.wait_for(GRACE)) == 1


async def test_the_console_backend_in_production_logs_the_mail_but_no_token(
    app: FastAPI,
    client: httpx.AsyncClient,
    acme: TenantWorld,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    production = settings.model_copy(
        update={"environment": Environment.PRODUCTION, "email_backend": EmailBackend.CONSOLE}
    )
    caplog.set_level(logging.INFO)
    with mailer_of(app, production):
        assert (await invite(client, app, acme, "olive", GRACE)).status_code == 201
        # Delivery runs in the background once the request's transaction has committed.
        await finish_deliveries()

    [logged] = [r for r in caplog.records if r.getMessage() == "mail (console backend)"]
    assert logged.__dict__["mail_to"] == GRACE
    assert "body" not in logged.__dict__
    everything = " ".join(str(vars(record)) for record in caplog.records)
    assert f"{acme.id.hex}." not in everything  # the token's first part
    assert "token=" not in everything
