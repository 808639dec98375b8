"""`X-Forwarded-For` is believed only from FORWARDED_ALLOW_IPS, under the run command itself; and
the compose file lets only its reverse proxy reach the API."""

from __future__ import annotations

from pathlib import Path

import httpx
import yaml
from fastapi import FastAPI

from backend.core.config import Settings
from tests.conftest import PEER, TRUSTED_PROXY
from tests.harness.service import ServiceProcess

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FORM = {"grant_type": "password", "client_id": "web", "password": "a wrong guess at it"}


async def _guesses_with_forged_addresses(url: str, peer: str, network: str) -> list[int]:
    """Eleven wrong passwords, each claiming another client address; the status codes."""
    transport = httpx.AsyncHTTPTransport(local_address=peer)
    async with httpx.AsyncClient(base_url=url, transport=transport) as http:
        answers = [
            await http.post(
                "/oauth/token",
                data={**FORM, "username": f"guess{n}@example.com"},
                headers={"X-Forwarded-For": f"{network}.{n}"},
            )
            for n in range(11)
        ]
    return [answer.status_code for answer in answers]


async def test_a_forged_header_from_an_untrusted_peer_changes_nothing(
    app: FastAPI, served: ServiceProcess
) -> None:
    """Every guess counts against the peer, whatever address it claims: the 11th waits."""
    codes = await _guesses_with_forged_addresses(served.url, PEER, "203.0.113")
    assert codes == [400] * 10 + [429]


async def test_a_trusted_proxy_reports_the_client_address(
    app: FastAPI, served: ServiceProcess
) -> None:
    codes = await _guesses_with_forged_addresses(served.url, TRUSTED_PROXY, "198.51.100")
    assert codes == [400] * 11  # eleven clients, one guess each


def test_the_default_trusts_only_the_local_host() -> None:
    assert Settings(_env_file=None).forwarded_allow_ips == "127.0.0.1"  # type: ignore[call-arg]


def test_compose_publishes_only_the_reverse_proxy() -> None:
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    api, proxy = compose["services"]["api"], compose["services"]["proxy"]

    assert "ports" not in api, "the API is reached through the proxy only"
    trusted = api["environment"]["FORWARDED_ALLOW_IPS"]
    assert trusted == proxy["networks"]["default"]["ipv4_address"]
    assert proxy["ports"]
    caddyfile = (PROJECT_ROOT / "docker" / "Caddyfile").read_text()
    assert "reverse_proxy api:8000" in caddyfile
