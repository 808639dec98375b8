"""Using a personal API key: `Authorization: Bearer tdk_...` acts in the key's one tenant, with
the lower of the key's role and the user's current one; anything else about the key is a 401,
another tenant a 404, the account's own routes a 403."""

from __future__ import annotations

import zlib
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.config import Settings
from backend.core.database import utcnow
from backend.core.secrets import hash_token
from backend.identity.api_keys import (
    API_KEY_LENGTH,
    BASE62,
    checksum,
    is_well_formed,
    new_api_key,
)
from backend.identity.models import ApiKey, User
from backend.identity.passwords import Passwords
from tenants.roles import ProjectRole, TenantRole
from tests.queries import counting_queries
from tests.world import TenantWorld, build_tenant


@pytest.fixture
async def acme(db: AsyncSession) -> TenantWorld:
    world = await build_tenant(
        db, "acme", members={"ada": TenantRole.ADMIN, "olga": TenantRole.OWNER}
    )
    await world.add_project(db, "Launch")
    return world


@pytest.fixture
async def globex(db: AsyncSession, acme: TenantWorld) -> TenantWorld:
    """Another tenant Ada belongs to, as an owner."""
    world = await build_tenant(db, "globex")
    await world.add_member(db, "ada", TenantRole.OWNER, user=acme.users["ada"])
    await world.add_project(db, "Secret")
    return world


def _key_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


async def _stored(db: AsyncSession, headers: dict[str, str]) -> ApiKey:
    db.expire_all()
    key = await db.scalar(select(ApiKey).where(ApiKey.key_hash == hash_token(_key_of(headers))))
    assert key is not None
    return key


def test_a_key_carries_a_checksum_that_a_scanner_can_verify() -> None:
    key = new_api_key()
    random_part, check = key[4:47], key[47:]
    assert key.startswith("tdk_")
    assert len(key) == API_KEY_LENGTH == 53
    assert set(key[4:]) <= set(BASE62)
    assert is_well_formed(key)
    # The checksum is the CRC32 of the random part in base62, zero-padded to six digits.
    assert check == checksum(random_part)
    assert zlib.crc32(random_part.encode()) == sum(
        BASE62.index(digit) * 62**power for power, digit in enumerate(reversed(check))
    )
    mistyped = key[:10] + ("a" if key[10] != "a" else "b") + key[11:]
    assert not is_well_formed(mistyped)
    assert len({new_api_key() for _ in range(100)}) == 100


async def test_a_key_lists_its_tenants_projects_and_nothing_of_another_tenant(
    client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld, globex: TenantWorld
) -> None:
    headers = await acme.add_api_key(db, "ada", TenantRole.ADMIN)

    projects = await client.get(f"{acme.url}/projects", headers=headers)
    assert projects.status_code == 200, projects.text
    assert [p["name"] for p in projects.json()["items"]] == ["acme Launch"]

    # Ada owns globex too, but this key is acme's: globex is as unknown to it as any stranger's.
    other = await client.get(f"{globex.url}/projects", headers=headers)
    assert other.status_code == 404
    assert (await client.get(globex.project_url("Secret"), headers=headers)).status_code == 404


