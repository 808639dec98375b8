"""Every use of the isolation bypass, by module and reason: a new one must be added here, in
review, with the reason it is safe.

Calls are found in the syntax tree, so a call spread over lines, made through the module
(`isolation.cross_tenant(...)`) or given its reason in a variable is found all the same.
"""

from __future__ import annotations

import ast
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SOURCE_FOLDERS = ("backend", "tenants", "admin")
BYPASS = "cross_tenant"

EXPECTED_CALLERS = sorted(
    [
        # GET /users/me and GET /tenants: the caller's own memberships, filtered by user id.
        ("tenants/service.py", '"a user\'s own tenants"'),
        ("tenants/service.py", '"a user\'s own tenants"'),
        # The platform (superuser) view of the admin panel, and only that view.
        ("admin/scoping.py", "PLATFORM_BYPASS_REASON"),
    ]
)


def _names_the_bypass(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == BYPASS) or (
        isinstance(node, ast.Attribute) and node.attr == BYPASS
    )


def _reason(call: ast.Call) -> str:
    """The reason as written: a string literal, a constant's name, any expression."""
    given = call.args[1:2] or [k.value for k in call.keywords if k.arg == "reason"]
    return ast.unparse(given[0]) if given else "<no reason>"


def bypass_uses(source: str) -> list[str]:
    """The reason of each call of the bypass; a use that is not a call (the function passed
    along, or imported under another name) counts too, as `<not a call>`."""
    tree = ast.parse(source)
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    found = [
        _reason(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and _names_the_bypass(node.func)
    ]
    found += [
        "<not a call>"
        for node in ast.walk(tree)
        if isinstance(node, ast.Name | ast.Attribute)
        and _names_the_bypass(node)
        and id(node) not in called
    ]
    found += [
        "<not a call>"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.name == BYPASS and alias.asname not in (None, BYPASS)
    ]
    return found


def _callers() -> list[tuple[str, str]]:
    found = []
    for folder in SOURCE_FOLDERS:
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py")):
            relative = str(path.relative_to(PROJECT_ROOT))
            if relative == "tenants/isolation.py":
                continue
            found += [(relative, reason) for reason in bypass_uses(path.read_text())]
    return sorted(found)


def test_the_bypass_is_used_only_where_listed() -> None:
    assert _callers() == EXPECTED_CALLERS


def test_every_form_of_call_is_found() -> None:
    sample = """
from tenants import isolation
from tenants.isolation import cross_tenant
from tenants.isolation import cross_tenant as bypass

async def f(session, why):
    async with cross_tenant(session, "why"):
        pass
    async with cross_tenant(
        session,
        REASON,
    ):
        pass
    async with cross_tenant(session, why):
        pass
    async with isolation.cross_tenant(session, reason=f"{why}!"):
        pass
    run(cross_tenant)
"""
    assert bypass_uses(sample) == [
        "'why'",
        "REASON",
        "why",
        "f'{why}!'",
        "<not a call>",
        "<not a call>",
    ]
