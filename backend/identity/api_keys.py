"""Personal API keys: their form, their hash, and the credential a request presents.

A key reads `tdk_` + 43 base62 characters (32 random bytes) + 6 base62 characters of checksum:
the CRC32 (zlib's) of the 43 random characters, as GitHub's tokens carry one, so that a secret
scanner recognises a key, and this server refuses a mistyped one, without a database look-up.
Only the key's SHA-256 is stored (`backend.core.secrets.hash_token`): the key is random with
256 bits, so a fast hash is enough and the look-up is an indexed equality, never argon2.

Which key still speaks for whom is SQL, beside the token principals (`principals.py`); what
users do with their keys is the `backend.api_keys` domain. No FastAPI here.
"""

from __future__ import annotations

import secrets
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.secrets import hash_token
from backend.identity.models import ApiKey

API_KEY_PREFIX = "tdk_"
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_BYTES = 32
RANDOM_LENGTH = 43  # the base62 digits of 2**256 - 1
CHECKSUM_LENGTH = 6  # the base62 digits of 2**32 - 1
API_KEY_LENGTH = len(API_KEY_PREFIX) + RANDOM_LENGTH + CHECKSUM_LENGTH
# Shown in lists and the admin panel to tell keys apart; reveals 8 of the 43 random characters.
DISPLAY_PREFIX_LENGTH = len(API_KEY_PREFIX) + 8
# `last_used_at` is written at most this often, so that most requests made with a key cost no
# write at all.
LAST_USED_RESOLUTION = timedelta(minutes=1)
_BASE62_DIGITS = frozenset(BASE62)


def _base62(value: int, width: int) -> str:
    digits = []
    while value:
        value, digit = divmod(value, 62)
        digits.append(BASE62[digit])
    return "".join(reversed(digits)).rjust(width, BASE62[0])


def checksum(random_part: str) -> str:
    return _base62(zlib.crc32(random_part.encode("ascii")), CHECKSUM_LENGTH)


def new_api_key() -> str:
    random_part = _base62(int.from_bytes(secrets.token_bytes(RANDOM_BYTES)), RANDOM_LENGTH)
    return f"{API_KEY_PREFIX}{random_part}{checksum(random_part)}"


def looks_like_api_key(token: str) -> bool:
    """Whether a bearer token is meant as an API key (and not as an access token)."""
    return token.startswith(API_KEY_PREFIX)


def is_well_formed(key: str) -> bool:
    """The prefix, the length, the alphabet and the checksum: what a scanner checks too."""
    if len(key) != API_KEY_LENGTH or not key.startswith(API_KEY_PREFIX):
        return False
    body = key[len(API_KEY_PREFIX) :]
    if not _BASE62_DIGITS.issuperset(body):
        return False
    random_part, check = body[:RANDOM_LENGTH], body[RANDOM_LENGTH:]
    return secrets.compare_digest(checksum(random_part), check)


def display_prefix(key: str) -> str:
    return key[:DISPLAY_PREFIX_LENGTH]


@dataclass(frozen=True)
class ApiKeyCredential:
    """A well-formed API key presented as a bearer token, known by its hash only."""

    key_hash: str

    @classmethod
    def of(cls, key: str) -> ApiKeyCredential:
        return cls(key_hash=hash_token(key))


def use_is_due(last_used_at: datetime | None, now: datetime) -> bool:
    return last_used_at is None or now - last_used_at >= LAST_USED_RESOLUTION


async def record_use(
    session: AsyncSession, key_id: uuid.UUID, last_used_at: datetime | None, now: datetime
) -> None:
    """Note that the key was used, unless that was already noted within the last minute (the
    access query brought `last_used_at`, so the usual case costs nothing)."""
    if use_is_due(last_used_at, now):
        await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))
