"""The benchmark's output: one summary (printed as a table, then as one JSON line).

Ratios are the service's requests/s over a twin's. CPU milliseconds per request (the process's
own CPU time over the requests it answered) compare the sides even when other work on the
machine takes CPU from all of them: `cpu_app_to_bare` is the bare twin's CPU per request over the
service's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tests.bench.load import LoadResult
from tests.bench.scenarios import Scenario
from tests.bench.stack import SIDES


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def _scenario_row(scenario: Scenario, sides: dict[str, LoadResult]) -> dict[str, Any]:
    app = sides["app"]
    row: dict[str, Any] = {"name": scenario.name, "title": scenario.title}
    if not scenario.with_twins:
        row["app"] = {"logins_per_second": round(app.requests_per_second, 1), "errors": app.errors}
        return row
    floor, bare = sides["floor"], sides["bare"]
    row |= {side: result.as_json() for side, result in sides.items()}
    row["app_to_bare"] = _ratio(app.requests_per_second, bare.requests_per_second)
    row["app_to_floor"] = _ratio(app.requests_per_second, floor.requests_per_second)
    row["floor_to_bare"] = _ratio(floor.requests_per_second, bare.requests_per_second)
    row["cpu_app_to_bare"] = _ratio(bare.cpu_ms_per_request, app.cpu_ms_per_request)
    row["cpu_app_to_floor"] = _ratio(floor.cpu_ms_per_request, app.cpu_ms_per_request)
    return row


def summary(
    command: str,
    settings: dict[str, Any],
    scenarios: Sequence[Scenario],
    results: dict[str, dict[str, LoadResult]],
    service_rss_mb: float | None,
) -> dict[str, Any]:
    rows = [_scenario_row(scenario, results[scenario.name]) for scenario in scenarios]
    return {"command": command, **settings, "service_rss_mb": service_rss_mb, "scenarios": rows}


def _cell(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


HEADER = (
    f"{'scenario':<28}{'side':<7}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'cpu ms':>8}"
    f"{'errors':>8}{'x bare':>8}{'x floor':>9}"
)


def table(result: dict[str, Any]) -> str:
    lines = [HEADER]
    for row in result["scenarios"]:
        title = row["title"]
        for side in SIDES:
            figures = row.get(side)
            if figures is None:
                continue
            rate = figures.get("requests_per_second", figures.get("logins_per_second"))
            is_app = side == "app"
            lines.append(
                f"{title:<28}{side:<7}{_cell(rate, 1):>9}{_cell(figures.get('p50_ms'), 1):>9}"
                f"{_cell(figures.get('p99_ms'), 1):>9}"
                f"{_cell(figures.get('cpu_ms_per_request'), 2):>8}{figures['errors']:>8}"
                f"{_cell(row.get('app_to_bare') if is_app else None, 3):>8}"
                f"{_cell(row.get('app_to_floor') if is_app else None, 3):>9}"
            )
            title = ""
    lines.append(f"service RSS after the run: {_cell(result['service_rss_mb'], 0)} MB")
    return "\n".join(lines)
