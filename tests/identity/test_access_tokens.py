"""Access tokens (RFC 9068 JWTs), their verification, the keys, and discovery (RFC 8414)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey
from pydantic import SecretStr
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.config import Settings, generate_private_key_pem
from backend.identity.keys import KeyRing
from backend.identity.models import User
from tests.identity.conftest import auth, tokens_for

ME = "/api/v1/users/me"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(app: FastAPI, user: User, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": app.state.settings.issuer,
        "aud": app.state.settings.issuer,
        "sub": str(user.id),
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "client_id": "web",
    }
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not None}


def _signed(app: FastAPI, claims: dict[str, Any], **header: Any) -> str:
    """Signed with the server's own key; a header value of None leaves the field out."""
    key = app.state.key_ring.signing_key
    full_header = {"alg": "ES256", "typ": "at+jwt", "kid": key.kid, **header}
    full_header = {name: value for name, value in full_header.items() if value is not None}
    return jwt.encode(full_header, claims, key, algorithms=["ES256"])


async def test_issued_tokens_follow_rfc9068(
    app: FastAPI, client: httpx.AsyncClient, user: User
) -> None:
    access_token = (await tokens_for(client, user))["access_token"]
    header_part, claims_part, _signature = access_token.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_part + "=="))
    claims = json.loads(base64.urlsafe_b64decode(claims_part + "=="))

    assert header == {"alg": "ES256", "typ": "at+jwt", "kid": app.state.key_ring.signing_key.kid}
    assert {"iss", "sub", "aud", "exp", "iat", "jti", "client_id"} <= set(claims)
    assert claims["exp"] - claims["iat"] == app.state.settings.access_token_ttl_seconds
    assert "tid" not in claims


async def test_a_control_token_signed_correctly_is_accepted(
    app: FastAPI, client: httpx.AsyncClient, user: User
) -> None:
    response = await client.get(ME, headers=auth(_signed(app, _claims(app, user))))
    assert response.status_code == 200


def _hs256(claims: dict[str, Any], secret: bytes) -> str:
    """Forged by hand: joserfc will not even build an HMAC key from a public key."""
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'at+jwt'})}.{_b64(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def _hostile_token(app: FastAPI, user: User, kind: str) -> str:
    good = _claims(app, user)
    now = int(time.time())
    key_ring = app.state.key_ring
    build: dict[str, Callable[[], str]] = {
        "garbage": lambda: "not-a-jwt",
        "alg none": lambda: f"{_b64({'alg': 'none', 'typ': 'at+jwt'})}.{_b64(good)}.",
        # The classic confusion: HMAC keyed with the server's public key.
        "HS256 with the public key": lambda: _hs256(
            good, key_ring.signing_key.as_pem(private=False)
        ),
        "another key": lambda: jwt.encode(
            {"alg": "ES256", "typ": "at+jwt", "kid": key_ring.signing_key.kid},
            good,
            ECKey.generate_key("P-256", private=True),
            algorithms=["ES256"],
        ),
        "EdDSA from an unknown key": lambda: jwt.encode(
            {"alg": "EdDSA", "typ": "at+jwt"},
            good,
            OKPKey.generate_key("Ed25519", private=True),
            algorithms=["EdDSA"],
        ),
        "expired": lambda: _signed(app, _claims(app, user, iat=now - 4000, exp=now - 3000)),
        "typ JWT": lambda: _signed(app, good, typ="JWT"),
        "no typ": lambda: _signed(app, good, typ=None),
        "other issuer": lambda: _signed(app, _claims(app, user, iss="https://evil.example")),
        "other audience": lambda: _signed(app, _claims(app, user, aud="https://else.example")),
        "no exp": lambda: _signed(app, _claims(app, user, exp=None)),
        "future iat": lambda: _signed(app, _claims(app, user, iat=now + 3600)),
        "tampered": lambda: _signed(app, good)[:-4] + "AAAA",
    }
    return build[kind]()


HOSTILE = [
    "garbage",
    "alg none",
    "HS256 with the public key",
    "another key",
    "EdDSA from an unknown key",
    "expired",
    "typ JWT",
    "no typ",
    "other issuer",
    "other audience",
    "no exp",
    "future iat",
    "tampered",
]


@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
@pytest.mark.parametrize("kind", HOSTILE)
async def test_hostile_tokens_get_401_with_a_bearer_challenge(
    app: FastAPI, client: httpx.AsyncClient, user: User, kind: str
) -> None:
    token = _hostile_token(app, user, kind)

    response = await client.get(ME, headers=auth(token))

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_deactivated_users_token_stops_working_at_once(
    client: httpx.AsyncClient, db: AsyncSession, user: User
) -> None:
    access_token = (await tokens_for(client, user))["access_token"]
    assert (await client.get(ME, headers=auth(access_token))).status_code == 200

    await db.execute(update(User).where(User.id == user.id).values(is_active=False))
    await db.commit()

    assert (await client.get(ME, headers=auth(access_token))).status_code == 401


async def test_discovery_metadata_follows_rfc8414(app: FastAPI, client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/oauth-authorization-server")

    assert response.status_code == 200
    metadata = AuthorizationServerMetadata(response.json())
    metadata.validate()
    issuer = app.state.settings.issuer
    assert metadata["issuer"] == issuer
    assert metadata["token_endpoint"] == f"{issuer}/oauth/token"
    assert metadata["revocation_endpoint"] == f"{issuer}/oauth/revoke"
    assert metadata["introspection_endpoint"] == f"{issuer}/oauth/introspect"
    assert metadata["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert set(metadata["grant_types_supported"]) == {
        "password",
        "refresh_token",
        "client_credentials",
    }


async def test_the_jwks_publishes_public_keys_only(app: FastAPI, client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/jwks.json")

    assert response.status_code == 200
    [key] = response.json()["keys"]
    assert key["kid"] == app.state.key_ring.signing_key.kid
    assert key["alg"] == "ES256"
    assert key["use"] == "sig"
    assert "d" not in key
    assert {"kty", "crv", "x", "y"} <= set(key)


def _rotated_settings(settings: Settings, *pems: str) -> Settings:
    return settings.model_copy(update={"jwt_private_keys": SecretStr("\n".join(pems))})


async def test_key_rotation_signs_with_the_first_key_and_verifies_with_all(
    settings: Settings,
) -> None:
    old_pem, new_pem = generate_private_key_pem(), generate_private_key_pem()
    before = KeyRing(_rotated_settings(settings, old_pem))
    during = KeyRing(_rotated_settings(settings, new_pem, old_pem))
    after = KeyRing(_rotated_settings(settings, new_pem))
    old_token = before.issue_access_token(subject="u", client_id="web")

    new_token = during.issue_access_token(subject="u", client_id="web")

    assert during.verify_access_token(old_token).subject == "u"
    assert after.verify_access_token(new_token).subject == "u"
    assert {key["kid"] for key in during.jwks()["keys"]} == {
        before.signing_key.kid,
        after.signing_key.kid,
    }
    assert all("d" not in key for key in during.jwks()["keys"])
    with pytest.raises(Exception, match=r"."):
        after.verify_access_token(old_token)


@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
async def test_ed25519_keys_sign_eddsa_tokens(settings: Settings) -> None:
    pem = OKPKey.generate_key("Ed25519", private=True).as_pem(private=True).decode()
    ring = KeyRing(_rotated_settings(settings, pem))

    token = ring.issue_access_token(subject="u", client_id="web")

    assert json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["alg"] == "EdDSA"
    assert ring.verify_access_token(token).subject == "u"
    assert ring.jwks()["keys"][0]["alg"] == "EdDSA"
