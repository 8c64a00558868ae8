"""Host pages: every demo page for every kind of visitor, access tags, Markdown, recompilation."""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from flask import Flask

from shortcodes.store.grants import GrantSpec
from tests.support.host import logged_in, make_app, store
from tests.support.paths import SITE
from tests.support.visitors import Visitor

PUBLIC = ["/", "/catalog", "/credits"]
PRODUCTS = {
    "/courses/a": "Owns Course A",
    "/courses/b": "Owns Course B",
    "/courses/c": "Owns Course C",
    "/guides/pricing": "Owns Pricing Guide",
    "/workshop": "Owns Workshop",
    "/masterclass": "Owns Masterclass",
}


@pytest.mark.parametrize("url", PUBLIC)
def test_public_pages_render_for_anonymous_visitors_in_the_theme(
    visitor: Visitor, url: str
) -> None:
    html = visitor.get(url)
    soup = BeautifulSoup(html, "html.parser")
    assert soup.select_one("header.site-header") is not None  # the theme layout wrapped it
    assert soup.select_one("a.site-login") is not None
    assert "[memb_" not in html
    assert "[credit" not in html


@pytest.mark.parametrize("url", [*PRODUCTS, "/account", "/library"])
def test_restricted_pages_send_anonymous_visitors_to_login_and_back(
    visitor: Visitor, url: str
) -> None:
    response = visitor.client.get(url)
    assert response.status_code == 302
    assert response.location == f"/login?next={url}"


@pytest.mark.parametrize("url", list(PRODUCTS))
def test_a_locked_product_page_offers_the_credit_buttons_branch_not_a_dead_end(
    app: Flask, url: str
) -> None:
    poor = logged_in(app, "poor@example.com")  # 5 credits: cannot afford anything
    html = poor.get(url, status=403)
    soup = BeautifulSoup(html, "html.parser")
    assert soup.select_one(".creditbutton-short a.creditbutton-buy-more")["href"] == "/credits"
    assert PRODUCTS[url] not in html  # no internal tag names
    rich = logged_in(app, "rich@example.com")  # 260 credits: can afford every product
    rich.get(url, status=403)
    action = BeautifulSoup(rich.last, "html.parser").select_one(".creditbutton-affordable form")
    assert action is not None
    bought = rich.client.post(action["action"], data=rich.button(action["action"][9:]))
    assert (bought.status_code, bought.location) == (303, url)
    rich.get(url)  # open now


def test_product_page_opens_for_its_owner_and_shows_the_owned_branch(app: Flask) -> None:
    owner = logged_in(app, "owner@example.com")
    soup = BeautifulSoup(owner.get("/courses/b"), "html.parser")
    assert "You own this for good" in soup.get_text()
    assert "Your balance is 40 credits" in soup.get_text()


@pytest.mark.parametrize("url", list(PRODUCTS))
def test_all_access_members_open_every_product_page(app: Flask, url: str) -> None:
    member = logged_in(app, "member@example.com")
    assert "all-access membership" in member.get(url)


def test_admin_opens_restricted_pages_without_the_tag(app: Flask) -> None:
    admin = logged_in(app, "admin@example.com")
    admin.get("/masterclass")


def test_unknown_pages_and_path_tricks_are_404(visitor: Visitor) -> None:
    for url in ["/nope", "/site.toml", "/../site.toml", "/courses/..%2Fsite", "/.hidden", "/seed"]:
        assert visitor.client.get(url).status_code == 404, url


def test_catalog_shows_each_branch_of_the_credit_button(app: Flask) -> None:
    owner = logged_in(app, "owner@example.com")
    soup = BeautifulSoup(owner.get("/catalog"), "html.parser")
    assert soup.select_one(".creditbutton-owned a[href='/courses/b']") is not None
    assert soup.select_one("form[action='/actions/buy-course-c']") is None  # 40 < 80
    poor = logged_in(app, "poor@example.com")
    soup = BeautifulSoup(poor.get("/catalog"), "html.parser")
    assert len(soup.select(".creditbutton-short a[href='/credits']")) == 6  # 5 credits buy nothing
    rich = logged_in(app, "rich@example.com")
    soup = BeautifulSoup(rich.get("/catalog"), "html.parser")
    assert len(soup.select("form.shortcode-action")) == 6  # 260 credits afford every product


