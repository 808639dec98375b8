"""Request and response bodies of the users endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field

from backend.core.schemas import RequestBody
from backend.core.text import LINE_PATTERN
from backend.identity.password_policy import MAX_LENGTH, MIN_LENGTH, check_password

# The lengths are in the schema; the common-password list is checked by the validator alone.
NewPassword = Annotated[
    str,
    Field(
        min_length=MIN_LENGTH,
        max_length=MAX_LENGTH,
        description="Not one of the most common passwords, and not a repetition of a few "
        "characters (422 otherwise).",
    ),
    AfterValidator(check_password),
]
# A password being checked, not set: any length up to the cap is worth one verification.
GivenPassword = Annotated[str, Field(min_length=1, max_length=MAX_LENGTH)]
FullName = Annotated[str, Field(max_length=200, pattern=LINE_PATTERN)]
OneTimeTokenValue = Annotated[str, Field(min_length=1, max_length=200)]


class SignUp(RequestBody):
    email: EmailStr
    password: NewPassword
    full_name: FullName = ""


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    full_name: str
    is_superuser: bool
    email_verified_at: datetime | None
    created_at: datetime


class UserUpdate(RequestBody):
    full_name: FullName | None = None


class EmailVerification(RequestBody):
    token: OneTimeTokenValue


class PasswordResetRequest(RequestBody):
    email: EmailStr


class PasswordResetConfirmation(RequestBody):
    token: OneTimeTokenValue
    new_password: NewPassword


class PasswordChange(RequestBody):
    current_password: GivenPassword
    new_password: NewPassword


class Accepted(BaseModel):
    detail: str
