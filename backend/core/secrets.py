"""Opaque secrets handed to people (one-time links, refresh tokens, client secrets).

Only their SHA-256 is stored: the values are random with at least 256 bits, so a fast hash is
enough, and the lookup stays a plain indexed equality.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_BYTES = 32


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), stored_hash)


def is_secret_name(name: str) -> bool:
    """Whether a column or field named `name` holds a secret or what verifies one: `*_hash`,
    `*secret*`, `*token*`. The tenant export leaves such columns out, and a replayed answer
    (idempotency keys) shows such fields as null."""
    lowered = name.lower()
    return lowered.endswith("_hash") or "secret" in lowered or "token" in lowered


class _ShownOnce:
    """The type of `SHOWN_ONCE`."""

    def __repr__(self) -> str:
        return "SHOWN_ONCE"


# Marks a response field that carries a secret shown once whatever its name (`Annotated[str,
# SHOWN_ONCE]`, such as an API key's `key`): a replayed answer shows it as null, as it does a
# field named like a secret.
SHOWN_ONCE = _ShownOnce()