async def test_a_key_acts_with_the_lower_of_its_role_and_the_users(
    client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    viewer_key = await acme.add_api_key(db, "ada", TenantRole.VIEWER)
    read = await client.get(acme.url, headers=viewer_key)
    assert read.json()["role"] == "viewer"
    created = await client.post(f"{acme.url}/projects", json={"name": "X"}, headers=viewer_key)
    assert created.status_code == 403

    owner_key = await acme.add_api_key(db, "ada", TenantRole.OWNER)  # made by hand: above Ada
    assert (await client.get(acme.url, headers=owner_key)).json()["role"] == "admin"


async def test_a_demotion_applies_to_the_key_at_once(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    headers = await acme.add_api_key(db, "ada", TenantRole.ADMIN)
    renamed = await client.patch(acme.url, json={"name": "Acme Ltd"}, headers=headers)
    assert renamed.status_code == 200

    demoted = await client.patch(
        f"{acme.url}/members/{acme.users['ada'].id}",
        json={"role": "member"},
        headers=acme.headers(app, "olga"),
    )
    assert demoted.status_code == 200, demoted.text

    assert (await client.get(acme.url, headers=headers)).json()["role"] == "member"
    again = await client.patch(acme.url, json={"name": "Acme Inc"}, headers=headers)
    assert again.status_code == 403

    removed = await client.delete(
        f"{acme.url}/members/{acme.users['ada'].id}", headers=acme.headers(app, "olga")
    )
    assert removed.status_code == 204
    assert (await client.get(acme.url, headers=headers)).status_code == 404


@pytest.mark.parametrize("state", ["expired", "revoked"])
async def test_an_expired_or_revoked_key_gets_401(
    client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld, state: str
) -> None:
    headers = await acme.add_api_key(db, "ada", TenantRole.ADMIN, **{state: True})
    response = await client.get(f"{acme.url}/projects", headers=headers)
    assert response.status_code == 401
    assert response.json()["detail"] == "The API key is no longer valid."


async def test_a_deactivated_users_keys_get_401(
    client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    headers = await acme.add_api_key(db, "ada", TenantRole.ADMIN)
    await db.execute(update(User).where(User.id == acme.users["ada"].id).values(is_active=False))
    await db.commit()
    assert (await client.get(f"{acme.url}/projects", headers=headers)).status_code == 401
    assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 401


# Well formed, known to no one.
_SAMPLE = "tdk_" + "a" * 43 + checksum("a" * 43)


@pytest.mark.parametrize(
    "token",
    [
        "tdk_",
        "tdk_" + "A" * 49,  # the right length, a wrong checksum
        _SAMPLE[:-1],
        _SAMPLE + "0",
        "tdk_!" + _SAMPLE[5:],
    ],
    ids=["prefix-only", "wrong-checksum", "short", "long", "not-base62"],
)
async def test_a_malformed_key_gets_401_without_a_look_up(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld, token: str
) -> None:
    with counting_queries(app.state.database.engine) as statements:
        response = await client.get(
            f"{acme.url}/projects", headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 401
    assert response.json()["detail"] == "The API key is not valid."
    assert statements == []


async def test_a_well_formed_unknown_key_gets_401(
    client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    headers = {"Authorization": f"Bearer {new_api_key()}"}
    assert (await client.get(f"{acme.url}/projects", headers=headers)).status_code == 401
    assert (await client.get(acme.url, headers=headers)).status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/users/me"),
        ("PATCH", "/api/v1/users/me"),
        ("DELETE", "/api/v1/users/me"),
        ("GET", "/api/v1/users/me/export"),
        ("POST", "/api/v1/users/me/sessions/revoke"),
        ("GET", "/api/v1/users/me/api-keys"),
        ("GET", "/api/v1/tenants"),
        ("POST", "/api/v1/tenants"),
    ],
)
async def test_the_account_routes_answer_a_key_403(
    client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld, method: str, path: str
) -> None:
    headers = await acme.add_api_key(db, "ada", TenantRole.ADMIN)
    body = {} if method == "GET" else {"json": {"full_name": "Ada", "name": "X", "slug": "xyz"}}
    response = await client.request(method, path, headers=headers, **body)
    assert response.status_code == 403
    assert "API key acts only in its tenant" in response.json()["detail"]


async def test_a_key_cannot_manage_service_clients(
    client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    headers = await acme.add_api_key(db, "ada", TenantRole.ADMIN)
    created = await client.post(
        f"{acme.url}/clients", json={"name": "robot", "role": "viewer"}, headers=headers
    )
    assert created.status_code == 403
    assert created.json()["detail"].startswith("API keys cannot create or manage")


async def test_a_key_works_on_a_project_it_can_see_with_the_users_project_role(
    client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    await acme.add_member(db, "mia", TenantRole.MEMBER)
    await acme.add_project(db, "Apollo", members={"mia": ProjectRole.EDITOR})
    headers = await acme.add_api_key(db, "mia", TenantRole.MEMBER)
    created = await client.post(
        f"{acme.project_url('Apollo')}/tasks", json={"title": "Fuel"}, headers=headers
    )
    assert created.status_code == 201, created.text
    assert created.json()["title"] == "Fuel"
    assert (await client.get(acme.project_url("Launch"), headers=headers)).status_code == 404


async def test_last_used_at_is_written_at_most_once_a_minute(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    headers = await acme.add_api_key(db, "ada", TenantRole.ADMIN)
    url = f"{acme.url}/projects"
    assert (await _stored(db, headers)).last_used_at is None

    with counting_queries(app.state.database.engine) as first:
        assert (await client.get(url, headers=headers)).status_code == 200
    used = (await _stored(db, headers)).last_used_at
    assert used is not None

    with counting_queries(app.state.database.engine) as second:
        assert (await client.get(url, headers=headers)).status_code == 200
    assert (await _stored(db, headers)).last_used_at == used
    # The access query, the page: a token's request costs the same.
    assert len(second) == len(first) - 1 == 2, second
    assert not any(statement.lstrip().upper().startswith("UPDATE") for statement in second)

    two_minutes_ago = utcnow() - timedelta(minutes=2)
    await db.execute(
        update(ApiKey)
        .where(ApiKey.key_hash == hash_token(_key_of(headers)))
        .values(last_used_at=two_minutes_ago)
    )
    await db.commit()
    assert (await client.get(url, headers=headers)).status_code == 200
    later = (await _stored(db, headers)).last_used_at
    assert later is not None
    assert later > two_minutes_ago + timedelta(minutes=1)


class CountingPasswords(Passwords):
    """Real argon2id, counted."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.calls = 0

    def verify_blocking(self, password: str, password_hash: str | None) -> tuple[bool, str | None]:
        self.calls += 1
        return super().verify_blocking(password, password_hash)

    def hash_blocking(self, password: str) -> str:
        self.calls += 1
        return super().hash_blocking(password)


async def test_a_key_is_looked_up_by_its_sha256_never_with_argon2(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    headers = await acme.add_api_key(db, "ada", TenantRole.ADMIN)
    passwords = CountingPasswords(app.state.settings)
    original, app.state.passwords = app.state.passwords, passwords
    try:
        with counting_queries(app.state.database.engine) as statements:
            assert (await client.get(f"{acme.url}/projects", headers=headers)).status_code == 200
    finally:
        app.state.passwords = original
    assert passwords.calls == 0
    assert (await _stored(db, headers)).key_hash == hash_token(_key_of(headers))
    assert "api_keys.key_hash = " in statements[0], statements[0]
