"""Where a webhook may be sent: `https` only, and never to the service's own network (SSRF).

Targets that resolve to loopback, private, link-local (cloud metadata), shared or reserved
addresses are refused at creation and again at every send, unless private targets are allowed
(`WEBHOOK_ALLOW_PRIVATE_TARGETS`, the default outside production, where `http` is allowed too).
At send time the address checked is the address connected to: the HTTP client's connections go
through `GuardedNetwork`, which resolves once, checks, and connects to that address (TLS still
verifies the host name), so a name that changes its answer between check and use gains nothing.
`WEBHOOK_ALLOWED_HOSTS`, when set, is an allow-list checked before any lookup.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore

from backend.core.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]


class TargetRefused(Exception):
    """The URL may not be a webhook target; the message says why, for the caller."""


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """The host's addresses from the system resolver, off the event loop."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0]) for info in infos]


def is_public(address: IPAddress) -> bool:
    """A globally routable unicast address: not loopback, private, link-local (169.254.169.254,
    the metadata service, is one), shared (100.64/10), multicast or reserved."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int


@dataclass(frozen=True)
class TargetPolicy:
    allow_private: bool
    allowed_hosts: frozenset[str]
    resolver: Resolver

    @classmethod
    def from_settings(cls, settings: Settings, resolver: Resolver | None = None) -> TargetPolicy:
        return cls(
            allow_private=settings.allows_private_webhook_targets,
            allowed_hosts=frozenset(settings.webhook_allowed_hosts),
            resolver=resolver or system_resolver,
        )

    def parse(self, url: str) -> Target:
        """The URL's target, or `TargetRefused`; no lookup."""
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
        except ValueError as exc:  # e.g. an unclosed IPv6 bracket
            raise TargetRefused("The URL is not valid.") from exc
        schemes = ("https", "http") if self.allow_private else ("https",)
        if parts.scheme not in schemes:
            raise TargetRefused(f"The URL must start with {' or '.join(schemes)}://.")
        if parts.username is not None or parts.password is not None:
            raise TargetRefused("The URL may not carry credentials.")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise TargetRefused("The URL's port is not valid.") from exc
        if not host:
            raise TargetRefused("The URL has no host.")
        if self.allowed_hosts and host not in self.allowed_hosts:
            raise TargetRefused("This host is not among the allowed webhook targets.")
        return Target(parts.scheme, host, port)

    async def addresses(self, host: str, port: int) -> list[IPAddress]:
        """The addresses to connect to, or `TargetRefused` when any is not public (and
        private targets are refused) or there is none."""
        try:
            found = [ipaddress.ip_address(host)]  # a literal address needs no lookup
        except ValueError:
            found = await self._resolve(host, port)
        if not self.allow_private and not all(is_public(address) for address in found):
            raise TargetRefused(
                f"{host} resolves to a loopback, private, link-local or reserved address."
            )
        return found

    async def _resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            found = await self.resolver(host, port)
        except (OSError, UnicodeError) as exc:
            raise TargetRefused(f"{host} does not resolve.") from exc
        if not found:
            raise TargetRefused(f"{host} does not resolve.")
        return found

    async def check(self, url: str) -> None:
        """At creation: refuse what could never be sent to. With private targets allowed,
        nothing is refused by its address, so nothing is looked up."""
        target = self.parse(url)
        if not self.allow_private:
            await self.addresses(target.host, target.port)


class GuardedNetwork(httpcore.AsyncNetworkBackend):
    """httpcore's network, with every TCP connection checked against the policy first and made
    to the very address that was checked."""

    def __init__(self, policy: TargetPolicy) -> None:
        self.policy = policy
        self.network = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if self.policy.allowed_hosts and host.lower() not in self.policy.allowed_hosts:
            raise httpcore.ConnectError("the host is not among the allowed webhook targets")
        address = host
        if not self.policy.allow_private:
            try:
                address = str((await self.policy.addresses(host, port))[0])
            except TargetRefused as exc:
                raise httpcore.ConnectError(str(exc)) from exc
        return await self.network.connect_tcp(address, port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are sent over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self.network.sleep(seconds)
