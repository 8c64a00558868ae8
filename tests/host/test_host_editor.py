"""The page editor at /admin/pages: admins only, CSRF, atomic writes inside the pages folder,
drafts vs publish, live preview of unsaved text as any contact, inert buttons.

Each test edits a private copy of the demo site (``site_copy``), never the repository's.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from tests.support.host import make_app, store
from tests.support.paths import SITE
from tests.support.visitors import Visitor


@pytest.fixture
def site_copy(tmp_path: Path) -> Path:
    """A private copy of the demo site folder."""
    copy = tmp_path / "site"
    shutil.copytree(SITE, copy)
    return copy


@pytest.fixture
def app(template_db: Path, tmp_path: Path, site_copy: Path) -> Iterator[Flask]:
    """The demo app serving the copied site."""
    application = make_app(template_db, tmp_path / "instance", SITE_DIR=site_copy)
    yield application
    store(application).close()


def admin(app: Flask) -> Visitor:
    """The demo admin, logged in."""
    who = Visitor(app.test_client())
    assert who.login("admin@example.com").status_code == 303
    return who


def preview(who: Visitor, file: str, text: str, as_: str = "anonymous", csrf: str | None = None):  # type: ignore[no-untyped-def]
    """POST the unsaved text to the live preview with the CSRF header."""
    token = who.csrf(who.get("/admin/pages/edit/" + file)) if csrf is None else csrf
    return who.client.post(
        "/admin/pages/preview",
        json={"file": file, "text": text, "as": as_},
        headers={"X-CSRFToken": token},
    )


def test_the_index_lists_every_page_with_an_edit_link(app: Flask) -> None:
    html = admin(app).get("/admin/pages")
    assert 'href="/admin/pages/edit/catalog.md"' in html
    assert 'href="/admin/pages/edit/courses/b.md"' in html or "courses/" in html


def test_the_editor_shows_the_file_and_its_problems_with_file_lines(
    app: Flask, site_copy: Path
) -> None:
    """Problems carry the line in the file, front matter included."""
    (site_copy / "pages" / "typo.md").write_text(
        "---\ntitle: T\n---\nline four\n[memb_iff x]secret[/memb_iff]\n", "utf-8"
    )
    html = admin(app).get("/admin/pages/edit/typo.md")
    assert 'data-line="5" data-column="1">5:1</a> error: unknown shortcode [memb_iff]' in html


def test_live_preview_renders_unsaved_text_as_the_chosen_contact(app: Flask) -> None:
    who = admin(app)
    text = "---\ntitle: P\n---\nHi [memb_contact fields=FirstName default=stranger]\n"
    anonymous = preview(who, "new.md", text).get_json()
    assert anonymous["problems"] == []
    assert anonymous["html"] == "<p>Hi stranger</p>\n"
    rich = preview(who, "new.md", text, "rich@example.com").get_json()
    assert rich["html"] == "<p>Hi Rita</p>\n"


def test_live_preview_reports_the_typo_and_hides_the_secret(app: Flask) -> None:
    who = admin(app)
    text = "---\ntitle: P\n---\n\n[memb_has_any_tagg tagid=Gold]secret[/memb_has_any_tagg]\n"
    data = preview(who, "new.md", text).get_json()
    assert [(p["line"], p["column"], p["severity"]) for p in data["problems"]] == [(5, 1, "error")]
    assert "secret" not in data["html"]
    assert "did you mean [memb_has_any_tag]?" in data["html"]


def test_preview_buttons_are_inert_and_the_action_endpoint_says_so(app: Flask) -> None:
    who = admin(app)
    text = '[memb_actionset_button action_id="buy-course-a" button_text="Buy"]'
    html = preview(who, "p.html", text, "poor@example.com").get_json()["html"]
    assert 'value="preview-only"' in html
    poor = Visitor(app.test_client())
    poor.login("poor@example.com")
    poor.get("/catalog")
    response = poor.client.post(
        "/actions/buy-course-a", data={"token": "preview-only", "csrf_token": poor.csrf()}
    )
    assert response.status_code == 400
    assert "shown in a preview: it is inert and did nothing" in response.get_data(as_text=True)


def test_preview_needs_the_csrf_header(app: Flask) -> None:
    response = preview(admin(app), "p.md", "x", csrf="wrong")
    assert response.status_code == 400


def test_preview_of_an_unknown_contact_is_404(app: Flask) -> None:
    assert preview(admin(app), "p.md", "x", "nobody@example.com").status_code == 404


def test_preview_refuses_malformed_json(app: Flask) -> None:
    who = admin(app)
    token = who.csrf(who.get("/admin/pages"))
    response = who.client.post(
        "/admin/pages/preview", data="not json", headers={"X-CSRFToken": token}
    )
    assert response.status_code == 400


def test_publish_writes_the_page_atomically_and_the_live_page_changes(
    app: Flask, site_copy: Path
) -> None:
    who = admin(app)
    who.get("/admin/pages/edit/hello.md")
    response = who.post(
        "/admin/pages/save",
        {"file": "hello.md", "text": "---\r\ntitle: Hello\r\n---\r\nFresh words\r\n",
         "action": "publish"},
    )  # fmt: skip
    assert (response.status_code, response.location) == (303, "/admin/pages/edit/hello.md")
    assert (site_copy / "pages" / "hello.md").read_text("utf-8") == (
        "---\ntitle: Hello\n---\nFresh words\n"
    )
    assert "Fresh words" in Visitor(app.test_client()).get("/hello")
    assert not list((site_copy / "pages").glob(".editing-*"))  # no temporary file is left


def test_a_page_with_errors_is_saved_as_a_draft_but_not_published(
    app: Flask, site_copy: Path
) -> None:
    page = site_copy / "pages" / "catalog.md"
    before = page.read_text("utf-8")
    who = admin(app)
    who.get("/admin/pages/edit/catalog.md")
    bad = before + "\n[memb_has_any_tagg tagid=Gold]secret[/memb_has_any_tagg]\n"
    refused = who.post(
        "/admin/pages/save", {"file": "catalog.md", "text": bad, "action": "publish"}
    )
    assert refused.status_code == 422
    assert "Not published: 1 error(s)" in refused.get_data(as_text=True)
    assert page.read_text("utf-8") == before
    assert not (site_copy / "pages" / "catalog.md.draft").exists()
    saved = who.post("/admin/pages/save", {"file": "catalog.md", "text": bad, "action": "draft"})
    assert saved.status_code == 303
    assert (site_copy / "pages" / "catalog.md.draft").read_text("utf-8") == bad
    assert page.read_text("utf-8") == before  # the live page is unchanged
    assert "draft pending" in who.get("/admin/pages")
    assert "memb_has_any_tagg" in who.get("/admin/pages/edit/catalog.md")  # the draft is edited


@pytest.mark.parametrize(
    "name",
    ["../site.toml", "../../etc/passwd.md", "/etc/x.md", "a/../../x.md", "x.txt", ".hidden.md",
     "a//b.md", "", "x.md.draft", "sp ace.md"],
)  # fmt: skip
def test_files_outside_the_pages_folder_or_not_pages_are_refused(
    app: Flask, site_copy: Path, name: str
) -> None:
    who = admin(app)
    who.get("/admin/pages")
    response = who.post("/admin/pages/save", {"file": name, "text": "x", "action": "draft"})
    assert response.status_code == 400
    assert (site_copy / "site.toml").read_text("utf-8") == (SITE / "site.toml").read_text("utf-8")


def test_save_needs_csrf_and_a_known_action(app: Flask) -> None:
    who = admin(app)
    who.get("/admin/pages")
    no_csrf = who.client.post(
        "/admin/pages/save", data={"file": "a.md", "text": "x", "action": "draft"}
    )
    assert no_csrf.status_code == 400
    bad_action = who.post("/admin/pages/save", {"file": "a.md", "text": "x", "action": "delete"})
    assert bad_action.status_code == 400


def test_new_page_form_opens_the_editor_or_refuses_a_bad_name(app: Flask) -> None:
    who = admin(app)
    response = who.client.get("/admin/pages/new?file=guides/intro.md")
    assert (response.status_code, response.location) == (303, "/admin/pages/edit/guides/intro.md")
    assert who.client.get("/admin/pages/new?file=../x.md").status_code == 400


def test_the_editor_is_for_admins_only(app: Flask) -> None:
    rich = Visitor(app.test_client())
    rich.login("rich@example.com")
    rich.get("/")
    for url in ("/admin/pages", "/admin/pages/edit/catalog.md", "/admin/pages/new?file=a.md"):
        assert rich.client.get(url).status_code == 403
    data = {"file": "catalog.md", "text": "x", "action": "publish", "csrf_token": rich.csrf()}
    assert rich.client.post("/admin/pages/save", data=data).status_code == 403
    anonymous = app.test_client().get("/admin/pages")
    assert anonymous.status_code == 302


def test_inline_notices_name_the_line_check_names_in_a_markdown_page(app: Flask) -> None:
    """Markdown moves lines and front matter is cut off; the notice still says the file's line."""
    who = admin(app)
    text = (
        "---\ntitle: P\nlayout: page\n---\n# Heading\n\nSome *text*\n\n"
        "- a\n- b\n\n  para [memb_iff x]hidden[/memb_iff]\n"
    )
    data = preview(who, "lines.md", text).get_json()
    assert [(p["line"], p["column"]) for p in data["problems"]] == [(12, 8)]
    assert "[memb_iff] (line 12, column 8): unknown shortcode [memb_iff]" in data["html"]


def test_preview_of_a_page_with_bad_front_matter_says_where_instead_of_a_500(
    app: Flask, site_copy: Path
) -> None:
    (site_copy / "pages" / "oops.md").write_text(
        "---\ntitle: O\nlogin: requried\n---\nx\n", "utf-8"
    )
    who = admin(app)
    response = who.client.get("/_preview/oops?as=anonymous")
    assert response.status_code == 422
    assert "oops.md:3:8: front matter &#39;login&#39; is yes or no, got &#39;requried&#39;" in (
        response.get_data(as_text=True)
    )
    assert Visitor(app.test_client()).client.get("/oops").status_code == 500
