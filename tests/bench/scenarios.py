"""What the benchmark asks of each side: the routes, with a caller's token, and the answers
every side must give alike before any load."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from tests.bench.load import Target
from tests.bench.stack import CLIENT_ID, SIDES, Stack
from tests.bench.world import PASSWORD, Caller


@dataclass(frozen=True)
class Scenario:
    """`with_twins=False`: the service alone (the password grant, reported as logins/s)."""

    name: str
    title: str
    method: str
    target: Callable[[Caller], Target]
    status: int
    with_twins: bool = True
    content_type: str = "application/json"

    @property
    def sides(self) -> tuple[str, ...]:
        return SIDES if self.with_twins else ("app",)


SCENARIOS = (
    Scenario(
        "list_tasks",
        "list 50 tasks",
        "GET",
        lambda c: Target(f"{c.project_path}/tasks", c.token),
        200,
    ),
    Scenario(
        "get_task",
        "get one task",
        "GET",
        lambda c: Target(f"{c.project_path}/tasks/{c.task_id}", c.token),
        200,
    ),
    Scenario(
        "create_task",
        "create a task",
        "POST",
        lambda c: Target(f"{c.project_path}/tasks", c.token, '{"title": "A benchmark task"}'),
        201,
    ),
    Scenario("me", "GET /users/me", "GET", lambda c: Target("/api/v1/users/me", c.token), 200),
    Scenario(
        "login",
        "password grant (logins/s)",
        "POST",
        lambda c: Target(
            "/oauth/token",
            body=urlencode(
                {
                    "grant_type": "password",
                    "client_id": CLIENT_ID,
                    "username": c.email,
                    "password": PASSWORD,
                }
            ),
        ),
        200,
        with_twins=False,
        content_type="application/x-www-form-urlencoded",
    ),
)


def _answers(stack: Stack, side: str, scenario: Scenario) -> dict[str, object]:
    target = scenario.target(stack.callers[0])
    headers = {"content-type": scenario.content_type}
    if target.token:
        headers["authorization"] = f"Bearer {target.token}"
    response = httpx.request(
        scenario.method, stack.urls[side] + target.path, content=target.body, headers=headers
    )
    if response.status_code != scenario.status:
        raise RuntimeError(
            f"{side} answered {scenario.name} with {response.status_code}:\n{stack.log_tail(side)}"
        )
    return response.json()


def _shape(body: object) -> object:
    """The keys of an answer (and of its first list item), to compare the sides' answers."""
    if isinstance(body, dict):
        return {key: _shape(value) for key, value in body.items()}
    if isinstance(body, list):
        return [len(body), _shape(body[0])] if body else [0]
    return None


def check_sides_agree(stack: Stack, scenarios: list[Scenario]) -> None:
    for scenario in scenarios:
        shapes = {side: _shape(_answers(stack, side, scenario)) for side in scenario.sides}
        if len({json.dumps(shape, sort_keys=True) for shape in shapes.values()}) != 1:
            raise RuntimeError(f"the sides answer {scenario.name} differently: {shapes}")


def warm_verified_tokens(stack: Stack) -> None:
    """Each caller's token sent once to the service before any load. A client sends its token
    for the token's lifetime, so in a steady state the service has verified it already (and
    cached the claims). Without this, a short run over 1,000 callers would pay a first signature
    check on most of its requests and one over 100 callers on few of them, and the scale ratio
    (`--large` against the default) would measure that instead of the data's size."""
    with httpx.Client(base_url=stack.urls["app"]) as client:
        for caller in stack.callers:
            headers = {"authorization": f"Bearer {caller.token}"}
            client.get("/api/v1/users/me", headers=headers).raise_for_status()
