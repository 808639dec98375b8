"""Request and response bodies of the users endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field

from backend.core.text import SingleLine
from backend.identity.password_policy import MAX_LENGTH, check_password

NewPassword = Annotated[str, AfterValidator(check_password)]
# A password being checked, not set: any length up to the cap is worth one verification.
GivenPassword = Annotated[str, Field(min_length=1, max_length=MAX_LENGTH)]
FullName = Annotated[str, Field(max_length=200), SingleLine]
OneTimeTokenValue = Annotated[str, Field(min_length=1, max_length=200)]


class _Body(BaseModel):
    # Unknown fields are refused rather than ignored: `{"email": ...}` in a PATCH must not look
    # as if it had worked.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class SignUp(_Body):
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


class UserUpdate(_Body):
    full_name: FullName | None = None


class EmailVerification(_Body):
    token: OneTimeTokenValue


class PasswordResetRequest(_Body):
    email: EmailStr


class PasswordResetConfirmation(_Body):
    token: OneTimeTokenValue
    new_password: NewPassword


class PasswordChange(_Body):
    current_password: GivenPassword
    new_password: NewPassword


class Accepted(BaseModel):
    detail: str
