"""Invitation tokens: `<tenant id hex>.<256-bit secret>`, stored only as the SHA-256 of the whole.

The tenant part lets a lookup enter that tenant first and find the row through the
`(tenant_id, token_hash)` index, so reading an invitation by token needs no cross-tenant query.
It reveals only a tenant id; the row is reachable with the full secret alone.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from backend.core.secrets import hash_token, new_token

# 32 random bytes in unpadded URL-safe base64 are 43 characters.
TOKEN_PATTERN = r"[0-9a-f]{32}\.[A-Za-z0-9_-]{43}"  # noqa: S105 (a shape, not a secret)
_TOKEN = re.compile(TOKEN_PATTERN)
MAX_TOKEN_LENGTH = 100  # longer than any token: bounds what is hashed before a lookup


@dataclass(frozen=True)
class IssuedToken:
    value: str  # goes into the mail and nowhere else
    hash: str


@dataclass(frozen=True)
class ParsedToken:
    tenant_id: uuid.UUID
    hash: str


def issue_token(tenant_id: uuid.UUID) -> IssuedToken:
    value = f"{tenant_id.hex}.{new_token()}"
    return IssuedToken(value=value, hash=hash_token(value))


def parse_token(value: str) -> ParsedToken | None:
    """The tenant and hash of a well-formed token; None for anything else (an unknown token)."""
    if _TOKEN.fullmatch(value) is None:
        return None
    tenant_hex, _secret = value.split(".")
    return ParsedToken(tenant_id=uuid.UUID(hex=tenant_hex), hash=hash_token(value))
