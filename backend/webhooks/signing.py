"""Signing secrets and signatures, per the Standard Webhooks specification.

A secret is `whsec_` and the base64 of 32 random bytes. It is stored encrypted (Fernet, with a
key derived from SECRET_KEY by HKDF), not hashed: signing needs the secret itself, so a hash
would not do. A copy of the database alone then reveals no secret; SECRET_KEY and the database
together do, as they would reveal admin sessions. The secret is shown once, at creation or
rotation, and never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from backend.core.config import Settings

SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix, not a secret)
SECRET_BYTES = 32


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


class SecretBox:
    """Encrypts and decrypts signing secrets with a key derived from SECRET_KEY."""

    def __init__(self, settings: Settings) -> None:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"tenantdesk webhook secrets"
        ).derive(settings.secret_key_value().encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        return self._fernet.decrypt(sealed.encode()).decode()


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` with `secret`'s bytes as key."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(
    secrets_in_use: list[str], message_id: str, sent_at: datetime, body: bytes
) -> dict[str, str]:
    """The three headers of a signed message; one signature per secret, space-separated (the
    specification's way to rotate a secret without a gap)."""
    timestamp = int(sent_at.timestamp())
    signatures = " ".join(signature(s, message_id, timestamp, body) for s in secrets_in_use)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures,
    }
