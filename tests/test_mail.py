"""The mail service: real SMTP delivery, console logging, failures that break nothing, and
mail that is only sent once the request's transaction has committed."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.config import Environment, Settings
from backend.core.database import DbSession
from backend.core.dependencies import AppMailer
from backend.core.errors import Conflict
from backend.core.logging import JsonFormatter, set_request_id
from backend.core.mail import Mail, Mailer, finish_deliveries
from tenants.models import Tenant
from tests.factories import TenantFactory
from tests.harness.postgres import free_port
from tests.harness.smtp import Mailbox

MESSAGE = Mail(
    to="ada@example.com",
    subject="Hello",
    text="Open https://example.com/x?token=s3cret",
    html="<p>Open <a href='https://example.com/x?token=s3cret'>this</a></p>",
)


async def test_smtp_backend_delivers_text_and_html(settings: Settings, mailbox: Mailbox) -> None:
    assert await Mailer(settings).send(MESSAGE)
    (received,) = await mailbox.wait_for("ada@example.com")
    assert received["Subject"] == "Hello"
    assert received["From"] == settings.email_from
    assert "token=s3cret" in Mailbox.text_of(received)
    assert "<a href" in Mailbox.html_of(received)


async def test_a_failed_send_is_logged_with_the_request_id_and_raises_nothing(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = settings.model_copy(update={"smtp_port": free_port(), "smtp_timeout_seconds": 2})
    set_request_id("req-42")
    try:
        assert await Mailer(unreachable).send(MESSAGE) is False
    finally:
        set_request_id(None)
    failures = [r for r in caplog.records if r.getMessage() == "mail delivery failed"]
    assert failures
    assert json.loads(JsonFormatter().format(failures[0]))["request_id"] == "req-42"


@pytest.mark.parametrize("environment", [Environment.DEVELOPMENT, Environment.PRODUCTION])
async def test_console_backend_logs_no_body_and_saves_mail_only_outside_production(
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    environment: Environment,
) -> None:
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.INFO, logger="backend.core.mail")
    console = settings.model_copy(update={"email_backend": "console", "environment": environment})
    assert await Mailer(console).send(MESSAGE)
    logged = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert "ada@example.com" in logged
    assert "s3cret" not in logged
    saved = list((tmp_path / "var" / "mail").glob("*.eml"))
    if environment is Environment.PRODUCTION:
        assert saved == []
    else:
        (mail,) = saved
        assert "token=s3cret" in mail.read_text()
        assert str(mail.relative_to(tmp_path)) in logged


async def test_mail_waits_for_commit_and_a_failed_request_writes_and_sends_nothing(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, mailbox: Mailbox
) -> None:
    async def create_and_mail(slug: str, fail: bool, session: DbSession, mailer: AppMailer) -> None:
        session.add(TenantFactory(slug=slug))
        mailer.send_after_commit(session, MESSAGE)
        await session.flush()
        if fail:
            raise Conflict("Refused after writing.")

    app.add_api_route("/__test__/tenant", create_and_mail, methods=["POST"])
    try:
        failed = await client.post("/__test__/tenant", params={"slug": "rolled-back", "fail": True})
        succeeded = await client.post("/__test__/tenant", params={"slug": "kept", "fail": False})
    finally:
        app.router.routes.pop()

    assert failed.status_code == 409
    assert succeeded.status_code == 200
    slugs = (await db.scalars(select(Tenant.slug))).all()
    assert slugs == ["kept"]
    assert len(await mailbox.wait_for("ada@example.com")) == 1


async def test_mail_queued_before_an_explicit_rollback_is_never_sent(
    app: FastAPI, client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    async def queue_then_roll_back(session: DbSession, mailer: AppMailer) -> None:
        session.add(TenantFactory(slug="undone"))
        mailer.send_after_commit(session, MESSAGE)
        await session.flush()
        await session.rollback()

    app.add_api_route("/__test__/undo", queue_then_roll_back, methods=["POST"])
    try:
        assert (await client.post("/__test__/undo")).status_code == 200
    finally:
        app.router.routes.pop()
    await finish_deliveries()
    assert mailbox.to("ada@example.com") == []
