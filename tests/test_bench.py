"""`scripts/bench` at a tiny scale for a second per side, so that it cannot rot: the shape of
its report, never a speed (this machine's speed is no property of the code)."""

from __future__ import annotations

import shutil

import pytest

from tests.bench.run import run_report
from tests.conftest import IN_CI

pytestmark = pytest.mark.postgres_only

TINY = ["--tenants", "3", "--tasks", "60", "--seconds", "1", "--rounds", "1"]
SIDE_FIGURES = {"requests_per_second", "p50_ms", "p99_ms", "cpu_ms_per_request", "requests"} | {
    "errors"
}


@pytest.fixture(scope="module")
def report() -> tuple[str, dict[str, object]]:
    if shutil.which("wrk") is None:
        if IN_CI:
            pytest.fail("wrk is missing: scripts/test installs it with apt")
        pytest.skip("wrk is missing: apt-get install wrk")
    return run_report(TINY)


def test_the_json_line_has_every_side_of_every_scenario_and_the_ratios(
    report: tuple[str, dict[str, object]],
) -> None:
    _, summary = report
    assert summary["command"] == "scripts/bench " + " ".join(TINY)
    assert (summary["tenants"], summary["tasks_per_tenant"]) == (3, 60)
    assert isinstance(summary["service_rss_mb"], float)
    scenarios = {row["name"]: row for row in summary["scenarios"]}  # type: ignore[attr-defined]
    assert list(scenarios) == ["list_tasks", "get_task", "create_task", "me", "login"]
    for name in ("list_tasks", "get_task", "create_task", "me"):
        row = scenarios[name]
        for side in ("app", "floor", "bare"):
            assert set(row[side]) == SIDE_FIGURES, (name, side)
            assert row[side]["requests"] > 0, (name, side)
            assert row[side]["errors"] == 0, (name, side)
        for ratio in ("app_to_bare", "app_to_floor", "floor_to_bare", "cpu_app_to_bare"):
            assert isinstance(row[ratio], float), (name, ratio)
    assert set(scenarios["login"]["app"]) == {"logins_per_second", "errors"}
    assert scenarios["login"]["app"]["errors"] == 0


def test_the_table_names_every_scenario_and_side(report: tuple[str, dict[str, object]]) -> None:
    table, _ = report
    header, *rows = table.splitlines()
    assert header == table.splitlines()[0]
    assert header.split()[:3] == ["scenario", "side", "req/s"]
    assert header.endswith("x bare  x floor")
    titles = ("list 50 tasks", "get one task", "create a task", "GET /users/me", "password grant")
    for title in titles:
        assert any(row.startswith(title) for row in rows), title
    assert rows[-1].startswith("service RSS after the run:")