def test_account_page_shows_balance_and_ledger_history_of_the_contact(app: Flask) -> None:
    rich = logged_in(app, "rich@example.com")
    soup = BeautifulSoup(rich.get("/account"), "html.parser")
    assert "Balance: 260 credits" in soup.get_text()
    rows = soup.select("table.credit-history tbody tr")
    assert len(rows) == 1
    assert "Welcome credits" in rows[0].get_text()
    assert "rich@example.com" in soup.get_text()


def test_home_page_greets_the_contact_with_their_balance(app: Flask) -> None:
    rich = logged_in(app, "rich@example.com")
    text = BeautifulSoup(rich.get("/"), "html.parser").get_text()
    assert "Hello, Rita!" in text
    assert "260 credits" in text


@pytest.fixture
def site_copy(tmp_path: Path) -> Path:
    """A private copy of the demo site folder that a test may edit."""
    target = tmp_path / "site"
    shutil.copytree(SITE, target)
    return target


@pytest.fixture
def app_on_copy(template_db: Path, tmp_path: Path, site_copy: Path) -> Flask:
    """The host serving ``site_copy``."""
    application = make_app(template_db, tmp_path / "instance", SITE_DIR=site_copy)
    yield application
    store(application).close()


def test_markdown_pages_keep_shortcode_attributes_intact(
    app_on_copy: Flask, site_copy: Path
) -> None:
    (site_copy / "pages" / "md.md").write_text(
        '---\ntitle: T\n---\n# Head\n\n*em* and [memb_contact fields="_Credits" default="none_here"]'
        "\n\n[memb_is_logged_in]\n\nin\n\n[else]\n\nout_side_\n\n[/memb_is_logged_in]\n",
        encoding="utf-8",
    )
    html = Visitor(app_on_copy.test_client()).get("/md")
    soup = BeautifulSoup(html, "html.parser")
    article = soup.select_one("article")
    assert article is not None
    assert article.h1 is not None
    assert "<em>em</em>" in html
    assert "none_here" in article.get_text()  # underscores reached the shortcode, not markdown
    assert "out_side_" in article.get_text()
    assert "<p></p>" not in html


