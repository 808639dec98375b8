"""Nothing secret reaches the logs, even at DEBUG: passwords, tokens, client secrets."""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.logging import JsonFormatter
from backend.identity.models import User
from tests.factories import DEFAULT_PASSWORD
from tests.harness.smtp import Mailbox
from tests.identity.conftest import create_service_client, refresh, sign_in, tokens_for
from tests.identity.test_client_credentials import CLIENT_CREDENTIALS, basic


async def test_token_flows_log_no_secret(
    client: httpx.AsyncClient,
    db: AsyncSession,
    mailbox: Mailbox,
    user: User,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    row, secret = await create_service_client(db)
    first = await tokens_for(client, user)
    second = (await refresh(client, first["refresh_token"])).json()
    await refresh(client, first["refresh_token"])  # a replay, which is logged
    await sign_in(client, user.email, "a wrong password here")
    service = await client.post(
        "/oauth/token", data=CLIENT_CREDENTIALS, headers=basic(row.client_id, secret)
    )
    await client.post("/api/v1/users/password-reset", json={"email": user.email})
    await mailbox.wait_for(user.email)

    logged = "\n".join(JsonFormatter().format(record) for record in caplog.records)
    assert "refresh token replayed" in logged
    secrets = [
        DEFAULT_PASSWORD,
        "a wrong password here",
        secret,
        first["access_token"],
        first["refresh_token"],
        second["access_token"],
        second["refresh_token"],
        service.json()["access_token"],
    ]
    for value in secrets:
        assert value not in logged
