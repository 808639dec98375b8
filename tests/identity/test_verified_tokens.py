"""The cache of verified access tokens: it saves the signature check of a token seen before, and
never a revocation check, which the access query makes on every request."""

from __future__ import annotations

import time

import httpx
from fastapi import FastAPI

from backend.identity.keys import AccessTokenClaims, VerifiedTokens
from backend.identity.models import User
from tests.identity.conftest import auth, tokens_for

ME = "/api/v1/users/me"


def _claims(subject: str, expires_at: float) -> AccessTokenClaims:
    return AccessTokenClaims(
        subject=subject,
        client_id="web",
        jwt_id=subject,
        issued_at=int(time.time()),
        expires_at=int(expires_at),
        tenant_id=None,
        scope="",
    )


def test_a_cached_token_is_forgotten_at_its_expiry() -> None:
    cache = VerifiedTokens(capacity=10)
    cache.put("live", _claims("live", time.time() + 60))
    cache.put("expired", _claims("expired", time.time() - 1))

    assert cache.get("live") is not None
    assert cache.get("expired") is None
    assert len(cache) == 1


def test_the_cache_holds_at_most_its_capacity_and_drops_the_oldest_first() -> None:
    cache = VerifiedTokens(capacity=2)
    for name in ("first", "second", "third"):
        cache.put(name, _claims(name, time.time() + 60))

    assert len(cache) == 2
    assert cache.get("first") is None
    assert cache.get("third") is not None


async def test_a_token_is_verified_once_and_then_served_from_the_cache(
    app: FastAPI, client: httpx.AsyncClient, user: User
) -> None:
    token = (await tokens_for(client, user))["access_token"]
    key_ring = app.state.key_ring

    assert (await client.get(ME, headers=auth(token))).status_code == 200
    cached = key_ring.verified.get(token)
    assert cached is not None
    assert key_ring.verify_access_token(token) is cached
    # One byte off is another token: verified afresh, and refused.
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert (await client.get(ME, headers=auth(tampered))).status_code == 401


async def test_a_cached_token_is_refused_once_its_user_logs_out_everywhere(
    app: FastAPI, client: httpx.AsyncClient, user: User
) -> None:
    token = (await tokens_for(client, user))["access_token"]
    assert (await client.get(ME, headers=auth(token))).status_code == 200

    revoked = await client.post(f"{ME}/sessions/revoke", headers=auth(token))

    assert revoked.status_code == 204
    assert app.state.key_ring.verified.get(token) is not None
    assert (await client.get(ME, headers=auth(token))).status_code == 401
