"""The panel's links, built from its own routes.

A panel page builds a URL for every link it shows (each row's details, edit and delete, the menu,
the filters). Starlette's `request.url_for` asks the app's router, which walks every route of the
API, raising and catching `NoMatchFound` at each, before it reaches the panel's mount: that walk
took two thirds of a list page's time. Inside the panel, `PanelUrls` answers the panel's own
names (`admin:<route>`) from a table of its routes built once, and leaves every other name to the
app's router.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, NoMatchFound, Router
from starlette.types import ASGIApp, Receive, Scope, Send

PANEL_ROUTE_PREFIX = "admin:"


class PanelUrlPaths:
    """`url_path_for` as the app's router answers it, the panel's names looked up directly."""

    def __init__(self, mount_path: str, routes: list[BaseRoute], app_router: Router) -> None:
        self.mount_path = mount_path.rstrip("/")
        self.app_router = app_router
        self.routes: dict[str, BaseRoute] = {}
        for route in routes:
            name = getattr(route, "name", None)
            if name is not None:
                self.routes.setdefault(name, route)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        route = None
        if name.startswith(PANEL_ROUTE_PREFIX):
            route = self.routes.get(name.removeprefix(PANEL_ROUTE_PREFIX))
        if route is not None:
            try:
                url = route.url_path_for(name.removeprefix(PANEL_ROUTE_PREFIX), **path_params)
            except NoMatchFound:  # another route of the same name may take these parameters
                pass
            else:
                return URLPath(path=self.mount_path + str(url), protocol=url.protocol)
        return self.app_router.url_path_for(name, **path_params)


class PanelUrls:
    """Middleware of the panel's app: its requests build URLs through `PanelUrlPaths`."""

    def __init__(self, app: ASGIApp, *, mount_path: str) -> None:
        self.app = app
        self.mount_path = mount_path
        self.paths: PanelUrlPaths | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "router" in scope:
            if self.paths is None:  # the routes are complete once a request comes in
                self.paths = PanelUrlPaths(self.mount_path, scope["app"].routes, scope["router"])
            scope["router"] = self.paths
        await self.app(scope, receive, send)
