"""In Chromium: an auditor opens the Firehose page, sees the stored blocks, watches a new block
appear as the shell stores it, then resumes from a height and sees that block and no other."""

from __future__ import annotations

import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import connection
from playwright.sync_api import expect, sync_playwright

from tests.support import confirmed_totp_device, totp_code

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "consensus"))
from consensus_shell_support import dispatched, two_validators
from firehose_support import store_blocks

CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = pytest.mark.browser
__all__ = ["dispatched", "two_validators"]


def _in_a_thread(work, *args):
    # Playwright's sync API keeps an event loop in this thread, where Django refuses the ORM.
    def run():
        try:
            return work(*args)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result(timeout=120)


def test_the_firehose_page_shows_a_new_block_live(live_web, two_validators, dispatched, make_user, tmp_path):
    stored = store_blocks(two_validators, dispatched, 2)
    device = confirmed_totp_device(make_user("audrey", "auditor"))

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"{live_web.url}/firehose/")
        page.fill("#id_username", "audrey")
        page.fill("#id_password", "a-long-test-password")
        page.click("main button[type=submit]")
        expect(page).to_have_url(re.compile(r"/accounts/second-factor/"))
        page.fill("#id_code", totp_code(device))
        page.click("main button[type=submit]")
        expect(page).to_have_url(f"{live_web.url}/firehose/")
        expect(page.locator("nav a[aria-current=page]")).to_have_text("Firehose")

        for height in stored:
            expect(page.locator(f"#firehose-block-{height}")).to_be_visible(timeout=15_000)
        expect(page.locator("#firehose-status")).to_have_attribute("data-state", "live")

        new = _in_a_thread(store_blocks, two_validators, dispatched, 1)
        block = page.locator(f"#firehose-block-{new[0]}")
        # The heartbeat is 15 s: a block seen sooner came by the live wake-up.
        expect(block).to_be_visible(timeout=10_000)
        expect(block.locator("tbody tr")).to_have_count(2)
        expect(block).to_contain_text("test.payment")
        page.screenshot(path=tmp_path / "firehose.png")

        # Resume from the newest block: it alone is shown again.
        page.fill("#firehose-from", str(new[0]))
        page.click("#firehose-form button[type=submit]")
        expect(page.locator(f"#firehose-block-{new[0]}")).to_be_visible(timeout=15_000)
        expect(page.locator(".firehose-block")).to_have_count(1)

        # A height the chain has not reached: the server's sentence, and nothing shown.
        page.fill("#firehose-from", str(new[-1] + 5))
        page.click("#firehose-form button[type=submit]")
        expect(page.locator("#firehose-status")).to_have_attribute("data-state", "error", timeout=10_000)
        expect(page.locator("#firehose-status")).to_contain_text("there is no block")
        expect(page.locator(".firehose-block")).to_have_count(0)
        assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
        browser.close()
