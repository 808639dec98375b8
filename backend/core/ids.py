"""Identifiers from untrusted text: form fields, cookies, token claims, query strings."""

from __future__ import annotations

import uuid

# Matches no row: stands in for an id that is malformed, where a query needs some value.
NIL_UUID = uuid.UUID(int=0)


def parse_uuid(value: object) -> uuid.UUID | None:
    """`value` as a UUID; None when it is absent or not a UUID at all (never an exception)."""
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
