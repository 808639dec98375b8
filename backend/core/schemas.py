"""The base of every JSON request body of the API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RequestBody(BaseModel):
    """Unknown fields are refused (422 naming each) rather than ignored: a misspelt or read-only
    field in a PATCH must not look as if it had worked.

    The OAuth2 endpoints take forms, not these bodies: RFC 6749 §3.2 has them ignore parameters
    they do not know.
    """

    model_config = ConfigDict(extra="forbid")
