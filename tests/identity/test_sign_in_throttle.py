"""Throttling that a stranger cannot turn against a user, at every door that checks a password:
the token endpoint, the admin login, the invitation page, the password change and the account
erasure.

Only failures count. An address gets LOGIN_RATE_LIMIT failures (10/minute here); an account gets
LOGIN_ACCOUNT_FAILURE_BUDGET failures across addresses (50/hour here), after which only addresses
it has signed in from lately may still try.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.database import utcnow
from backend.identity.models import User
from backend.invitations.models import Invitation
from backend.invitations.tokens import issue_token
from tenants.isolation import enter_tenant
from tenants.roles import TenantRole
from tests.admin.conftest import AdminBrowser
from tests.auth import bearer
from tests.factories import DEFAULT_PASSWORD, TenantFactory, UserFactory, persist
from tests.identity.conftest import http_client, sign_in

OWNER = "owner@example.com"
HOME = "198.51.100.7"  # where the owner signed in last
WRONG = "a wrong guess at it"
LIMITS = {"login_rate_limit": "10/minute", "login_account_failure_budget": "50/hour"}


def stranger(n: int) -> str:
    return f"203.0.113.{n}"


@dataclass
class Door:
    """One way to try the owner's password; `ok` and `refused` are its answers to right and
    wrong passwords."""

    name: str
    ok: int
    refused: int
    attempt: Callable[[FastAPI, str, str], Awaitable[httpx.Response]]


async def _token_endpoint(app: FastAPI, address: str, password: str) -> httpx.Response:
    async with http_client(app, address) as http:
        return await sign_in(http, OWNER, password)


async def _admin_login(app: FastAPI, address: str, password: str) -> httpx.Response:
    async with http_client(app, address) as http:
        return await AdminBrowser(http).login(OWNER, password)


async def _password_change(app: FastAPI, address: str, password: str) -> httpx.Response:
    owner: User = app.state.test_owner
    body = {"current_password": password, "new_password": DEFAULT_PASSWORD}
    async with http_client(app, address) as http:
        return await http.post("/api/v1/users/me/password", json=body, headers=bearer(app, owner))


async def _account_erasure(app: FastAPI, address: str, password: str) -> httpx.Response:
    """The owner is a platform admin, whose account is not erased this way: 403 once the
    password is right."""
    owner: User = app.state.test_owner
    async with http_client(app, address) as http:
        return await http.request(
            "DELETE", "/api/v1/users/me", json={"password": password}, headers=bearer(app, owner)
        )


async def _invitation_page(app: FastAPI, address: str, password: str) -> httpx.Response:
    token = app.state.test_invitation_token
    async with http_client(app, address) as http:
        page = await http.get("/invitations/accept", params={"token": token})
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf, page.text
        data = {"token": token, "csrf_token": csrf.group(1), "password": password}
        headers = {"Origin": "https://testserver"}
        return await http.post("/invitations/accept/sign-in", data=data, headers=headers)


DOORS = [
    Door("token endpoint", 200, 400, _token_endpoint),
    Door("admin login", 302, 400, _admin_login),
    Door("invitation page", 200, 400, _invitation_page),
    Door("password change", 204, 400, _password_change),
    Door("account erasure", 403, 400, _account_erasure),
]


@pytest.fixture
async def owner_app(
    reconfigured, db: AsyncSession, owner_db: AsyncSession
) -> AsyncIterator[FastAPI]:
    """The app with the default limits, fresh counters, and the owner: a platform admin with a
    pending invitation, who last signed in from HOME."""
    # Only the schema owner makes superusers (`tenantdesk create-superuser`).
    owner = await persist(owner_db, UserFactory(email=OWNER, is_superuser=True))
    tenant = await persist(db, TenantFactory(slug="acme", name="Acme"))
    await enter_tenant(db, tenant.id)
    token = issue_token(tenant.id)
    invitation = Invitation(
        id=uuid.uuid4(),
        email=OWNER,
        role=TenantRole.MEMBER,
        token_hash=token.hash,
        expires_at=utcnow() + timedelta(days=7),
    )
    await persist(db, invitation)
    async with reconfigured(**LIMITS) as app:
        app.state.test_owner, app.state.test_invitation_token = owner, token.value
        assert (await _token_endpoint(app, HOME, DEFAULT_PASSWORD)).status_code == 200
        try:
            yield app
        finally:
            del app.state.test_owner, app.state.test_invitation_token


async def test_the_reported_lockout_no_longer_works(owner_app: FastAPI) -> None:
    """10 wrong grants, each from another address, then the right password from an 11th."""
    wrong = [await _token_endpoint(owner_app, stranger(n), WRONG) for n in range(10)]
    right = await _token_endpoint(owner_app, stranger(99), DEFAULT_PASSWORD)

    assert {answer.status_code for answer in wrong} == {400}
    assert right.status_code == 200, right.text


async def test_thirty_strangers_leave_the_owner_signing_in_from_home(owner_app: FastAPI) -> None:
    wrong = [await _token_endpoint(owner_app, stranger(n), WRONG) for n in range(30)]
    home = await _token_endpoint(owner_app, HOME, DEFAULT_PASSWORD)

    assert {answer.status_code for answer in wrong} == {400}
    assert home.status_code == 200, home.text


@pytest.mark.parametrize("door", DOORS, ids=lambda door: door.name)
async def test_past_the_account_budget_only_known_addresses_may_try(
    owner_app: FastAPI, door: Door
) -> None:
    """The budget is shared by every door; the owner was last seen at HOME (token endpoint)."""
    wrong = [await door.attempt(owner_app, stranger(n), WRONG) for n in range(50)]
    elsewhere = await door.attempt(owner_app, stranger(200), DEFAULT_PASSWORD)
    home = await door.attempt(owner_app, HOME, DEFAULT_PASSWORD)

    assert {answer.status_code for answer in wrong} == {door.refused}
    assert elsewhere.status_code == 429
    assert int(elsewhere.headers["retry-after"]) > 0
    assert home.status_code == door.ok, home.text


@pytest.mark.parametrize("door", DOORS, ids=lambda door: door.name)
async def test_the_eleventh_failure_from_one_address_waits(owner_app: FastAPI, door: Door) -> None:
    wrong = [await door.attempt(owner_app, stranger(1), WRONG) for _ in range(10)]
    eleventh = await door.attempt(owner_app, stranger(1), DEFAULT_PASSWORD)
    another_account = await _other_account_attempt(owner_app, stranger(1))
    other_address = await door.attempt(owner_app, HOME, DEFAULT_PASSWORD)

    assert {answer.status_code for answer in wrong} == {door.refused}
    assert eleventh.status_code == 429
    assert 0 < int(eleventh.headers["retry-after"]) <= 60
    assert another_account.status_code == 429  # the address is spent, whichever account
    assert other_address.status_code == door.ok


async def _other_account_attempt(app: FastAPI, address: str) -> httpx.Response:
    async with http_client(app, address) as http:
        return await sign_in(http, "someone.else@example.com", WRONG)


@pytest.mark.parametrize(
    "door", [door for door in DOORS if door.name != "invitation page"], ids=lambda d: d.name
)
async def test_successes_are_not_counted(owner_app: FastAPI, door: Door) -> None:
    """(Accepting an invitation succeeds once only, so that door is left out here.)"""
    answers = [await door.attempt(owner_app, stranger(5), DEFAULT_PASSWORD) for _ in range(15)]
    assert {answer.status_code for answer in answers} == {door.ok}


async def test_concurrent_guesses_cannot_outrun_the_count(owner_app: FastAPI) -> None:
    """Every attempt is counted when it starts, so a burst does not all pass the check."""
    answers = await asyncio.gather(
        *(_token_endpoint(owner_app, stranger(9), WRONG) for _ in range(25))
    )
    codes = sorted(answer.status_code for answer in answers)
    assert codes.count(400) == 10
    assert codes.count(429) == 15


async def test_a_known_address_is_remembered_for_thirty_days(owner_app: FastAPI) -> None:
    storage = owner_app.state.sign_in_throttle.storage
    expires_at = await storage.get_expiry(f"signin:known:{OWNER}:{HOME}")
    days_left = (expires_at - utcnow().timestamp()) / 86_400
    assert 29.9 < days_left <= 30
