"""Who may try a password now: failures are counted so that no stranger can lock anyone out.

Every door that checks a password (the token endpoint's password grant, the admin login, the
invitation page, the password change) asks here first and reports the outcome afterwards.

- **Per client address**: `LOGIN_RATE_LIMIT` failures (10/minute); past it, that address waits.
  It bounds every account tried from that address too.
- **Per account**: `LOGIN_ACCOUNT_FAILURE_BUDGET` failures across all addresses (50/hour). Past
  it, only addresses that signed in to the account successfully in the last 30 days may still
  try. A stranger spraying guesses from many addresses uses up the budget, but the owner, at an
  address they have signed in from, gets in as usual.

Only failures count: an attempt is counted when it starts (so that a burst of concurrent guesses
cannot all pass the check before the first one fails) and given back when it succeeds. The
counters and the known addresses live in the `limits` storage (memory, or Redis with
`REDIS_URL`): it expires keys by itself, it is already shared by the workers, and a known address
is only ever needed where the counters are. Losing it (a restart of an in-memory store) loses the
failure counts with it, so nobody is locked out by the loss.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import Storage

from backend.core.config import Settings
from backend.core.rate_limit_storage import throttle_storage
from backend.identity.accounts import normalise_email

KNOWN_ADDRESS_SECONDS = 30 * 86_400


@dataclass
class SignInAttempt:
    """One password check in progress: `retry_after` is set when it may not happen now."""

    throttle: SignInThrottle
    email: str
    address: str
    counted: tuple[str, ...]
    retry_after: int | None = None

    async def succeeded(self) -> None:
        """The password was right: the attempt is not a failure, and the address is known.

        A failure needs no call: the attempt stays counted.
        """
        await self.throttle._give_back(self.counted)
        await self.throttle._remember(self.email, self.address)


class SignInThrottle:
    def __init__(self, per_address: str, account_budget: str, storage: Storage) -> None:
        self.per_address: RateLimitItem = parse(per_address)
        self.account_budget: RateLimitItem = parse(account_budget)
        self.storage = storage

    @classmethod
    def from_settings(cls, settings: Settings) -> SignInThrottle:
        return cls(
            settings.login_rate_limit,
            settings.login_account_failure_budget,
            throttle_storage(settings),
        )

    async def begin(self, email: str, address: str) -> SignInAttempt:
        """Count the attempt, or refuse it (`retry_after`) when its address or account is spent."""
        email = normalise_email(email)
        address_key = f"signin:failures:address:{address}"
        account_key = f"signin:failures:account:{email}"
        counted = (address_key, account_key)
        address_count = await self.storage.incr(address_key, self.per_address.get_expiry())
        account_count = await self.storage.incr(account_key, self.account_budget.get_expiry())
        waits = []
        if address_count > self.per_address.amount:
            waits.append(await self._seconds_left(address_key))
        if account_count > self.account_budget.amount and not await self._known(email, address):
            waits.append(await self._seconds_left(account_key))
        attempt = SignInAttempt(self, email, address, counted)
        if waits:
            await self._give_back(counted)  # refused before any password was checked
            attempt.retry_after = max(waits)
        return attempt

    async def _give_back(self, keys: tuple[str, ...]) -> None:
        for key in keys:
            # A key that expired meanwhile comes back at -1 for at most its window: harmless.
            await self.storage.incr(key, 1, amount=-1)

    async def _seconds_left(self, key: str) -> int:
        return max(1, int(await self.storage.get_expiry(key) - time.time()) + 1)

    def _known_key(self, email: str, address: str) -> str:
        return f"signin:known:{email}:{address}"

    async def _known(self, email: str, address: str) -> bool:
        return await self.storage.get(self._known_key(email, address)) > 0

    async def _remember(self, email: str, address: str) -> None:
        key = self._known_key(email, address)
        await self.storage.clear(key)  # restart its 30 days from this sign-in
        await self.storage.incr(key, KNOWN_ADDRESS_SECONDS)
