"""Exports are capped at `export_max_rows`: one click cannot pull a whole table into memory."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI

from admin.base import EXPORT_MAX_ROWS, AdminView
from admin.setup import MODEL_VIEWS
from tests.admin.conftest import AdminBrowser, AdminWorld


def test_every_view_caps_its_exports(app: FastAPI) -> None:
    views = [view for view in app.state.admin.views if isinstance(view, AdminView)]
    assert len(views) == len(MODEL_VIEWS)
    for view in views:
        assert 0 < view.export_max_rows <= EXPORT_MAX_ROWS, view


async def test_an_export_stops_at_the_cap(
    browser_client: AdminBrowser, world: AdminWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(AdminView, "export_max_rows", 2)
    await browser_client.login("root@example.com")
    response = await browser_client.get("/admin/membership/export/json")
    assert response.status_code == 200
    assert len(json.loads(response.text)) == 2  # of five memberships
