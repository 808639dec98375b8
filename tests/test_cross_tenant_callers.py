"""Every read across tenants, by module and what it reads: a new one must be added here, in
review, with the reason it is safe. Nothing else in the app can lift tenant isolation (no setting
the app role can flip does; tests/tenancy/test_least_privilege.py).

Uses are found in the syntax tree, so a call spread over lines, made through the module
(`isolation.cross_tenant_rows(...)`), or given what it reads in a variable is found all the same,
and so is the function passed along or imported under another name.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SOURCE_FOLDERS = ("backend", "tenants", "admin")
CROSS_TENANT_READ = "cross_tenant_rows"
PLATFORM = "platform_session"
# The machinery itself: the only place that may name the platform flag or trust an alias.
MACHINERY = ("tenants/isolation.py", "tenants/statements.py")

EXPECTED_CALLERS = sorted(
    [
        # GET /users/me, GET /tenants and the panel's tenant picker: the caller's own
        # memberships, through the SECURITY DEFINER function user_tenants(user_id).
        ("tenants/service.py", "USER_TENANTS"),
        ("tenants/service.py", "USER_TENANTS"),
        # GET /users/me/export: the audit events the caller acted in, whatever the tenant,
        # through the SECURITY DEFINER function actor_audit_events(user_id).
        ("backend/privacy/account.py", "ACTOR_AUDIT_EVENTS"),
        # GET /users/me/export: the platform audit events the caller acted in, through the
        # SECURITY DEFINER function actor_platform_audit_events(user_id) (the app role may
        # only insert into that log).
        ("backend/privacy/account.py", "ACTOR_PLATFORM_AUDIT_EVENTS"),
        # The platform (superuser) view of the admin panel, and only that view: read-only
        # sessions as the schema owner, for a superuser verified on each request.
        ("admin/scoping.py", PLATFORM),
        # The webhook dispatcher: which tenants have events to hand out or deliveries due,
        # through the SECURITY DEFINER functions outbox_tenants_due(now) and
        # webhook_tenants_due(now), which return tenant ids only; the work is then done in
        # each tenant's context.
        ("backend/webhooks/dispatcher.py", "DELIVERIES_DUE"),
        ("backend/webhooks/dispatcher.py", "EVENTS_TO_DISPATCH"),
    ]
)


def _sources() -> dict[str, str]:
    return {
        str(path.relative_to(PROJECT_ROOT)): path.read_text()
        for folder in SOURCE_FOLDERS
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py"))
    }


def _named(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _what_it_reads(call: ast.Call) -> str:
    """What a cross-tenant read reads, as written: a constant's name, any expression."""
    given = call.args[1:2] or [k.value for k in call.keywords if k.arg == "read"]
    return ast.unparse(given[0]) if given else "<nothing named>"


def cross_tenant_uses(source: str) -> list[str]:
    """Each use of the two ways across tenants; a use that is not a call (the function passed
    along, or imported under another name) counts too, as `<not a call>`."""
    tree = ast.parse(source)
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    called = {id(call.func) for call in calls}
    found = [
        _what_it_reads(call) if _named(call.func) == CROSS_TENANT_READ else PLATFORM
        for call in calls
        if _named(call.func) in (CROSS_TENANT_READ, PLATFORM)
    ]
    found += [
        "<not a call>"
        for node in ast.walk(tree)
        if isinstance(node, ast.Name | ast.Attribute)
        and _named(node) in (CROSS_TENANT_READ, PLATFORM)
        and id(node) not in called
    ]
    found += [
        "<not a call>"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.name in (CROSS_TENANT_READ, PLATFORM) and alias.asname not in (None, alias.name)
    ]
    return found


def _callers() -> list[tuple[str, str]]:
    return sorted(
        (relative, use)
        for relative, source in _sources().items()
        if relative not in MACHINERY
        for use in cross_tenant_uses(source)
    )


def test_cross_tenant_reads_happen_only_where_listed() -> None:
    assert _callers() == EXPECTED_CALLERS


def test_nothing_else_names_the_platform_flag_or_trusts_an_alias() -> None:
    offenders = [
        relative
        for relative, source in _sources().items()
        if relative not in MACHINERY and re.search(r"PLATFORM_KEY|trust_alias", source)
    ]
    assert offenders == []


def test_every_form_of_use_is_found() -> None:
    sample = """
from tenants import isolation
from tenants.isolation import cross_tenant_rows
from tenants.isolation import cross_tenant_rows as rows_of

def f(session, read, db):
    cross_tenant_rows(session, USER_TENANTS, user_id)
    cross_tenant_rows(
        session,
        read,
        user_id,
    )
    isolation.cross_tenant_rows(session, read=SOME_READ, value=1)
    isolation.platform_session(db)
    run(platform_session)
"""
    assert cross_tenant_uses(sample) == [
        "USER_TENANTS",
        "read",
        "SOME_READ",
        PLATFORM,
        "<not a call>",
        "<not a call>",
    ]
