"""schemathesis over the live server's /openapi.json: every check, every phase, no failure.

Every check runs: that is schemathesis's default, and `--checks` is not given because on the
command line it would override the per-operation settings of `schemathesis.toml`, where the
statuses answered by design and the checks a documented design contradicts are declared, each
with its reason.
"""

from __future__ import annotations

import asyncio
import os
import sys

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import PROJECT_ROOT, TEST_DATABASE
from tests.harness.live import LiveServer

CONFIG = PROJECT_ROOT / "schemathesis.toml"
REPORTS = PROJECT_ROOT / "test-artifacts" / f"schemathesis-{TEST_DATABASE}"
PASSWORD = "schemathesis passphrase 1"
# Settings, so that a longer hunt is one variable away. Each pass gives every operation
# MAX_EXAMPLES cases; fuzzing and stateful passes repeat until RUN_SECONDS are spent, so the run
# takes the same time on a fast machine (more passes) and on a busy one (fewer).
MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "20")
RUN_SECONDS = int(os.environ.get("SCHEMATHESIS_SECONDS", "150"))
SEED = os.environ.get("SCHEMATHESIS_SEED", "20261201")
# Loading the schema and reporting come on top of the budget.
OVERRUN_SECONDS = 90


async def _signed_up_token(http: httpx.AsyncClient, email: str) -> str:
    signed_up = await http.post("/api/v1/users", json={"email": email, "password": PASSWORD})
    assert signed_up.status_code == 201, signed_up.text
    token = await http.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "client_id": "web",
            "username": email,
            "password": PASSWORD,
        },
    )
    assert token.status_code == 200, token.text
    return str(token.json()["access_token"])


@pytest.mark.timeout(RUN_SECONDS + OVERRUN_SECONDS + 60)
async def test_the_api_conforms_to_its_openapi(app: FastAPI, live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        token = await _signed_up_token(http, "contract@example.com")
        own_session_token = await _signed_up_token(http, "session-ender@example.com")
    environment = {
        **os.environ,
        "TENANTDESK_TOKEN": token,
        "TENANTDESK_OWN_SESSION_TOKEN": own_session_token,
    }
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "run",
        f"{live_server.url}/openapi.json",
        "--phases=examples,coverage,fuzzing,stateful",
        f"--max-examples={MAX_EXAMPLES}",
        f"--max-time={RUN_SECONDS}",
        f"--seed={SEED}",
        "--report=junit",
        f"--report-dir={REPORTS}",
        "--no-color",
    ]
    REPORTS.mkdir(parents=True, exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        *command,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), RUN_SECONDS + OVERRUN_SECONDS)
    report = output.decode()
    (REPORTS / "output.txt").write_text(report)  # the phases' timings, kept for CI
    assert process.returncode == 0, report
