"""grant_type=refresh_token: opaque, hashed, rotated on every use, replay kills the family."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.database import utcnow
from backend.core.secrets import hash_token
from backend.identity.models import RefreshToken, User
from tests.factories import OAuthClientFactory, persist
from tests.identity.conftest import auth, refresh, tokens_for


async def _family(db: AsyncSession, user: User) -> list[RefreshToken]:
    user_id = user.id
    db.expire_all()
    rows = await db.scalars(
        select(RefreshToken).where(RefreshToken.user_id == user_id).order_by(RefreshToken.issued_at)
    )
    return list(rows)


async def test_a_refresh_rotates_the_token_and_keeps_the_familys_expiry(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, user: User
) -> None:
    first = await tokens_for(client, user)

    response = await refresh(client, first["refresh_token"])

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    second = response.json()
    assert set(second) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert second["refresh_token"] != first["refresh_token"]
    old, new = await _family(db, user)
    assert old.rotated_at is not None
    assert new.rotated_at is None
    assert old.family_id == new.family_id
    assert old.expires_at == new.expires_at
    ttl = app.state.settings.refresh_token_ttl_seconds
    assert abs((old.expires_at - old.issued_at).total_seconds() - ttl) < 5
    # Stored as SHA-256 only.
    assert {old.token_hash, new.token_hash} == {
        hash_token(first["refresh_token"]),
        hash_token(second["refresh_token"]),
    }
    claims = app.state.key_ring.verify_access_token(second["access_token"])
    assert claims.session_id == str(old.family_id)
    assert (await client.get("/api/v1/users/me", headers=auth(second["access_token"]))).is_success


async def test_replaying_a_rotated_token_revokes_the_whole_family(
    client: httpx.AsyncClient, db: AsyncSession, user: User
) -> None:
    first = await tokens_for(client, user)
    second = (await refresh(client, first["refresh_token"])).json()

    replay = await refresh(client, first["refresh_token"])

    assert replay.status_code == 400
    assert replay.json() == {
        "error": "invalid_grant",
        "error_description": "The refresh token is not valid.",
    }
    # Committed although the request failed: the live token of the family is dead too...
    assert all(row.revoked_at is not None for row in await _family(db, user))
    after = await refresh(client, second["refresh_token"])
    assert after.status_code == 400
    assert after.json()["error"] == "invalid_grant"
    # ...and so are the family's access tokens, at once.
    me = await client.get("/api/v1/users/me", headers=auth(second["access_token"]))
    assert me.status_code == 401


async def test_a_replay_leaves_the_users_other_sessions_alone(
    client: httpx.AsyncClient, user: User
) -> None:
    laptop = await tokens_for(client, user)
    phone = await tokens_for(client, user)
    await refresh(client, laptop["refresh_token"])

    await refresh(client, laptop["refresh_token"])

    assert (await refresh(client, phone["refresh_token"])).status_code == 200


async def test_two_concurrent_refreshes_with_one_token_give_exactly_one_success(
    client: httpx.AsyncClient, db: AsyncSession, user: User
) -> None:
    for _ in range(3):
        tokens = await tokens_for(client, user)

        answers = await asyncio.gather(
            *(refresh(client, tokens["refresh_token"]) for _ in range(2))
        )

        assert sorted(answer.status_code for answer in answers) == [200, 400]
        [winner] = [answer for answer in answers if answer.status_code == 200]
        [loser] = [answer for answer in answers if answer.status_code == 400]
        assert loser.json()["error"] == "invalid_grant"
        # A second presentation of one token is a replay, however close in time: whether the
        # loser lost the compare-and-set or read the token already spent, the family ends.
        assert (await refresh(client, winner.json()["refresh_token"])).status_code == 400
    family_sizes = await db.execute(
        select(RefreshToken.family_id, func.count()).group_by(RefreshToken.family_id)
    )
    assert sorted(size for _family_id, size in family_sizes) == [2, 2, 2]
    assert all(row.revoked_at is not None for row in await _family(db, user))


async def test_an_expired_family_cannot_be_refreshed(
    client: httpx.AsyncClient, harness_db: AsyncSession, user: User
) -> None:
    tokens = await tokens_for(client, user)
    expired = utcnow() - timedelta(seconds=1)
    await harness_db.execute(update(RefreshToken).values(expires_at=expired))
    await harness_db.commit()

    response = await refresh(client, tokens["refresh_token"])

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_unknown_refresh_tokens_are_invalid_grant(client: httpx.AsyncClient) -> None:
    response = await refresh(client, "a" * 43)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    missing = await client.post(
        "/oauth/token", data={"grant_type": "refresh_token", "client_id": "web"}
    )
    assert missing.json()["error"] == "invalid_request"


async def test_a_refresh_token_only_works_for_its_client(
    client: httpx.AsyncClient, db: AsyncSession, user: User
) -> None:
    await persist(
        db,
        OAuthClientFactory(
            client_id="mobile", name="Mobile app", grant_types=["password", "refresh_token"]
        ),
    )
    tokens = await tokens_for(client, user)

    response = await client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "mobile",
        },
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_a_deactivated_user_cannot_refresh(
    client: httpx.AsyncClient, db: AsyncSession, user: User
) -> None:
    tokens = await tokens_for(client, user)
    await db.execute(update(User).where(User.id == user.id).values(is_active=False))
    await db.commit()

    response = await refresh(client, tokens["refresh_token"])
    me = await client.get("/api/v1/users/me", headers=auth(tokens["access_token"]))

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert me.status_code == 401
