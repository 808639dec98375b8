"""SQL per request on the invitation routes: no statement the request does not need.

The invitation is read once per request (the acceptance page included), a status change is one
`UPDATE ... RETURNING` with no read-back, and a new invitation's mail is written from the rows the
access query loaded. Counted as in tests/tenancy/test_query_counts.py (`SET LOCAL` is ignored).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from tests.auth import bearer
from tests.factories import DEFAULT_PASSWORD, UserFactory, persist
from tests.harness.smtp import Mailbox
from tests.invitations.helpers import invite, invite_to_project, mailed_token
from tests.invitations.test_page import SAME_ORIGIN, csrf_token_of, open_page
from tests.queries import counting_queries
from tests.world import TenantWorld

GRACE = "grace@example.com"
HENRY = "henry@example.com"
PASSWORD = "a long unguessable secret"
PAGE = "/invitations/accept"


async def counted(
    app: FastAPI, send: Callable[[], Awaitable[httpx.Response]], expected_status: int
) -> list[str]:
    with counting_queries(app.state.database.engine) as statements:
        response = await send()
    assert response.status_code == expected_status, response.text
    return statements


def _normal(statement: str) -> str:
    return " ".join(statement.split()).upper()


def invitation_reads(statements: list[str]) -> int:
    """SELECTs of invitation rows (the details lookup, or a refresh after a write)."""
    return sum(
        _normal(s).startswith("SELECT INVITATIONS.TENANT_ID, INVITATIONS.ID") for s in statements
    )


def assert_no_read_back(statements: list[str]) -> None:
    """Nothing reads the invitation again after the UPDATE that changed its status."""
    updates = [i for i, s in enumerate(statements) if _normal(s).startswith("UPDATE INVITATIONS")]
    assert updates, statements
    assert "RETURNING" in _normal(statements[updates[-1]]), statements[updates[-1]]
    assert invitation_reads(statements[updates[-1] + 1 :]) == 0, statements


@pytest.mark.parametrize(
    ("target", "queries"),
    [
        # access, invitee's account, expire lapsed + find pending, insert, audit, outbox event
        ("tenant", 7),
        # the same, and the project with the caller's role on it
        ("project via tenant route", 8),
        # the project comes with ProjectAccess
        ("project route", 7),
    ],
)
async def test_inviting_reads_nothing_back_for_the_mail(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld, target: str, queries: int
) -> None:
    apollo = acme.projects["Apollo"].id
    sends = {
        "tenant": lambda: invite(client, app, acme, "olive", GRACE),
        "project via tenant route": lambda: invite(
            client, app, acme, "olive", GRACE, project_id=apollo, project_role="editor"
        ),
        "project route": lambda: invite_to_project(client, app, acme, "pat", GRACE),
    }

    statements = await counted(app, sends[target], 201)

    assert invitation_reads(statements) == 0, statements
    assert len(statements) <= queries, statements


async def test_resending_and_revoking_write_the_status_in_one_round_trip(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    created = await invite(client, app, acme, "olive", GRACE)
    url = f"{acme.url}/invitations/{created.json()['id']}"
    headers = acme.headers(app, "olive")

    resent = await counted(app, lambda: client.post(f"{url}/resend", headers=headers), 200)
    revoked = await counted(app, lambda: client.delete(url, headers=headers), 204)

    # access, invitation, invitee's account, UPDATE ... RETURNING, audit, details for the mail
    # (the resend's mail names the first inviter, whom nothing else in the request loads)
    assert len(resent) <= 6, resent
    assert invitation_reads(resent) <= 2, resent
    # access, invitation, UPDATE ... RETURNING, audit
    assert len(revoked) <= 4, revoked
    assert_no_read_back(revoked)


async def test_accepting_through_the_api_claims_without_reading_back(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: AsyncSession,
    acme: TenantWorld,
    mailbox: Mailbox,
) -> None:
    grace = await persist(db, UserFactory(email=GRACE))
    await invite_to_project(client, app, acme, "pat", GRACE)
    token = await mailed_token(mailbox, GRACE)
    await invite_to_project(client, app, acme, "pat", HENRY)
    new_token = await mailed_token(mailbox, HENRY)

    signed_in = await counted(
        app,
        lambda: client.post(
            "/api/v1/invitations/accept", json={"token": token}, headers=bearer(app, grace)
        ),
        200,
    )
    body = {"token": new_token, "full_name": "Henry", "password": PASSWORD}
    new_user = await counted(
        app, lambda: client.post("/api/v1/invitations/accept-new-user", json=body), 201
    )

    for statements in (signed_in, new_user):
        assert invitation_reads(statements) <= 1, statements
        assert_no_read_back(statements)
    # ... and the outbox events of the acceptance and of the new membership
    assert len(signed_in) <= 13, signed_in
    assert len(new_user) <= 14, new_user  # the account's email check and INSERT, no user read


async def test_the_page_reads_the_invitation_once_per_request(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: AsyncSession,
    acme: TenantWorld,
    mailbox: Mailbox,
) -> None:
    await persist(db, UserFactory(email=GRACE))
    await invite_to_project(client, app, acme, "pat", GRACE)
    token = await mailed_token(mailbox, GRACE)
    await invite_to_project(client, app, acme, "pat", HENRY)
    new_token = await mailed_token(mailbox, HENRY)

    shown = await counted(app, lambda: client.get(PAGE, params={"token": token}), 200)
    form = await open_page(client, token)
    data = {"token": token, "csrf_token": csrf_token_of(form), "password": DEFAULT_PASSWORD}
    signed_in = await counted(
        app, lambda: client.post(f"{PAGE}/sign-in", data=data, headers=SAME_ORIGIN), 200
    )
    form = await open_page(client, new_token)
    data = {
        "token": new_token,
        "csrf_token": csrf_token_of(form),
        "full_name": "Henry",
        "password": PASSWORD,
    }
    new_account = await counted(
        app, lambda: client.post(f"{PAGE}/new-account", data=data, headers=SAME_ORIGIN), 200
    )

    assert len(shown) <= 1, shown
    for statements in (signed_in, new_account):
        assert invitation_reads(statements) <= 1, statements
        assert_no_read_back(statements)
    # the same as through the API: the page's own lookup replaces the API's
    assert len(signed_in) <= 13, signed_in
    assert len(new_account) <= 14, new_account
