"""The panel builds its links from its own routes (`admin/urls.py`): every one of them is the URL
the app's router builds, and names outside the panel are still the app router's."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from starlette.routing import NoMatchFound, Route

from admin.setup import ADMIN_PATH
from admin.urls import PanelUrlPaths
from tests.admin.conftest import ORIGIN, AdminBrowser, AdminWorld


def _panel_paths(app: FastAPI) -> PanelUrlPaths:
    return PanelUrlPaths(ADMIN_PATH, app.state.admin.admin.routes, app.router)


def test_every_panel_route_has_the_url_the_app_router_gives(app: FastAPI) -> None:
    paths = _panel_paths(app)
    checked = 0
    for route in app.state.admin.admin.routes:
        parameters = {name: f"{name}-1;2" for name in getattr(route, "param_convertors", {})}
        if not isinstance(route, Route):  # the statics mount takes a file's path
            parameters = {"path": "css/main.css"}
        name = f"admin:{route.name}"
        assert paths.url_path_for(name, **parameters) == app.router.url_path_for(name, **parameters)
        checked += 1
    assert checked > 10


def test_names_outside_the_panel_and_unknown_names_are_left_to_the_app_router(
    app: FastAPI,
) -> None:
    paths = _panel_paths(app)
    assert paths.url_path_for("ready") == app.router.url_path_for("ready") == "/health/ready"
    with pytest.raises(NoMatchFound):
        paths.url_path_for("admin:no-such-page")
    with pytest.raises(NoMatchFound):
        paths.url_path_for("admin:list")  # its identity is missing


async def test_a_list_page_links_to_each_row_in_the_panel(
    browser_client: AdminBrowser, world: AdminWorld
) -> None:
    await browser_client.login(world.root.email)
    page = await browser_client.get("/admin/task/list")
    assert page.status_code == 200
    for task in [*world.acme.tasks, *world.globex.tasks]:
        assert f"{ORIGIN}/admin/task/details/{world.pk(task)}" in page.text
