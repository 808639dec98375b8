"""How much mail invitations may send: a daily quota per tenant (INVITATIONS_PER_TENANT_PER_DAY)
and a cooldown between two mails of one invitation (INVITATION_RESEND_COOLDOWN_SECONDS, 0 for
none). Invitations are the one flow that mails strangers; without these, a fresh tenant would be
a relay.

Counted in the `limits` storage with the other rate limits (memory, or Redis shared by the
workers). Both answer 429 with `Retry-After`.
"""

from __future__ import annotations

import uuid

from limits.aio.storage import Storage

from backend.core.config import Settings
from backend.core.errors import TooManyRequests
from backend.core.rate_limit import Throttle
from backend.core.rate_limit_storage import throttle_storage


class InvitationLimits:
    def __init__(self, per_tenant_per_day: int, resend_cooldown_seconds: int, storage: Storage):
        self.per_tenant_per_day = per_tenant_per_day
        self.daily = Throttle(f"{per_tenant_per_day}/day", storage)
        self.cooldown = (
            Throttle(f"1/{resend_cooldown_seconds} seconds", storage)
            if resend_cooldown_seconds > 0
            else None
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> InvitationLimits:
        return cls(
            settings.invitations_per_tenant_per_day,
            settings.invitation_resend_cooldown_seconds,
            throttle_storage(settings),
        )

    async def count_mail(self, tenant_id: uuid.UUID, invitation_id: uuid.UUID) -> None:
        """Count one mail of this invitation (created or resent): refused within the cooldown of
        its previous mail, or past the tenant's quota for the day."""
        if self.cooldown is not None:
            wait = await self.cooldown.hit(f"invitations:cooldown:{invitation_id}")
            if wait is not None:
                raise TooManyRequests(
                    f"This invitation was mailed moments ago; resend it in {wait} seconds.",
                    headers={"Retry-After": str(wait)},
                )
        wait = await self.daily.hit(f"invitations:tenant:{tenant_id}")
        if wait is not None:
            raise TooManyRequests(
                f"This tenant has sent its {self.per_tenant_per_day} invitations for today; "
                f"retry in {wait} seconds.",
                headers={"Retry-After": str(wait)},
            )
