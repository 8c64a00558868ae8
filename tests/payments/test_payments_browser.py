"""In a real browser (Debian's Chromium via Playwright): the credits page of a site that sells
through Stripe sends the visitor to the Checkout Session's URL.

The API is a real localstripe process; the Checkout page is the one its test launcher serves
for the sessions localstripe itself lacks (``tests/support/localstripe_server.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.host.test_host_browser import CHROMIUM, browser
from tests.support import stripe_events as se
from tests.support.live_server import LiveServer
from tests.support.stripe_server import API_KEY, LocalStripe

__all__ = ["browser"]  # the fixture, shared with the host's browser tests

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium"),
]

CREDITS_PAGE = """---
title: Buy credits
layout: page
---
[memb_is_logged_in]
You have **[credit_balance] credits**.

[checkout_button product="bundle-100" button_text="Buy 100 credits"]
[/memb_is_logged_in]
"""


@pytest.fixture
def server(tmp_path: Path, stripe_site: Path) -> Iterator[tuple[LiveServer, LocalStripe]]:
    """The Stripe-selling site (its /credits page sells bundle-100) on a fresh SQLite database,
    talking to a localstripe process."""
    (stripe_site / "pages" / "credits.md").write_text(CREDITS_PAGE, encoding="utf-8")
    instance = tmp_path / "instance"
    with LocalStripe(tmp_path / "localstripe") as stripe_api:
        env = {
            "SHORTCODES_STRIPE_SECRET_KEY": API_KEY,
            "SHORTCODES_STRIPE_WEBHOOK_SECRET": se.WEBHOOK_SECRET,
            "SHORTCODES_STRIPE_API_BASE": stripe_api.api,
        }
        url = f"sqlite:///{instance / 'shortcodes.db'}"
        with LiveServer(instance, url, site_dir=stripe_site, env=env) as live:
            yield live, stripe_api


def test_the_credits_page_sends_the_visitor_to_the_stripe_checkout_url(
    server: tuple[LiveServer, LocalStripe], browser: object, tmp_path: Path
) -> None:
    live, stripe_api = server
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(f"{live.url}/login?next=/credits")
    page.fill("input[name=email]", "poor@example.com")
    page.fill("input[name=password]", "poor-pass")
    page.click("button[type=submit]:has-text('Log in')")
    page.wait_for_url(f"{live.url}/credits")
    page.click("button:has-text('Buy 100 credits')")
    page.wait_for_url(f"{stripe_api.api}/_config/test/pay/cs_test_*")
    page.screenshot(path=str(tmp_path / "checkout.png"))
    (session,) = stripe_api.sessions()
    assert page.url == f"{stripe_api.api}/_config/test/pay/{session['id']}"
    assert session["params"]["line_items"] == [{"price": "price_bundle100", "quantity": "1"}]
    assert page.inner_text("h1") == f"Test pay {session['id']}"
