"""The page editor in a real browser (Chromium through Playwright, a live server process).

An admin opens the editor of a page on a private copy of the demo site, types a gate typo, sees
the problem (file line and column) and the preview update without the gated text, clicks the
problem to jump to its line, fixes the typo, publishes, and sees the live page change.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.host.test_host_browser import CHROMIUM, CHROMIUM_ARGS, expect, playwright_sync
from tests.host.test_host_browser import pytestmark as browser_marks
from tests.support.live_server import LiveServer
from tests.support.paths import SITE

pytestmark = browser_marks


@pytest.fixture
def site_copy(tmp_path: Path) -> Path:
    """A private copy of the demo site: the editor writes to it."""
    copy = tmp_path / "site"
    shutil.copytree(SITE, copy)
    return copy


@pytest.fixture
def server(template_db: Path, tmp_path: Path, site_copy: Path) -> Iterator[LiveServer]:
    """``python server.py`` serving the copied site on a seeded copy of the database."""
    instance = tmp_path / "instance"
    instance.mkdir()
    shutil.copyfile(template_db, instance / "shortcodes.db")
    url = f"sqlite:///{instance / 'shortcodes.db'}"
    with LiveServer(instance, url, site_dir=site_copy) as live:
        yield live


@pytest.fixture
def page(server: LiveServer) -> Iterator[object]:
    """A headless Chromium tab logged in as the demo admin."""
    with playwright_sync.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            tab = chromium.new_page()
            tab.goto(f"{server.url}/login?next=/admin/pages")
            tab.fill("input[name=email]", "admin@example.com")
            tab.fill("input[name=password]", "admin-pass")
            tab.click("button[type=submit]:has-text('Log in')")
            tab.wait_for_url(f"{server.url}/admin/pages")
            yield tab
        finally:
            chromium.close()


TYPO = '[memb_has_any_tagg tagid="Site Admin"]Top secret plans[/memb_has_any_tagg]'


def test_an_admin_types_a_typo_sees_it_fixes_it_and_publishes(
    server: LiveServer, page: object, site_copy: Path, tmp_path: Path
) -> None:
    tab: object = page
    tab.click("a.edit[href='/admin/pages/edit/library.md']")  # type: ignore[attr-defined]
    tab.wait_for_url(f"{server.url}/admin/pages/edit/library.md")  # type: ignore[attr-defined]
    text = tab.locator("#editor-text")  # type: ignore[attr-defined]
    original = (site_copy / "pages" / "library.md").read_text("utf-8")
    lines = original.count("\n")
    text.focus()
    tab.keyboard.press("Control+End")  # type: ignore[attr-defined]
    text.press_sequentially("\n" + TYPO + "\n")

    problems = tab.locator("#editor-problems li.problem-error")  # type: ignore[attr-defined]
    expect(problems).to_have_count(1)
    expect(problems.first).to_contain_text(
        f"{lines + 2}:1 error: unknown shortcode [memb_has_any_tagg] used as a pair; "
        "did you mean [memb_has_any_tag]?"
    )
    preview = tab.locator("#editor-preview")  # type: ignore[attr-defined]
    expect(preview).to_contain_text("did you mean [memb_has_any_tag]?")
    expect(preview).not_to_contain_text("Top secret plans")
    tab.screenshot(path=str(tmp_path / "1-typo.png"), full_page=True)  # type: ignore[attr-defined]

    problems.first.locator("a").click()  # jump: the typo's line is selected
    selected = tab.evaluate(  # type: ignore[attr-defined]
        "() => { const t = document.getElementById('editor-text');"
        " return t.value.slice(t.selectionStart, t.selectionEnd); }"
    )
    assert selected == TYPO

    fixed = original.rstrip("\n") + "\n\n" + TYPO.replace("tagg", "tag") + "\n"
    text.fill(fixed)
    expect(tab.locator("#editor-problems li.problem-none")).to_have_text("No problems.")  # type: ignore[attr-defined]
    tab.fill("#editor-as", "admin@example.com")  # type: ignore[attr-defined]
    tab.locator("#editor-as").dispatch_event("change")  # type: ignore[attr-defined]
    expect(preview).to_contain_text("Top secret plans")  # the admin holds "Site Admin"
    tab.screenshot(path=str(tmp_path / "2-fixed.png"), full_page=True)  # type: ignore[attr-defined]

    tab.click("#editor-publish")  # type: ignore[attr-defined]
    expect(tab.locator(".flash-success")).to_contain_text("Published library.md.")  # type: ignore[attr-defined]
    assert (site_copy / "pages" / "library.md").read_text("utf-8") == fixed
    tab.goto(f"{server.url}/library")  # type: ignore[attr-defined]
    expect(tab.locator("body")).to_contain_text("Top secret plans")  # type: ignore[attr-defined]


def test_buttons_in_the_editor_preview_are_inert_and_say_so(
    server: LiveServer, page: object
) -> None:
    tab: object = page
    tab.goto(f"{server.url}/admin/pages/edit/catalog.md")  # type: ignore[attr-defined]
    tab.fill("#editor-as", "rich@example.com")  # type: ignore[attr-defined]
    tab.locator("#editor-as").dispatch_event("change")  # type: ignore[attr-defined]
    button = tab.locator("#editor-preview").get_by_role(  # type: ignore[attr-defined]
        "button", name="Unlock Course B for 50 credits"
    )
    button.click()
    expect(tab.locator("#editor-inert")).to_be_visible()  # type: ignore[attr-defined]
    expect(tab.locator("#editor-inert")).to_have_text(  # type: ignore[attr-defined]
        "That button is inert in the preview: nothing was done."
    )
    assert tab.url == f"{server.url}/admin/pages/edit/catalog.md"  # type: ignore[attr-defined]
