"""In Chromium: compose a message with its confirmation step, then watch the recipient's inbox
receive the next one live (websocket + htmx), without a reload."""

from __future__ import annotations

import re
import threading

import pytest
from django.db import connections
from playwright.sync_api import expect, sync_playwright

from messaging import services
from tests.messaging.conftest import make_party, node  # noqa: F401 - fixtures of the messaging tests
from tests.support import confirmed_totp_device, totp_code

CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = pytest.mark.browser


def test_compose_then_the_inbox_updates_live(live_web, make_user, make_party, tmp_path):  # noqa: F811
    alice, carol = make_party("alice"), make_party("carol")
    device = confirmed_totp_device(make_user("olga", "operator"))

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"{live_web.url}/messages/compose/")
        page.fill("#id_username", "olga")
        page.fill("#id_password", "a-long-test-password")
        page.click("main button[type=submit]")
        expect(page).to_have_url(re.compile(r"/accounts/second-factor/"))
        page.fill("#id_code", totp_code(device))
        page.click("main button[type=submit]")

        expect(page).to_have_url(re.compile(r"/messages/compose/"))
        page.select_option("#id_sender", str(alice.counterparty.pk))
        page.fill("#id_recipients", carol.address)
        page.fill("#id_text", "settle at 16:00")
        page.click("main button[type=submit]")
        expect(page.locator("#confirm")).to_contain_text(carol.address)
        page.click("#confirm button[type=submit]")
        sent = page.locator("#sent")
        expect(sent).to_contain_text("delivered")
        first_id = sent.get_attribute("data-message")

        page.goto(f"{live_web.url}/messages/?counterparty={carol.counterparty.pk}")
        expect(page.locator(f'#inbox tr[data-message="{first_id}"]')).to_contain_text("encrypted")
        page.screenshot(path=tmp_path / "inbox.png")

        # Playwright's sync API runs an event loop in this thread; the ORM runs in another.
        sent_ids: list[str] = []

        def send() -> None:
            result = services.message_send(
                request=services.ComposeRequest(
                    sender=alice.address,
                    kind="note",
                    recipients=[carol.address],
                    text="live one",
                    encrypt=False,
                )
            )
            sent_ids.append(result.message.message_id)
            connections.close_all()

        sender = threading.Thread(target=send)
        sender.start()
        sender.join()
        row = page.locator(f'#inbox tr[data-message="{sent_ids[0]}"]')
        expect(row).to_contain_text("live one", timeout=15_000)
        expect(row.locator(".state")).to_have_attribute("data-state", "delivered")
        assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
        browser.close()
