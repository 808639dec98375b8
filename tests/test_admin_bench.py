"""`scripts/bench --admin` at a tiny scale, once per page, so that it cannot rot: the shape of
its report, never a speed (this machine's speed is no property of the code)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bench.run import run_report

pytestmark = pytest.mark.postgres_only

TINY = ["--admin", "--tenants", "3", "--tasks", "20", "--users", "30", "--repeat", "1"]
PAGE_FIGURES = {"signed_in_as", "view", "kind", "status", "ms", "cpu_ms", "kb"}
KINDS = {"list", "search", "details", "edit", "create"}


@pytest.fixture(scope="module")
def report() -> tuple[str, dict[str, object]]:
    return run_report(TINY)


def test_the_json_line_has_every_page_type_of_the_main_views_for_both_admins(
    report: tuple[str, dict[str, object]],
) -> None:
    _, summary = report
    assert summary["command"] == "scripts/bench " + " ".join(TINY)
    assert (summary["tenants"], summary["tasks_per_tenant"], summary["users"]) == (3, 20, 30)
    pages: list[dict[str, object]] = summary["pages"]  # type: ignore[assignment]
    for page in pages:
        assert set(page) == PAGE_FIGURES
        assert page["status"] == 200, page
        assert isinstance(page["ms"], float)
        assert isinstance(page["kb"], float)
        assert isinstance(page["cpu_ms"], float)
    seen = {(p["signed_in_as"], p["view"], p["kind"]) for p in pages}
    for signed_in_as in ("platform", "tenant"):
        for kind in KINDS:
            assert (signed_in_as, "task", kind) in seen
        assert (signed_in_as, "task", "lookup assignee_id") in seen
        assert (signed_in_as, "task", "lookup project_id") in seen
    for view in ("user", "tenant", "membership", "project"):
        assert ("platform", view, "list") in seen
    assert summary["slowest_ms"] == max(p["ms"] for p in pages)  # type: ignore[type-var]
    assert summary["heaviest_kb"] == max(p["kb"] for p in pages)  # type: ignore[type-var]


def test_the_table_has_a_row_per_page_and_names_the_slowest_and_heaviest(
    report: tuple[str, dict[str, object]],
) -> None:
    table, summary = report
    header, *rows = table.splitlines()
    assert header.split() == [
        "signed",
        "in",
        "as",
        "view",
        "page",
        "status",
        "ms",
        "cpu",
        "ms",
        "KB",
    ]
    assert len(rows) == len(summary["pages"]) + 2  # type: ignore[arg-type]
    assert rows[-2].startswith("slowest: ")
    assert rows[-1].startswith("heaviest: ")


@pytest.fixture
def kept_folder() -> Iterator[Path]:
    # Where the server's own (unprivileged) user can reach it, unlike pytest's tmp_path.
    folder = Path(tempfile.mkdtemp(prefix="tenantdesk-kept-bench-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_kept_database_is_reused_by_the_next_run(kept_folder: Path) -> None:
    kept = ["--keep", str(kept_folder)]
    _, first = run_report([*TINY, *kept])
    assert (kept_folder / "world.json").exists()
    _, second = run_report([*TINY, *kept])
    assert _statuses(second) == _statuses(first)


def _statuses(summary: dict[str, object]) -> list[tuple[object, ...]]:
    pages: list[dict[str, object]] = summary["pages"]  # type: ignore[assignment]
    return [(p["signed_in_as"], p["view"], p["kind"], p["status"]) for p in pages]
