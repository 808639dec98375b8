"""Bounded input: bodies over MAX_REQUEST_BODY_BYTES are refused before they are read whole, the
OAuth endpoints take short urlencoded forms only, names hold no control characters, and a mail
that cannot be built is logged."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.mail import finish_deliveries
from tenants.models import Tenant
from tenants.roles import TenantRole
from tests.harness.service import ServiceProcess
from tests.harness.smtp import Mailbox
from tests.world import TenantWorld, build_tenant

MIB = 1024 * 1024
SIGN_UP = "/api/v1/users"


async def test_a_declared_length_over_the_limit_is_413_problem_json(
    client: httpx.AsyncClient,
) -> None:
    body = b'{"email": "a@example.com", "full_name": "' + b"x" * MIB + b'"}'
    response = await client.post(
        SIGN_UP, content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert "1048576 bytes" in response.json()["detail"]


async def test_a_streamed_body_is_cut_off_at_the_limit(client: httpx.AsyncClient) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"email": "a@example.com", "full_name": "'
        for _ in range(64):  # 4 MiB in all, with no Content-Length
            sent += 64 * 1024
            yield b"x" * (64 * 1024)

    response = await client.post(SIGN_UP, content=chunks())

    assert response.status_code == 413
    assert response.json()["status"] == 413


async def test_a_body_within_the_limit_is_served(client: httpx.AsyncClient) -> None:
    body = {"email": "ada@example.com", "password": "a long passphrase", "full_name": "Ada"}
    assert (await client.post(SIGN_UP, json=body)).status_code == 201


def _upload(url: str, *, chunked: bool, total: int = 100 * MIB) -> bytes:
    """Send a `total`-byte JSON body to sign-up over a raw socket, for as long as the server
    reads; what the server answered."""
    parts = urlsplit(url)
    connection = socket.create_connection((parts.hostname, parts.port))
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    head = (
        f"POST {SIGN_UP} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: application/json\r\n{framing}\r\n\r\n"
    )
    answer = bytearray()

    def read() -> None:
        try:
            while data := connection.recv(65536):
                answer.extend(data)
        except OSError:
            pass

    reader = threading.Thread(target=read)
    reader.start()
    chunk = b"x" * (256 * 1024)
    try:
        connection.sendall(head.encode())
        for _ in range(total // len(chunk)):
            if chunked:
                connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:
                connection.sendall(chunk)
    except OSError:
        pass  # the server answered and closed: the rest is never read
    finally:
        reader.join(timeout=30)
        connection.close()
    return bytes(answer)


def _peak_rss_during(served: ServiceProcess, upload: threading.Thread) -> int:
    peak = served.rss_bytes()
    while upload.is_alive():
        peak = max(peak, served.rss_bytes())
        time.sleep(0.01)
    return max(peak, served.rss_bytes())


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_100_mb_upload_leaves_the_workers_memory_flat(
    app: FastAPI, served: ServiceProcess, chunked: bool
) -> None:
    async with httpx.AsyncClient(base_url=served.url) as http:  # warm the sign-up path up
        await http.post(SIGN_UP, json={"email": "not an email"})
    before = served.rss_bytes()
    answers: list[bytes] = []
    upload = threading.Thread(target=lambda: answers.append(_upload(served.url, chunked=chunked)))
    upload.start()
    peak = await asyncio.to_thread(_peak_rss_during, served, upload)

    assert answers[0].startswith(b"HTTP/1.1 413 "), answers[0][:200]
    growth = peak - before
    assert growth < 20 * MIB, f"the worker grew by {growth / MIB:.1f} MiB"


async def test_the_token_endpoint_refuses_multipart(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/oauth/token",
        data={"grant_type": "password", "username": "a@example.com", "password": "x"},
        files={"upload": ("big.bin", b"x" * 1000)},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_the_token_endpoint_takes_a_few_short_fields_only(
    client: httpx.AsyncClient,
) -> None:
    many = {f"field{n}": "x" for n in range(50)}
    long_value = {"grant_type": "password", "username": "x" * 20_000}
    for form in (many, long_value):
        response = await client.post("/oauth/token", data=form)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"


@pytest.fixture
async def acme(db: AsyncSession) -> TenantWorld:
    world = await build_tenant(db, "acme", members={"olive": TenantRole.OWNER})
    await world.add_project(db, "Apollo")
    return world


CONTROL = ["Acme\r\nBcc: victim@example.com", "tab\there", "nul\x00", "\u202eevil", "esc\x1b[31m"]


@pytest.mark.parametrize("name", CONTROL)
async def test_names_with_control_characters_are_422(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld, name: str
) -> None:
    headers = acme.headers(app, "olive")
    project_url = acme.project_url("Apollo")
    answers = {
        "tenant": await client.post(
            "/api/v1/tenants", json={"name": name, "slug": "phish"}, headers=headers
        ),
        "tenant rename": await client.patch(acme.url, json={"name": name}, headers=headers),
        "project": await client.post(f"{acme.url}/projects", json={"name": name}, headers=headers),
        "task": await client.post(f"{project_url}/tasks", json={"title": name}, headers=headers),
        "full name": await client.patch(
            "/api/v1/users/me", json={"full_name": name}, headers=headers
        ),
    }
    assert {what: answer.status_code for what, answer in answers.items()} == dict.fromkeys(
        answers, 422
    )


async def test_a_mail_that_cannot_be_built_is_logged(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: AsyncSession,
    mailbox: Mailbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A tenant named before names were checked: its invitation mail would forge a header."""
    world = await build_tenant(db, "legacy", members={"olive": TenantRole.OWNER})
    legacy_name = "Legacy\r\nBcc: everyone@example.com"
    await db.execute(update(Tenant).where(Tenant.id == world.id).values(name=legacy_name))
    await db.commit()
    caplog.set_level(logging.ERROR, logger="backend.core.mail")

    response = await client.post(
        f"{world.url}/invitations",
        json={"email": "new@example.com", "role": "member"},
        headers=world.headers(app, "olive"),
    )

    assert response.status_code == 201
    await finish_deliveries()
    failures = [r for r in caplog.records if r.getMessage() == "mail could not be built"]
    assert [r.mail_to for r in failures] == ["new@example.com"]  # type: ignore[attr-defined]
    assert mailbox.messages == []
