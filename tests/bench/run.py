"""`scripts/bench` run to its end from the suite, for the tests that keep it from rotting."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import PROJECT_ROOT

TIMEOUT_SECONDS = 280


def run_report(arguments: list[str]) -> tuple[str, dict[str, object]]:
    """`python -m tests.bench ARGUMENTS`, which must succeed: its table and its JSON line."""
    completed = subprocess.run(
        [sys.executable, "-m", "tests.bench", *arguments],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    table, json_line = completed.stdout.rstrip().rsplit("\n", 1)
    return table, json.loads(json_line)
