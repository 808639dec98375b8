"""SDK-ready: a client generated from the live /openapi.json by openapi-python-client works.

It signs up, takes a token, creates a tenant, and reads a typed problem from a 409.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from fastapi import FastAPI

from tests.harness.live import LiveServer

PACKAGE = "tenantdesk_client"
PASSWORD = "generated client passphrase"


async def _generate(live_server: LiveServer, into: Path) -> None:
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        document = await http.get("/openapi.json")
    assert document.status_code == 200
    (into / "openapi.json").write_text(document.text)
    # No post hooks: formatting the generated code is the SDK project's business, not ours.
    (into / "config.json").write_text(
        json.dumps(
            {
                "post_hooks": [],
                "package_name_override": PACKAGE,
                # The tenant export streams NDJSON: bytes for a client to read line by line.
                "content_type_overrides": {"application/x-ndjson": "application/octet-stream"},
            }
        )
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "openapi_python_client",
        "generate",
        f"--path={into / 'openapi.json'}",
        f"--output-path={into / PACKAGE}",
        f"--config={into / 'config.json'}",
        "--meta=none",
        "--fail-on-warning",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()


@pytest.fixture
def importable(tmp_path: Path) -> Iterator[Path]:
    """`tmp_path` on sys.path for the generated package, and nothing of it left afterwards."""
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in [name for name in sys.modules if name.partition(".")[0] == PACKAGE]:
        del sys.modules[name]


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


async def test_a_generated_client_signs_up_signs_in_and_reads_a_typed_problem(
    app: FastAPI, live_server: LiveServer, importable: Path
) -> None:
    await _generate(live_server, importable)
    client_module = _module("client")
    models = _module("models")
    sign_up = _module("api.users.users_sign_up")
    take_token = _module("api.oauth2.oauth_token")
    create_tenant = _module("api.tenants.tenants_create")

    anonymous = client_module.Client(base_url=live_server.url)
    user = await sign_up.asyncio(
        client=anonymous, body=models.SignUp(email="sdk@example.com", password=PASSWORD)
    )
    assert isinstance(user, models.UserRead)
    assert user.email == "sdk@example.com"

    form = models.OauthTokenBody(
        grant_type=models.OauthTokenBodyGrantType.PASSWORD,
        username="sdk@example.com",
        password=PASSWORD,
        client_id="web",
    )
    token = await take_token.asyncio(client=anonymous, body=form)
    assert isinstance(token, models.TokenResponse)
    assert token.token_type == "Bearer"

    signed_in = client_module.AuthenticatedClient(
        base_url=live_server.url, token=token.access_token
    )
    body = models.TenantCreate(name="Acme", slug="acme")
    tenant = await create_tenant.asyncio(client=signed_in, body=body)
    assert isinstance(tenant, models.TenantOut)
    assert (tenant.slug, tenant.role) == ("acme", models.TenantRole.OWNER)

    taken = await create_tenant.asyncio_detailed(client=signed_in, body=body)
    assert taken.status_code == 409
    assert isinstance(taken.parsed, models.Problem)
    assert taken.parsed.status == 409
    assert taken.parsed.title == "Conflict"
    assert "slug" in taken.parsed.detail
