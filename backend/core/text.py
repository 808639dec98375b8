"""Rules for the text of request bodies, written so that the schema shows what the server does.

A one-line name is `Annotated[str, Field(min_length=1, max_length=N, pattern=NAME_PATTERN),
AfterValidator(strip_surrounding_space)]`: the limits apply to the text as sent (the schema
cannot see a strip), and the stored value has no surrounding white space.
"""

from __future__ import annotations

# C0 and C1 controls (line breaks, tabs, NUL, escape), the Unicode line and paragraph separators,
# and the bidirectional overrides that make a name read differently from what it holds. A name
# travels into mail subjects, logs and other people's screens: none of these belongs in it (and
# PostgreSQL refuses NUL in text).
_CONTROL = r"\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
# Not blank: at least one character that is neither a control character nor white space.
NAME_PATTERN = rf"^[^{_CONTROL}]*[^\s{_CONTROL}][^{_CONTROL}]*$"
# One line that may be empty (a person's full name).
LINE_PATTERN = rf"^[^{_CONTROL}]*$"
# Free text (descriptions) keeps tabs and line breaks, but no other control character.
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


def strip_surrounding_space(value: str) -> str:
    return value.strip()
