"""The browser harness itself: Debian's Chromium loads a page from the live server."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from playwright.async_api import Page

from tests.conftest import screenshot_path
from tests.harness.live import LiveServer

pytestmark = pytest.mark.browser


async def test_chromium_renders_the_api_docs(
    app: FastAPI, live_server: LiveServer, page: Page
) -> None:
    await page.goto(f"{live_server.url}/docs")
    await page.wait_for_selector(".swagger-ui .info .title")
    assert "tenantdesk" in await page.inner_text(".swagger-ui .info .title")
    await page.screenshot(path=screenshot_path("docs"))
