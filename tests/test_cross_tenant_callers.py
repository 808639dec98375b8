"""Every read across tenants, by module and what it reads: a new one must be added here, in
review, with the reason it is safe. Nothing else in the app can lift tenant isolation (no setting
the app role can flip does; tests/tenancy/test_least_privilege.py)."""

from __future__ import annotations

import re
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SOURCE_FOLDERS = ("backend", "tenants", "admin")
READ = re.compile(r"cross_tenant_rows\(\s*\w+,\s*(?P<read>[A-Z_]+)")
PLATFORM = re.compile(r"platform_session\(")
# The machinery itself: the only place that may name the platform flag or trust an alias.
MACHINERY = ("tenants/isolation.py", "tenants/statements.py")

EXPECTED_CALLERS = sorted(
    [
        # GET /users/me, GET /tenants and the panel's tenant picker: the caller's own
        # memberships, through the SECURITY DEFINER function user_tenants(user_id).
        ("tenants/service.py", "USER_TENANTS"),
        ("tenants/service.py", "USER_TENANTS"),
        # The platform (superuser) view of the admin panel, and only that view: read-only
        # sessions as the schema owner, for a superuser verified on each request.
        ("admin/scoping.py", "platform_session"),
    ]
)


def _sources() -> dict[str, str]:
    return {
        str(path.relative_to(PROJECT_ROOT)): path.read_text()
        for folder in SOURCE_FOLDERS
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py"))
    }


def _callers() -> list[tuple[str, str]]:
    found = []
    for relative, source in _sources().items():
        if relative in MACHINERY:
            continue
        found += [(relative, m.group("read")) for m in READ.finditer(source)]
        found += [(relative, "platform_session") for _ in PLATFORM.finditer(source)]
    return sorted(found)


def test_cross_tenant_reads_happen_only_where_listed() -> None:
    assert _callers() == EXPECTED_CALLERS


def test_nothing_else_names_the_platform_flag_or_trusts_an_alias() -> None:
    offenders = [
        relative
        for relative, source in _sources().items()
        if relative not in MACHINERY and re.search(r"PLATFORM_KEY|trust_alias", source)
    ]
    assert offenders == []


def test_the_patterns_find_calls() -> None:
    sample = "rows = cross_tenant_rows(session, USER_TENANTS, user_id)\nplatform_session(db)"
    assert [m.group("read") for m in READ.finditer(sample)] == ["USER_TENANTS"]
    assert len(PLATFORM.findall(sample)) == 1
