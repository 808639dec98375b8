"""Driving one side with `wrk`: a Lua script that cycles through prepared requests and reports
its figures as one JSON line, read back into `LoadResult`."""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_MARKER = "BENCH_RESULT "

_SCRIPT = """
local method = %(method)s
local content_type = %(content_type)s
local targets = {
%(targets)s
}
local prepared = {}
local next_index = 0

init = function(args)
  for i, target in ipairs(targets) do
    local headers = {}
    if target[2] ~= "" then headers["Authorization"] = "Bearer " .. target[2] end
    if target[3] ~= "" then headers["Content-Type"] = content_type end
    prepared[i] = wrk.format(method, target[1], headers, target[3] ~= "" and target[3] or nil)
  end
end

request = function()
  next_index = next_index %% #prepared + 1
  return prepared[next_index]
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%(marker)s{"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, '
    .. '"socket_errors": %%d, "status_errors": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


@dataclass(frozen=True)
class Target:
    path: str
    token: str = ""
    body: str = ""


@dataclass(frozen=True)
class LoadResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    # The side's own CPU time over the requests it answered; filled in by the caller.
    cpu_ms_per_request: float | None = None

    def as_json(self) -> dict[str, float | int | None]:
        cpu = self.cpu_ms_per_request
        return {
            "requests_per_second": round(self.requests_per_second, 1),
            "p50_ms": round(self.p50_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "cpu_ms_per_request": round(cpu, 3) if cpu is not None else None,
            "requests": self.requests,
            "errors": self.errors,
        }


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string of ASCII text is a valid Lua string literal


def lua_script(method: str, targets: list[Target], content_type: str) -> str:
    rows = ",\n".join(
        f"  {{{_lua_string(t.path)}, {_lua_string(t.token)}, {_lua_string(t.body)}}}"
        for t in targets
    )
    return _SCRIPT % {
        "method": _lua_string(method),
        "content_type": _lua_string(content_type),
        "targets": rows,
        "marker": _MARKER,
    }


def run_wrk(
    base_url: str,
    method: str,
    targets: list[Target],
    *,
    seconds: float,
    connections: int,
    content_type: str = "application/json",
) -> LoadResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua_script(method, targets, content_type))
    try:
        completed = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                script.name,
                base_url,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        Path(script.name).unlink()
    line = next((x for x in completed.stdout.splitlines() if x.startswith(_MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result: {completed.stdout} {completed.stderr}")
    figures = json.loads(line[len(_MARKER) :])
    return LoadResult(
        requests_per_second=figures["requests"] / (figures["duration_us"] / 1e6),
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        requests=figures["requests"],
        errors=figures["socket_errors"] + figures["status_errors"],
    )
