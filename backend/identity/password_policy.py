"""What makes a password acceptable: long enough, not one of the very common ones."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

MIN_LENGTH = 10
# Long passphrases are welcome, but argon2 over megabytes of input would be a cheap DoS.
MAX_LENGTH = 1024
MIN_DISTINCT_CHARACTERS = 4
COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")


@lru_cache
def common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(
        line.strip().lower() for line in lines if line.strip() and not line.startswith("#")
    )


def password_problem(password: str) -> str | None:
    """Why `password` is refused, in one sentence; None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"The password must have at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"The password must have at most {MAX_LENGTH} characters."
    if password.lower() in common_passwords():
        return "The password is one of the most common ones; choose another."
    if len(set(password)) < MIN_DISTINCT_CHARACTERS:
        return "The password repeats too few characters; choose another."
    return None


def check_password(password: str) -> str:
    """A Pydantic after-validator: a ValueError names the field in the 422 answer."""
    problem = password_problem(password)
    if problem:
        raise ValueError(problem)
    return password
