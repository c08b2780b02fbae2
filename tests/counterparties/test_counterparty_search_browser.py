"""In Chromium: typing in the counterparty search filters the table through htmx (the table
partial is swapped in place, the page is not reloaded), and a reviewer approves from the
detail page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.support import confirmed_totp_device, totp_code

CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = pytest.mark.browser


def test_search_filters_live_and_a_reviewer_approves(live_web, make_counterparty):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    make_counterparty("alice", status="ACCEPTED")
    zed = make_counterparty("zed", status="PROCESSING")
    user = get_user_model().objects.create_user(username="rita", password="a-long-test-password")
    user.groups.add(Group.objects.get_or_create(name="kyc_reviewer")[0])
    device = confirmed_totp_device(user)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"{live_web.url}/counterparties/")
        page.fill("#id_username", "rita")
        page.fill("#id_password", "a-long-test-password")
        page.click("main button[type=submit]")
        page.fill("#id_code", totp_code(device))
        page.click("main button[type=submit]")
        expect(page).to_have_url(re.compile(r"/counterparties/$"))
        table = page.locator("#counterparty-table")
        expect(table).to_contain_text("Alice Example")
        page.evaluate("window.notReloaded = true")

        page.fill("#counterparty-search", "zed")

        expect(table).not_to_contain_text("Alice Example")
        expect(table).to_contain_text("Zed Example")
        assert page.evaluate("window.notReloaded") is True
        expect(page).to_have_url(re.compile(r"q=zed"))

        page.click(f"#counterparty-{zed.pk} a")
        page.click("#kyc-decision-form button[value=accept]")
        expect(page.locator("#kyc-status")).to_have_attribute("data-status", "ACCEPTED")
        browser.close()
