"""Host in a real browser: Debian's Chromium, headless, driven by Playwright against a live server.

A contact who can afford Course B logs in, sees the unlock button on the catalog, clicks it, lands
on the course with the success message and the new balance, and the catalog then shows the owned
branch. The contact who cannot afford anything sees the buy-more links. Screenshots of each step
are saved in the test's temporary folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.live_server import LiveServer

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect
# Assertions retry until this timeout: a real server on a loaded 2-core machine can take more
# than Playwright's default 5 s to answer a form post (publishing re-checks the page).
expect.set_options(timeout=30_000)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# CI installs Chromium and sets SHORTCODES_REQUIRE_BROWSER=1: there a missing browser fails the
# run instead of skipping it, so a broken install step cannot pass unseen.
if not CHROMIUM.exists() and os.environ.get("SHORTCODES_REQUIRE_BROWSER") == "1":
    raise RuntimeError("SHORTCODES_REQUIRE_BROWSER=1 but /usr/bin/chromium is missing")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)"
    ),
]


@pytest.fixture
def server(template_db: Path, tmp_path: Path) -> Iterator[LiveServer]:
    """The demo site on a seeded copy of the database, served by ``python server.py``."""
    instance = tmp_path / "instance"
    instance.mkdir()
    shutil.copyfile(template_db, instance / "shortcodes.db")
    with LiveServer(instance, f"sqlite:///{instance / 'shortcodes.db'}") as live:
        yield live


@pytest.fixture
def browser() -> Iterator[object]:
    """A headless Chromium."""
    with playwright_sync.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


def log_in(page: object, base: str, email: str, password: str) -> None:
    """Fill and submit the login form."""
    page.goto(f"{base}/login?next=/catalog")  # type: ignore[attr-defined]
    page.fill("input[name=email]", email)  # type: ignore[attr-defined]
    page.fill("input[name=password]", password)  # type: ignore[attr-defined]
    page.click("button[type=submit]:has-text('Log in')")  # type: ignore[attr-defined]
    page.wait_for_url(f"{base}/catalog")  # type: ignore[attr-defined]


def test_a_contact_who_can_afford_it_clicks_buy_and_sees_the_owned_branch(
    server: LiveServer, browser: object, tmp_path: Path
) -> None:
    page = browser.new_page()  # type: ignore[attr-defined]
    log_in(page, server.url, "rich@example.com", "rich-pass")
    button = page.get_by_role("button", name="Unlock Course B for 50 credits")
    expect(button).to_be_visible()
    page.screenshot(path=str(tmp_path / "1-catalog-before.png"), full_page=True)
    button.click()
    page.wait_for_url(f"{server.url}/courses/b")
    expect(page.locator(".flash-success")).to_have_text("Unlocked Course B — 210 credits left")
    expect(page.locator("article")).to_contain_text("Your balance is 210 credits")
    page.screenshot(path=str(tmp_path / "2-course-b.png"), full_page=True)
    page.goto(f"{server.url}/catalog")
    expect(page.get_by_role("link", name="Open Course B")).to_be_visible()
    expect(page.get_by_role("button", name="Unlock Course B for 50 credits")).to_have_count(0)
    expect(page.locator("article")).to_contain_text("You have 210 credits")
    page.screenshot(path=str(tmp_path / "3-catalog-after.png"), full_page=True)
    assert all(
        (tmp_path / f).stat().st_size > 1000
        for f in ("1-catalog-before.png", "3-catalog-after.png")
    )


def test_the_poor_contact_sees_buy_more_links_instead_of_buttons(
    server: LiveServer, browser: object, tmp_path: Path
) -> None:
    page = browser.new_page()  # type: ignore[attr-defined]
    log_in(page, server.url, "poor@example.com", "poor-pass")
    links = page.get_by_role("link", name="Buy more credits")
    expect(links).to_have_count(6)
    expect(page.locator("form.shortcode-action")).to_have_count(0)
    expect(page.locator("article")).to_contain_text("You have 5 credits; Course B costs 50.")
    page.screenshot(path=str(tmp_path / "poor-catalog.png"), full_page=True)
    links.first.click()
    page.wait_for_url(f"{server.url}/credits")
    page.get_by_role("button", name="Buy 50 credits").click()
    page.wait_for_url(f"{server.url}/credits")
    expect(page.locator(".flash-success")).to_contain_text("you now have 55 credits")
    page.screenshot(path=str(tmp_path / "poor-bought-credits.png"), full_page=True)


def wait_for_mail(outbox: Path, to: str, timeout: float = 60.0) -> str:
    """The body of the first email the server's own worker wrote to ``to``."""
    import email
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(outbox.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes())
            if message["To"] == to:
                payload = message.get_payload(decode=True)
                assert isinstance(payload, bytes)
                return payload.decode()
        time.sleep(0.2)
    raise AssertionError(f"no email to {to} after {timeout}s")


def test_a_new_visitor_signs_up_verifies_buys_with_credits_and_logs_out(
    server: LiveServer, browser: object, tmp_path: Path
) -> None:
    import re

    page = browser.new_page()  # type: ignore[attr-defined]
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None)
    page.goto(f"{server.url}/")
    page.get_by_role("link", name="Sign up").first.click()
    page.fill("input[name=name]", "Nina Newcomer")
    page.fill("input[name=email]", "nina@example.com")
    page.fill("input[name=password]", "nina-pass-1")
    page.click("button[type=submit]:has-text('Sign up')")
    expect(page.locator(".mail-sent")).to_contain_text("nina@example.com")
    text = wait_for_mail(server.instance / "outbox", "nina@example.com")
    (link,) = re.findall(r"https?://\S+", text)
    page.goto(link)
    page.get_by_role("button", name="Confirm and log in").click()
    page.wait_for_url(f"{server.url}/account")
    expect(page.locator(".flash-success")).to_contain_text("Your email is confirmed")
    page.goto(f"{server.url}/credits")
    page.get_by_role("button", name="Buy 50 credits").click()
    page.goto(f"{server.url}/catalog")
    expect(page.locator("article")).to_contain_text("You have 50 credits")
    page.get_by_role("button", name="Unlock Course A for 20 credits").click()
    page.wait_for_url(f"{server.url}/courses/a")
    expect(page.locator(".flash-success")).to_have_text(
        "Unlocked Course A: Foundations — 30 credits left"
    )
    expect(page.locator("article")).to_contain_text("Welcome to Course A: Foundations, Nina")
    page.screenshot(path=str(tmp_path / "course-a.png"), full_page=True)
    page.get_by_role("button", name="Log out").click()
    page.goto(f"{server.url}/account")
    page.wait_for_url(re.compile(r".*/login\?next=/account$"))
    assert blocked == []  # nothing the page needed was refused by the CSP
