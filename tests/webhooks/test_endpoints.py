"""Managing webhook endpoints: who may, what is shown once, the delivery log's pages, and the
targets refused (SSRF) at creation and at send time.

The refusals run with private targets refused and a resolver the test injects, so that no name
is looked up and nothing is sent beyond loopback.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.config import Environment, Settings
from backend.webhooks.service import Webhooks
from backend.webhooks.targets import IPAddress, is_public
from tenants.roles import TenantRole
from tests.factories import (
    WebhookAttemptFactory,
    WebhookDeliveryFactory,
    WebhookEndpointFactory,
    persist,
)
from tests.harness.receiver import Receiver
from tests.webhooks.conftest import MakeDispatcher, register
from tests.world import TenantWorld, build_tenant

ANSWERS: dict[str, list[str]] = {
    "hooks.example.com": ["93.184.216.34"],  # public: accepted, and never sent to by tests
    "intranet.example.com": ["10.0.0.7"],
    "metadata.example.com": ["169.254.169.254"],
    "mixed.example.com": ["93.184.216.34", "127.0.0.1"],
    "rebinding.example.com": ["127.0.0.1"],
    "v6.example.com": ["::ffff:192.168.1.1"],
}


async def fake_resolver(host: str, _port: int) -> list[IPAddress]:
    if host not in ANSWERS:
        raise OSError(f"{host}: unknown")
    return [ipaddress.ip_address(address) for address in ANSWERS[host]]


def _url(world: TenantWorld, *rest: str) -> str:
    return "/".join([f"/api/v1/tenants/{world.id}/webhooks", *rest]).rstrip("/")


@pytest.fixture
def refusing_private(app: FastAPI, settings: Settings) -> Iterator[dict[str, Any]]:
    """The production policy (private targets refused, no allow-list) with `fake_resolver`;
    the keyword overrides that give a dispatcher the same."""
    overrides: dict[str, Any] = {
        "webhook_allow_private_targets": False,
        "webhook_allowed_hosts": [],
    }
    usual = app.state.webhooks
    app.state.webhooks = Webhooks.from_settings(
        settings.model_copy(update=overrides), fake_resolver
    )
    yield overrides
    app.state.webhooks = usual


async def test_owners_and_admins_manage_endpoints_members_may_not_strangers_see_nothing(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    globex = await build_tenant(db, "globex", {"gina": TenantRole.OWNER})
    created = await register(client, app, acme, "http://127.0.0.1:9/a", who="adam")
    hook = created["id"]
    assert created["secret"].startswith("whsec_")
    assert created["enabled"] is True

    for who, expected in (("olive", 200), ("adam", 200), ("mia", 403)):
        response = await client.get(_url(acme, hook), headers=acme.headers(app, who))
        assert response.status_code == expected, who
    stranger = globex.headers(app, "gina")
    assert (await client.get(_url(acme, hook), headers=stranger)).status_code == 404
    assert (await client.get(_url(globex, hook), headers=stranger)).status_code == 404
    mia = acme.headers(app, "mia")
    refused = await client.post(
        _url(acme), json={"url": "http://127.0.0.1:9/b", "events": ["*"]}, headers=mia
    )
    assert refused.status_code == 403

    olive = acme.headers(app, "olive")
    shown = (await client.get(_url(acme, hook), headers=olive)).json()
    assert "secret" not in shown
    assert created["secret"] not in str(shown)
    listed = (await client.get(_url(acme), headers=olive)).json()
    assert [item["id"] for item in listed["items"]] == [hook]
    changed = await client.patch(
        _url(acme, hook),
        json={"events": ["task.created"], "description": "tasks only"},
        headers=olive,
    )
    assert changed.status_code == 200
    assert (changed.json()["events"], changed.json()["description"]) == (
        ["task.created"],
        "tasks only",
    )
    assert (await client.delete(_url(acme, hook), headers=olive)).status_code == 204
    assert (await client.get(_url(acme, hook), headers=olive)).status_code == 404


@pytest.mark.parametrize(
    "events",
    [[], ["*", "task.created"], ["task.created", "task.created"], ["task.exploded"]],
)
async def test_a_subscription_names_known_types_once_or_everything(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld, events: list[str]
) -> None:
    response = await client.post(
        _url(acme),
        json={"url": "http://127.0.0.1:9/a", "events": events},
        headers=acme.headers(app, "olive"),
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.com/in", "https://"),
        ("https://intranet.example.com/in", "private"),
        ("https://metadata.example.com/latest", "link-local"),
        ("https://mixed.example.com/in", "loopback"),
        ("https://v6.example.com/in", "private"),
        ("https://127.0.0.1/in", "loopback"),
        ("https://[::1]/in", "loopback"),
        ("https://nowhere.example.com/in", "does not resolve"),
        ("https://user:pw@hooks.example.com/in", "credentials"),
        ("https://11[x/in", "not valid"),
    ],
)
async def test_private_targets_are_refused_at_creation(
    app: FastAPI,
    client: httpx.AsyncClient,
    acme: TenantWorld,
    refusing_private: dict[str, Any],
    url: str,
    why: str,
) -> None:
    response = await client.post(
        _url(acme), json={"url": url, "events": ["*"]}, headers=acme.headers(app, "olive")
    )

    assert response.status_code == 422
    assert why in response.json()["detail"]
    assert response.json()["errors"][0]["loc"] == ["body", "url"]


async def test_a_public_target_is_accepted_without_sending_anything(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld, refusing_private: dict[str, Any]
) -> None:
    response = await client.post(
        _url(acme),
        json={"url": "https://hooks.example.com/in", "events": ["*"]},
        headers=acme.headers(app, "olive"),
    )
    assert response.status_code == 201


async def test_a_name_that_turns_private_is_refused_at_send_time(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: AsyncSession,
    acme: TenantWorld,
    receiver: Receiver,
    refusing_private: dict[str, Any],
    make_dispatcher: MakeDispatcher,
) -> None:
    # Registered while it answered with a public address; it now answers with loopback, where
    # the receiver listens: the dispatcher must not connect.
    target = f"https://rebinding.example.com:{receiver.port}/hooks"
    delivery = WebhookDeliveryFactory(
        tenant_id=acme.id, endpoint=WebhookEndpointFactory(tenant_id=acme.id, url=target)
    )
    await persist(db, delivery)
    dispatcher = make_dispatcher(
        resolver=fake_resolver, webhook_retry_schedule_seconds=[], **refusing_private
    )

    await dispatcher.run_once()
    await dispatcher.drain()

    assert receiver.received == []
    log = await client.get(
        _url(acme, str(delivery.endpoint_id), "deliveries"), headers=acme.headers(app, "olive")
    )
    [attempt] = log.json()["items"]
    assert attempt["status_code"] is None
    assert "resolves to a loopback, private" in attempt["error"]


async def test_only_allowed_hosts_are_targets_when_an_allow_list_is_set(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    # The suite's own settings: an allow-list of this machine (schemathesis invents URLs).
    response = await client.post(
        _url(acme),
        json={"url": "https://hooks.example.com/in", "events": ["*"]},
        headers=acme.headers(app, "olive"),
    )
    assert response.status_code == 422
    assert "allowed webhook targets" in response.json()["detail"]


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.0.1", False),
        ("169.254.169.254", False),
        ("100.100.100.200", False),  # shared address space: a cloud's metadata service
        ("0.0.0.0", False),  # noqa: S104 (an address under test, not a bind)
        ("::1", False),
        ("fd00:ec2::254", False),
        ("fe80::1", False),
        ("::ffff:127.0.0.1", False),
        ("224.0.0.1", False),
    ],
)
def test_which_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


def test_private_targets_are_refused_by_default_in_production_only() -> None:
    def allows(environment: Environment) -> bool:
        chosen = Settings(_env_file=None, environment=environment)  # type: ignore[call-arg]
        return chosen.allows_private_webhook_targets

    assert allows(Environment.PRODUCTION) is False
    assert allows(Environment.DEVELOPMENT) is True
    assert allows(Environment.TEST) is True


async def test_the_delivery_log_is_paged_newest_first(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    delivery = WebhookDeliveryFactory(tenant_id=acme.id)
    attempts = [WebhookAttemptFactory(delivery=delivery, attempt=n) for n in (1, 2, 3)]
    await persist(db, *attempts)
    olive = acme.headers(app, "olive")
    log = _url(acme, str(delivery.endpoint_id), "deliveries")

    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(log, params=params, headers=olive)).json()
        seen += [item["attempt"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == [3, 2, 1]
    other = await client.get(_url(acme, str(delivery.id), "deliveries"), headers=olive)
    assert other.status_code == 404  # a delivery id is not an endpoint id


async def test_a_retried_create_with_its_idempotency_key_replays_without_the_secret(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    body = {"url": "http://127.0.0.1:9/a", "events": ["*"], "description": "ci"}
    headers = {**acme.headers(app, "olive"), "Idempotency-Key": "hook-1"}

    first = await client.post(_url(acme), json=body, headers=headers)
    again = await client.post(_url(acme), json=body, headers=headers)
    other = await client.post(_url(acme), json={**body, "description": "cd"}, headers=headers)

    assert first.status_code == 201, first.text
    assert first.json()["secret"].startswith("whsec_")
    assert "Idempotent-Replayed" not in first.headers
    assert again.status_code == 201, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == {**first.json(), "secret": None}
    assert other.status_code == 422, other.text
    listed = await client.get(_url(acme), headers=acme.headers(app, "olive"))
    assert [item["id"] for item in listed.json()["items"]] == [first.json()["id"]]
