"""Rules for the short texts people name things with."""

from __future__ import annotations

import re

from pydantic import AfterValidator

# C0 and C1 controls (line breaks, tabs, NUL, escape), the Unicode line and paragraph separators,
# and the bidirectional overrides that make a name read differently from what it holds. A name
# travels into mail subjects, logs and other people's screens: none of these belongs in it.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def no_control_characters(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (line breaks, tabs and the like)")
    return value


def no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# `Annotated[str, ..., SingleLine]`: a name, a title.
SingleLine = AfterValidator(no_control_characters)
# Longer texts (a description) keep their line breaks; NUL, which PostgreSQL refuses, goes.
NoNul = AfterValidator(no_nul)
