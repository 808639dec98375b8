"""`scripts/bench`: the service against its twins, alternating, and the ratios between them.

It starts the stack (`stack.py`: a throwaway PostgreSQL, migrated, bootstrapped and seeded with
N tenants x M tasks; the service with one worker, production settings and its access log; the
bare and floor twins), checks that every side answers each scenario alike, and drives the sides
in turn with `wrk`, for each round. It prints a table, then one JSON line. Each side's figures
are its best round: the rounds alternate the order of the sides, so that load from elsewhere on
the machine does not favour one of them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.bench import admin as admin_bench
from tests.bench.load import LoadResult, run_wrk
from tests.bench.report import summary, table
from tests.bench.scenarios import SCENARIOS, Scenario, check_sides_agree, warm_verified_tokens
from tests.bench.stack import Stack, cpu_seconds, rss_mb, running_stack


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--tasks", type=int, default=1000, help="tasks per tenant")
    parser.add_argument("--large", action="store_true", help="1,000 tenants x 1,000 tasks")
    parser.add_argument("--seconds", type=float, default=10, help="per side and round")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--scenarios", default=",".join(s.name for s in SCENARIOS), help="comma-separated"
    )
    parser.add_argument(
        "--profile", type=Path, help="record the service with py-spy (raw format) into this folder"
    )
    arguments = parser.parse_args(argv)
    if arguments.large:
        arguments.tenants, arguments.tasks = 1000, 1000
    return arguments


def _profiled(
    folder: Path | None, name: str, pid: int, seconds: float
) -> subprocess.Popen[bytes] | None:
    if folder is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    py_spy = str(Path(sys.executable).parent / "py-spy")  # a development dependency
    command = [py_spy, "record", "--format", "raw", "-p", str(pid), "-d", str(round(seconds))]
    command += ["-o", str(folder / f"{name}.txt")]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _load(
    stack: Stack, scenario: Scenario, side: str, arguments: argparse.Namespace, *, profile: bool
) -> LoadResult:
    pid = stack.pids[side]
    profiler = (
        _profiled(arguments.profile, scenario.name, pid, arguments.seconds) if profile else None
    )
    cpu_before = cpu_seconds(pid)
    result = run_wrk(
        stack.urls[side],
        scenario.method,
        [scenario.target(caller) for caller in stack.callers],
        seconds=arguments.seconds,
        connections=arguments.connections,
        content_type=scenario.content_type,
    )
    cpu_ms = (cpu_seconds(pid) - cpu_before) * 1000
    if profiler is not None:
        profiler.wait()
    per_request = cpu_ms / result.requests if result.requests else None
    return dataclasses.replace(result, cpu_ms_per_request=per_request)


def measure(
    stack: Stack, scenarios: list[Scenario], arguments: argparse.Namespace
) -> dict[str, dict[str, LoadResult]]:
    best: dict[str, dict[str, LoadResult]] = {s.name: {} for s in scenarios}
    for round_index in range(arguments.rounds):
        last_round = round_index == arguments.rounds - 1
        for scenario in scenarios:
            sides = scenario.sides[::-1] if round_index % 2 else scenario.sides
            for side in sides:
                result = _load(
                    stack, scenario, side, arguments, profile=last_round and side == "app"
                )
                kept = best[scenario.name].get(side)
                if kept is None or result.requests_per_second > kept.requests_per_second:
                    best[scenario.name][side] = result
    return best


def main(argv: list[str]) -> int:
    if "--admin" in argv:  # the admin panel's pages instead of the API's hot path
        return admin_bench.main(argv)
    arguments = _arguments(argv)
    wanted = set(arguments.scenarios.split(","))
    scenarios = [s for s in SCENARIOS if s.name in wanted]
    with (
        tempfile.TemporaryDirectory(prefix="tenantdesk-bench-") as folder,
        running_stack(arguments.tenants, arguments.tasks, Path(folder)) as stack,
    ):
        check_sides_agree(stack, scenarios)
        warm_verified_tokens(stack)
        results = measure(stack, scenarios, arguments)
        service_rss = rss_mb(stack.pids["app"])
    settings = {
        "tenants": arguments.tenants,
        "tasks_per_tenant": arguments.tasks,
        "seconds": arguments.seconds,
        "connections": arguments.connections,
        "rounds": arguments.rounds,
    }
    command = shlex.join(["scripts/bench", *argv])
    result = summary(command, settings, scenarios, results, service_rss)
    print(table(result))
    print(json.dumps(result))
    failed = any(r.errors for sides in results.values() for r in sides.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
