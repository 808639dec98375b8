"""Every use of the isolation bypass, by module and reason: a new one must be added here, in
review, with the reason it is safe."""

from __future__ import annotations

import re
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SOURCE_FOLDERS = ("backend", "tenants", "admin")
CALL = re.compile(r"cross_tenant\(\s*\w+,\s*(?P<reason>\"[^\"]*\"|[A-Z_]+)")

EXPECTED_CALLERS = sorted(
    [
        # GET /users/me and GET /tenants: the caller's own memberships, filtered by user id.
        ("tenants/service.py", '"a user\'s own tenants"'),
        ("tenants/service.py", '"a user\'s own tenants"'),
        # The platform (superuser) view of the admin panel, and only that view.
        ("admin/scoping.py", "PLATFORM_BYPASS_REASON"),
    ]
)


def _callers() -> list[tuple[str, str]]:
    found = []
    for folder in SOURCE_FOLDERS:
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py")):
            relative = str(path.relative_to(PROJECT_ROOT))
            if relative == "tenants/isolation.py":
                continue
            found += [(relative, m.group("reason")) for m in CALL.finditer(path.read_text())]
    return sorted(found)


def test_the_bypass_is_used_only_where_listed() -> None:
    assert _callers() == EXPECTED_CALLERS


def test_the_pattern_finds_calls() -> None:
    sample = 'async with cross_tenant(session, "why"):\n    async with cross_tenant(s, REASON):'
    assert [m.group("reason") for m in CALL.finditer(sample)] == ['"why"', "REASON"]