def test_a_page_is_compiled_once_and_recompiled_when_its_file_changes(
    app_on_copy: Flask, site_copy: Path
) -> None:
    page = site_copy / "pages" / "changing.html"
    page.write_text("<p>first [credit_balance]</p>", encoding="utf-8")
    visitor = Visitor(app_on_copy.test_client())
    assert "first" in visitor.get("/changing")
    pages = app_on_copy.extensions["shortcodes"].pages
    compiled = pages.get(page, "/changing")
    visitor.get("/changing")
    assert pages.get(page, "/changing") is compiled  # served from the cache
    page.write_text("<p>second version</p>", encoding="utf-8")
    stat = page.stat()
    os.utime(page, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    assert "second version" in visitor.get("/changing")


def test_front_matter_access_with_login_only(app_on_copy: Flask, site_copy: Path) -> None:
    (site_copy / "pages" / "members.html").write_text(
        "---\ntitle: Members\nlogin: required\n---\n<p>inside</p>", encoding="utf-8"
    )
    client = app_on_copy.test_client()
    assert client.get("/members").status_code == 302
    poor = logged_in(app_on_copy, "poor@example.com")
    assert "inside" in poor.get("/members")


def test_broken_front_matter_is_a_500_without_details_for_visitors(
    app_on_copy: Flask, site_copy: Path
) -> None:
    (site_copy / "pages" / "broken.md").write_text("---\ntitel: x\n---\nbody", encoding="utf-8")
    response = app_on_copy.test_client().get("/broken")
    assert response.status_code == 500
    assert "titel" not in response.get_data(as_text=True)


def test_layout_runs_after_shortcodes_so_titles_are_not_shortcodes(
    app_on_copy: Flask, site_copy: Path
) -> None:
    (site_copy / "pages" / "order.html").write_text(
        "---\ntitle: Price [credit_balance]\n---\n<p>[credit_balance]</p>", encoding="utf-8"
    )
    rich = logged_in(app_on_copy, "rich@example.com")
    soup = BeautifulSoup(rich.get("/order"), "html.parser")
    assert soup.h1 is not None
    assert soup.h1.get_text() == "Price [credit_balance]"
    assert soup.select("article p")[-1].get_text() == "260"


def test_theme_static_files_are_served(visitor: Visitor) -> None:
    response = visitor.client.get("/theme/style.css")
    assert response.status_code == 200
    assert response.mimetype == "text/css"
    response.close()


@pytest.mark.parametrize("layout", ["nope", "../../site/seed"])
def test_a_page_naming_a_missing_layout_is_a_500_not_a_crash(
    app_on_copy: Flask, site_copy: Path, layout: str
) -> None:
    (site_copy / "pages" / "odd.html").write_text(
        f"---\nlayout: {layout}\n---\n<p>x</p>", encoding="utf-8"
    )
    response = app_on_copy.test_client().get("/odd")
    assert response.status_code == 500
    assert "Page error" in response.get_data(as_text=True)


def test_the_bare_layout_serves_a_page_without_the_title_heading(
    app_on_copy: Flask, site_copy: Path
) -> None:
    (site_copy / "pages" / "landing.html").write_text(
        "---\ntitle: T\nlayout: bare\n---\n<p>x</p>", encoding="utf-8"
    )
    soup = BeautifulSoup(Visitor(app_on_copy.test_client()).get("/landing"), "html.parser")
    assert soup.find("h1") is None
    assert soup.title is not None
    assert soup.title.get_text().startswith("T ·")


def test_account_page_lists_the_contacts_grants_with_their_expiry(app: Flask) -> None:
    rich = logged_in(app, "rich@example.com")
    the_store = store(app)
    now = the_store.clock()
    the_store.credit("rich@example.com", 25, reason="bonus", grant=GrantSpec(
        "promotion", expires_at=now + timedelta(days=10)))  # fmt: skip
    soup = BeautifulSoup(rich.get("/account"), "html.parser")
    rows = [
        [td.get_text() for td in tr.select("td")]
        for tr in soup.select("table.credit-grants tbody tr")
    ]
    expires = (now + timedelta(days=10)).strftime("%Y-%m-%d")
    assert rows == [["25", "promotion", "promotional", expires], ["260", "admin", "paid", "never"]]
    assert "Balance: 285 credits" in soup.get_text()
    soon = [li.get_text() for li in soup.select("ul.credit-expiring li")]
    assert soon == [f"25 expire on {expires}"]
    other = logged_in(app, "member@example.com")
    page = BeautifulSoup(other.get("/account"), "html.parser")
    assert "bonus" not in page.get_text()
    assert "25 expire" not in page.get_text()


def test_account_page_says_what_a_refund_below_zero_left_the_contact_owing(
    template_db: Path, tmp_path: Path, site_copy: Path
) -> None:
    config = site_copy / "site.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('clawback = "grant"', 'clawback = "below_zero"'), "utf-8")
    app = make_app(template_db, tmp_path / "instance", SITE_DIR=site_copy)
    the_store = store(app)
    try:
        # 260 seeded, then a purchase of 100; 300 spent (the 260 first, then 40 of the
        # purchase); the purchase refunded whole: its 60 back, and 40 below zero.
        the_store.credit("rich@example.com", 100, key="stripe:cs_debt", reason="bundle",
                         grant=GrantSpec("purchase"))  # fmt: skip
        the_store.debit("rich@example.com", 300, reason="courses")
        done = the_store.refund_grant("stripe:cs_debt", "rich@example.com", 100, key="r-1")
        assert (done.from_grants, done.below_zero) == (60, 40)
        soup = BeautifulSoup(logged_in(app, "rich@example.com").get("/account"), "html.parser")
        assert [p.get_text() for p in soup.select("p.credit-debt")] == [
            "You owe 40 credits: the next credits you get pay this first."
        ]
        assert "Balance: -40 credits" in soup.get_text()
        other = BeautifulSoup(logged_in(app, "member@example.com").get("/account"), "html.parser")
        assert other.select("p.credit-debt") == []
    finally:
        the_store.close()
