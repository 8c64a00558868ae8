"""Host author preview: admins see any page as anyone with lint problems; nobody else can."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from flask import Flask

from tests.support.host import counts, logged_in, make_app, store
from tests.support.paths import SITE


def test_admin_previews_the_catalog_as_each_kind_of_contact(app: Flask) -> None:
    admin = logged_in(app, "admin@example.com")
    owner = BeautifulSoup(admin.get("/_preview/catalog?as=owner@example.com"), "html.parser")
    assert owner.select_one(".creditbutton-owned a[href='/courses/b']") is not None
    assert "as owner@example.com" in owner.select_one(".preview-banner").get_text()
    poor = BeautifulSoup(admin.get("/_preview/catalog?as=poor@example.com"), "html.parser")
    assert len(poor.select(".creditbutton-short")) == 6
    anonymous = BeautifulSoup(admin.get("/_preview/catalog?as=anonymous"), "html.parser")
    assert len(anonymous.select(".creditbutton-anonymous")) == 6


def test_preview_buttons_are_inert_so_an_admin_cannot_act_for_someone_else(app: Flask) -> None:
    admin = logged_in(app, "admin@example.com")
    admin.get("/_preview/catalog?as=rich@example.com")
    fields = admin.button("buy-course-b")
    before = counts(app)
    assert admin.client.post("/actions/buy-course-b", data=fields).status_code == 400
    assert counts(app) == before


def test_preview_says_when_the_contact_could_not_open_the_page(app: Flask) -> None:
    admin = logged_in(app, "admin@example.com")
    html = admin.get("/_preview/courses/b?as=poor@example.com")
    assert "would NOT be allowed" in html


@pytest.fixture
def app_with_typo(template_db: Path, tmp_path: Path) -> Iterator[Flask]:
    """The demo site plus a page with an unclosed gate and an unknown operator."""
    site = tmp_path / "site"
    shutil.copytree(SITE, site)
    (site / "pages" / "typo.md").write_text(
        "---\ntitle: Typo\n---\nintro\n\n"
        '[memb_if value1="1" test="~~" value2="2"]x[/memb_if]\n\n'
        '[memb_has_any_tag tagid="Gold"]\nnever closed\n',
        encoding="utf-8",
    )
    application = make_app(template_db, tmp_path / "instance", SITE_DIR=site)
    yield application
    store(application).close()


def test_preview_lists_lint_problems_with_page_lines_above_the_page(app_with_typo: Flask) -> None:
    admin = logged_in(app_with_typo, "admin@example.com")
    html = admin.get("/_preview/typo?as=anonymous")
    soup = BeautifulSoup(html, "html.parser")
    problems = [li.get_text(" ") for li in soup.select(".lint li")]
    assert len(problems) == 2
    # Lines are counted in the file, front matter included.
    assert problems[0].startswith("error  line 6, column 27: [memb_if]: unknown test '~~'; ")
    assert problems[1].startswith(
        "error  line 8, column 1: [memb_has_any_tag] is never closed; it hides everything after"
        " it up to the end of its parent (add [/memb_has_any_tag])"
    )
    assert html.index('class="preview-banner"') < html.index("<p>intro</p>")  # problems first


def test_a_clean_page_says_it_has_no_problems(app: Flask) -> None:
    admin = logged_in(app, "admin@example.com")
    assert "Lint: no problems." in admin.get("/_preview/library?as=rich@example.com")


def test_preview_index_lists_every_page(app: Flask) -> None:
    admin = logged_in(app, "admin@example.com")
    soup = BeautifulSoup(admin.get("/_preview"), "html.parser")
    links = {a.get_text() for a in soup.select("article li a")}
    assert {"/", "/catalog", "/courses/b", "/library", "/account"} <= links


def test_preview_of_an_unknown_contact_or_page_is_404(app: Flask) -> None:
    admin = logged_in(app, "admin@example.com")
    assert admin.client.get("/_preview/catalog?as=ghost@example.com").status_code == 404
    assert admin.client.get("/_preview/nope?as=anonymous").status_code == 404


@pytest.mark.parametrize(
    "url", ["/_preview", "/_preview/account?as=rich@example.com", "/_shortcodes"]
)
def test_author_tools_are_403_for_contacts_and_login_for_anonymous(app: Flask, url: str) -> None:
    poor = logged_in(app, "poor@example.com")
    assert poor.client.get(url).status_code == 403
    anonymous = app.test_client().get(url)
    assert anonymous.status_code == 302
    assert anonymous.location.startswith("/login")


def test_shortcode_reference_lists_builtins_theme_and_host_shortcodes(app: Flask) -> None:
    admin = logged_in(app, "admin@example.com")
    soup = BeautifulSoup(admin.get("/_shortcodes"), "html.parser")
    headings = {h.get_text() for h in soup.find_all(["h2", "h3"])}
    text = soup.get_text()
    for name in ("memb_if", "memb_has_any_tag", "creditbutton", "checkout_button"):
        assert any(name in h for h in headings) or name in text
    assert soup.find("script") is None
