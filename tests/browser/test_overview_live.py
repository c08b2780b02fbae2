"""In Chromium: log in, open the Overview, and watch the worker's status change live as the
test stops and restarts the real Celery worker."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.support import confirmed_totp_device, totp_code

# Debian's Chromium; Playwright never downloads a browser of its own here.
CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = pytest.mark.browser


def test_the_overview_follows_the_worker_live(live_web, celery_worker, make_user, tmp_path):
    device = confirmed_totp_device(make_user("alice", "operator"))

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"{live_web.url}/")
        expect(page).to_have_url(f"{live_web.url}/accounts/login/?next=/")
        page.fill("#id_username", "alice")
        page.fill("#id_password", "a-long-test-password")
        page.click("main button[type=submit]")
        expect(page).to_have_url(re.compile(r"/accounts/second-factor/"))
        page.fill("#id_code", totp_code(device))
        page.click("main button[type=submit]")

        worker = page.locator("#service-worker")
        expect(worker).to_have_attribute("data-status", "up", timeout=15_000)
        expect(page.locator("#node-status")).to_have_attribute("data-status", "up")
        page.screenshot(path=tmp_path / "overview-up.png")

        celery_worker.stop()
        expect(worker).to_have_attribute("data-status", "down", timeout=15_000)
        expect(page.locator("#node-status")).to_contain_text("worker")

        celery_worker.start()
        expect(worker).to_have_attribute("data-status", "up", timeout=15_000)
        # The page changed without a reload: still the one document we logged in to.
        assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
        assert page.url == f"{live_web.url}/"
        browser.close()
