"""The base of every JSON request body of the API, and responses' JSON without their model."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict


class RequestBody(BaseModel):
    """Unknown fields are refused (422 naming each) rather than ignored: a misspelt or read-only
    field in a PATCH must not look as if it had worked.

    The OAuth2 endpoints take forms, not these bodies: RFC 6749 §3.2 has them ignore parameters
    they do not know.
    """

    model_config = ConfigDict(extra="forbid")


def model_json(values: Any) -> bytes:
    """Plain values (UUIDs, text, enums, aware UTC datetimes) as the JSON their pydantic model
    would give, byte for byte (`OPT_UTC_Z` writes UTC as pydantic does), without building and
    validating the model first. For the hot routes, which still declare the model as their
    `response_model` (the OpenAPI), each with a test that compares the bytes."""
    return orjson.dumps(values, default=_uuid_text, option=orjson.OPT_UTC_Z)


def _uuid_text(value: object) -> str:
    # asyncpg hands back its own subclass of `uuid.UUID`, which orjson does not take as one.
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not serialisable here")
