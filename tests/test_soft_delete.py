"""The soft-delete filter is lifted only where the trash is the point: every use of
`INCLUDE_DELETED` is listed here, with its reason, and a new one must be added in review.

(That deleted rows are hidden from every read is tested in tests/projects/test_trash.py.)
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

from backend.core.soft_delete import SoftDeletable
from backend.models import metadata

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SOURCE_FOLDERS = ("backend", "tenants", "admin")
OPT_OUT = "INCLUDE_DELETED"

EXPECTED_USES = {
    # Restoring a project: the caller on a project in the trash.
    "backend/projects/access.py": 1,
    # Restoring a task: the task in the trash.
    "backend/projects/tasks.py": 1,
    # The trash list, and the purge's two deletes (their RETURNING reads deleted rows).
    "backend/projects/trash.py": 3,
    # The panel: the "In the trash" filter and its count, a deleted row's page, the restore
    # action's re-select.
    "admin/filters.py": 1,
    "admin/views_work.py": 2,
    "admin/base.py": 1,
    # The tenant export: the trash is the tenant's data too.
    "backend/privacy/tenant_export.py": 1,
}


def _uses() -> Counter[str]:
    found: Counter[str] = Counter()
    for folder in SOURCE_FOLDERS:
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py")):
            name = str(path.relative_to(PROJECT_ROOT))
            if name == "backend/core/soft_delete.py":
                continue
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Name) and node.id == OPT_OUT:
                    found[name] += 1
                if isinstance(node, ast.Constant) and node.value == "include_deleted":
                    found[name] += 1  # the option spelt out, which must not bypass the list
    return found


def test_every_use_of_the_opt_out_is_listed() -> None:
    assert dict(_uses()) == EXPECTED_USES


def test_projects_and_tasks_are_the_soft_deletable_tables() -> None:
    mapped = {model.__tablename__ for model in SoftDeletable.__subclasses__()}
    with_the_columns = {t.name for t in metadata.sorted_tables if "deleted_at" in t.c}
    assert mapped == with_the_columns == {"projects", "tasks"}
