"""Themes: the default theme's creditbutton in every branch, template and Python shortcodes,
declared attributes checked by lint and at render, layouts, and the catalog example page.

Output is inspected with BeautifulSoup (the visible structure), never compared as whole pages.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from markupsafe import Markup

from shortcodes import Contact, Context, Environment, Tag
from shortcodes.context import RequestInfo, SiteInfo
from shortcodes.errors import ThemeError
from shortcodes.membership.signing import ActionSigner
from shortcodes.themes import Theme, load_theme, read_header, theme_path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "themes" / "default"
BUTTON = (
    '[creditbutton tag_id="Owns Course B" product_url="/courses/b" name="Course B" '
    'cost="50" action_id="buy-course-b" buy_more_url="/credits"]'
)
SIGNER = ActionSigner("theme-test-secret")

OWNER = Contact(1, "o@example.com", [Tag(123, "Owns Course B")], {"_Credits": 10})
RICH = Contact(2, "r@example.com", [], {"_Credits": 60})
EXACT = Contact(3, "e@example.com", [], {"_Credits": "50"})
POOR = Contact(4, "p@example.com", [], {"_Credits": 30})
EMPTY = Contact(5, "z@example.com", [], {"_Credits": ""})
NOFIELD = Contact(6, "n@example.com", [], {})
MEMBER = Contact(7, "m@example.com", [Tag(9, "All Access")], {"_Credits": 0})


@pytest.fixture(scope="module")
def env() -> Environment:
    """Builtins plus the default theme."""
    env = Environment()
    load_theme(env, DEFAULT)
    return env


def render(env: Environment, page: str, contact: Contact | None, **kw: object) -> BeautifulSoup:
    """Render ``page`` as the host would for ``contact`` and parse it."""
    ctx = Context(
        contact=contact,
        signer=SIGNER,
        csrf_token="csrf",
        request=RequestInfo("/catalog"),
        site=SiteInfo(url="https://example.com"),
        **kw,
    )  # type: ignore[arg-type]
    return BeautifulSoup(str(env.render(page, ctx)), "html.parser")


def branch_of(soup: BeautifulSoup) -> str:
    """Which branch the creditbutton rendered (its state class)."""
    [box] = soup.select("div.creditbutton")
    [state] = [c for c in box["class"] if c != "creditbutton"]
    return str(state)


# -- the three branches (and the visitor) -------------------------------------------------------


def test_owner_gets_a_link_to_the_product_and_no_form(env: Environment) -> None:
    soup = render(env, BUTTON, OWNER)
    assert branch_of(soup) == "creditbutton-owned"
    [link] = soup.select("a.creditbutton-open")
    assert link["href"] == "/courses/b"
    assert link.get_text() == "Open Course B"
    assert soup.find("form") is None


@pytest.mark.parametrize("contact", [RICH, EXACT], ids=["balance above cost", "balance = cost"])
def test_contact_who_can_afford_it_gets_the_signed_unlock_button(
    env: Environment, contact: Contact
) -> None:
    soup = render(env, BUTTON, contact)
    assert branch_of(soup) == "creditbutton-affordable"
    [form] = soup.find_all("form")
    assert form["method"] == "post"
    assert form["action"] == "/actions/buy-course-b"
    hidden = {i["name"]: i["value"] for i in form.find_all("input", type="hidden")}
    assert hidden["csrf_token"] == "csrf"
    assert hidden["redirect_url"] == "/courses/b"
    claim = SIGNER.verify_action(str(hidden["token"]), contact.id, "buy-course-b")
    assert dict(claim.params) == {"cost": "50", "tag": "Owns Course B"}
    assert form.find("button").get_text() == "Unlock Course B for 50 credits"
    assert soup.select("a.creditbutton-open") == []


def test_contact_who_cannot_afford_it_gets_buy_more_with_the_balance(env: Environment) -> None:
    soup = render(env, BUTTON, POOR)
    assert branch_of(soup) == "creditbutton-short"
    [link] = soup.select("a.creditbutton-buy-more")
    assert link["href"] == "/credits"
    assert "You have 30 credits" in soup.select_one(".creditbutton-balance").get_text()
    assert soup.find("form") is None


@pytest.mark.parametrize("contact", [EMPTY, NOFIELD], ids=["empty balance", "no balance field"])
def test_empty_balance_never_affords_and_shows_zero(env: Environment, contact: Contact) -> None:
    soup = render(env, BUTTON, contact)
    assert branch_of(soup) == "creditbutton-short"
    assert "You have 0 credits" in soup.select_one(".creditbutton-balance").get_text()
    assert soup.find("form") is None


def test_anonymous_visitor_gets_a_login_link_with_the_price(env: Environment) -> None:
    soup = render(env, BUTTON, None)
    assert branch_of(soup) == "creditbutton-anonymous"
    [link] = soup.select("a.creditbutton-login")
    assert link["href"] == "/login"
    assert soup.select_one(".creditbutton-cost").get_text() == "50 credits"
    assert soup.find("form") is None
    assert soup.select("a.creditbutton-open") == []


def test_unlocked_by_an_all_access_tag_counts_as_owning(env: Environment) -> None:
    page = BUTTON.replace("[creditbutton ", '[creditbutton unlocked_by="All Access, VIP" ')
    assert branch_of(render(env, page, MEMBER)) == "creditbutton-owned"
    assert branch_of(render(env, BUTTON, MEMBER)) == "creditbutton-short"


def test_tag_by_id_and_other_credit_field(env: Environment) -> None:
    page = BUTTON.replace('tag_id="Owns Course B"', 'tag_id="123"')
    assert branch_of(render(env, page, OWNER)) == "creditbutton-owned"
    points = Contact(8, "x@example.com", [], {"_Credits": 0, "Points": 75})
    page = BUTTON.replace("[creditbutton ", '[creditbutton field="Points" ')
    assert branch_of(render(env, page, points)) == "creditbutton-affordable"


# -- declared attributes: lint and render ---------------------------------------------------------


def test_cost_fifty_is_a_lint_error_at_the_attribute(env: Environment) -> None:
    page = "Buy:\n" + BUTTON.replace('cost="50"', 'cost="fifty"')
    [problem] = [p for p in env.lint(page) if p.severity == "error"]
    assert problem.message == "[creditbutton]: attribute cost='fifty' is not a whole number"
    assert (problem.line, problem.column) == (2, page.split("\n")[1].index("cost=") + 1)


def test_cost_fifty_renders_a_notice_in_preview_and_nothing_for_visitors(env: Environment) -> None:
    page = BUTTON.replace('cost="50"', 'cost="fifty"')
    preview = render(env, page, RICH)
    assert preview.select("div.creditbutton") == []
    assert "is not a whole number" in preview.select_one(".shortcode-error").get_text()
    for contact in (RICH, OWNER, None):
        assert str(render(env, page, contact, show_errors=False)).strip() == ""


def test_missing_required_and_unknown_attributes_are_reported(env: Environment) -> None:
    problems = env.lint('[creditbutton name="X" colour="red"]')
    messages = {p.message for p in problems}
    for name in ("tag_id", "product_url", "cost", "action_id", "buy_more_url"):
        assert f"[creditbutton] needs attribute {name}" in messages
    assert any("no attribute 'colour'" in m for m in messages)


def test_javascript_url_is_refused_by_lint_and_at_render(env: Environment) -> None:
    page = BUTTON.replace('product_url="/courses/b"', 'product_url=" JaVa\tScript:alert(1)"')
    assert any("is not a safe link" in p.message for p in env.lint(page))
    soup = render(env, page, OWNER)
    assert soup.find("a") is None
    assert "is not a safe link" in soup.get_text()


def test_javascript_url_from_a_variable_is_refused_at_render(env: Environment) -> None:
    page = BUTTON.replace('buy_more_url="/credits"', 'buy_more_url="{{contact.Link}}"')
    evil = Contact(9, "e@example.com", [], {"_Credits": 1, "Link": "javascript:alert(1)"})
    soup = render(env, page, evil, show_errors=False)
    assert soup.find("a") is None


def test_product_off_the_site_redirects_back_to_the_page(env: Environment) -> None:
    page = BUTTON.replace('product_url="/courses/b"', 'product_url="https://other.example/b"')
    form = render(env, page, RICH).find("form")
    assert form.find("input", attrs={"name": "redirect_url"})["value"] == "/catalog"


# -- template and Python shortcodes of a theme ----------------------------------------------------


def make_theme(tmp_path: Path, files: dict[str, str]) -> Path:
    """A theme folder under ``tmp_path`` with ``files`` (relative path -> text)."""
    root = tmp_path / "mytheme"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), "utf-8")
    return root


def test_template_sees_attrs_args_content_and_contact(tmp_path: Path) -> None:
    root = make_theme(
        tmp_path,
        {
            "shortcodes/card.html": """\
        {# shortcode
        enclosing = true
        [attributes]
        title = { type = "str", required = true }
        size = { type = "int", default = 3 }
        #}
        <section data-size="{{ attrs.size }}" data-args="{{ args|join(',') }}"><h2>{{ attrs.title }}</h2>{{ content }}<p>{{ contact.email if contact else "guest" }}</p></section>
        """
        },
    )
    env = Environment()
    load_theme(env, root)
    html = env.render(
        '[card title="Hi" a b]Body [memb_contact fields=email][/card]', Context(contact=RICH)
    )
    soup = BeautifulSoup(str(html), "html.parser")
    section = soup.find("section")
    assert section["data-size"] == "3"
    assert section["data-args"] == "a,b"
    assert soup.find("h2").get_text() == "Hi"
    assert section.get_text() == "HiBody r@example.comr@example.com"


def test_enclosing_template_is_a_gate_that_renders_only_the_chosen_branch(tmp_path: Path) -> None:
    root = make_theme(
        tmp_path,
        {
            "shortcodes/vip.html": """\
        {# shortcode
        enclosing = true
        #}
        {{ branch(has_tag("VIP")) }}
        """
        },
    )
    env = Environment()
    calls: list[str] = []
    env.add_shortcode("probe", lambda sc, ctx: calls.append(str(sc.attrs[0])) or "")
    load_theme(env, root)
    page = env.compile("[vip]in [probe one][else]out [probe two][/vip]")
    vip = Contact(1, "v@example.com", [Tag(1, "VIP")])
    assert str(page.render(Context(contact=vip))).strip() == "in"
    assert calls == ["one"]
    calls.clear()
    assert str(page.render(Context())).strip() == "out"
    assert calls == ["two"]
    assert "[else_vip]" in str(
        env.render("[memb_is_logged_in]a[else_vip]b[/memb_is_logged_in]", Context(contact=vip))
    )


def test_content_that_a_template_never_prints_never_runs(tmp_path: Path) -> None:
    root = make_theme(tmp_path, {"shortcodes/hide.html": "{# shortcode\nenclosing = true\n#}x"})
    env = Environment()
    calls: list[int] = []
    env.add_shortcode("probe", lambda sc, ctx: calls.append(1) or "")
    load_theme(env, root)
    assert str(env.render("[hide][probe][/hide]")) == "x"
    assert calls == []


def test_python_shortcodes_are_loaded_with_the_theme(tmp_path: Path) -> None:
    root = make_theme(
        tmp_path,
        {
            "shortcodes.py": """\
        from markupsafe import Markup

        def register(env):
            @env.shortcode("shout")
            def shout(sc, ctx):
                '''Upper-cases its first argument.'''
                return str(sc.attrs.get(0, "")).upper()
        """
        },
    )
    env = Environment()
    theme = load_theme(env, root)
    assert theme.shortcodes == ["shout"]
    assert str(env.render("[shout <b>hey</b>]")) == "&lt;B&gt;HEY&lt;/B&gt;"


def test_shortcodes_py_without_register_is_a_clear_error(tmp_path: Path) -> None:
    root = make_theme(tmp_path, {"shortcodes.py": "X = 1\n"})
    with pytest.raises(ThemeError, match=r"shortcodes.py: defines no register\(env\) function"):
        load_theme(Environment(), root)


def test_header_that_is_not_toml_names_file_and_line(tmp_path: Path) -> None:
    root = make_theme(
        tmp_path, {"shortcodes/bad.html": "{# shortcode\ndescription = 'ok'\ncost = = 1\n#}x"}
    )
    with pytest.raises(ThemeError) as info:
        load_theme(Environment(), root)
    assert info.value.line == 3
    assert info.value.file.endswith("bad.html")


def test_header_with_unknown_type_is_refused(tmp_path: Path) -> None:
    root = make_theme(
        tmp_path,
        {
            "shortcodes/bad.html": """\
        {# shortcode
        [attributes]
        cost = { type = "money" }
        #}x"""
        },
    )
    with pytest.raises(ThemeError, match="unknown type 'money'"):
        load_theme(Environment(), root)


def test_template_syntax_error_is_a_theme_error(tmp_path: Path) -> None:
    root = make_theme(tmp_path, {"shortcodes/broken.html": "{% if %}"})
    with pytest.raises(ThemeError, match=r"broken\.html:1: template error"):
        load_theme(Environment(), root)


def test_template_without_header_accepts_any_attributes(tmp_path: Path) -> None:
    decl = read_header("<b>{{ attrs.x }}</b>", tmp_path / "plain.html", "plain")
    assert decl.attributes is None


def test_theme_names_cannot_leave_the_themes_folder() -> None:
    assert theme_path("default") == Path("themes") / "default"
    with pytest.raises(ThemeError, match=r"^themes: '\.\./etc' is not a theme name$"):
        theme_path("../etc")


def test_missing_theme_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ThemeError, match="no such theme folder"):
        Theme(tmp_path / "nope")


# -- layouts and the catalog ----------------------------------------------------------------------


def test_page_layout_wraps_content_and_escapes_the_title() -> None:
    theme = Theme(DEFAULT)
    html = theme.render(
        "page.html",
        title="<Hello>",
        content=Markup("<p>body</p>"),
        contact=None,
        site=SiteInfo(name="Demo"),
        csrf_token="t",
    )
    soup = BeautifulSoup(str(html), "html.parser")
    assert soup.select_one("h1.page-title").get_text() == "<Hello>"
    assert soup.select_one("article.page p").get_text() == "body"
    assert soup.title.get_text() == "<Hello> · Demo"
    assert soup.select_one("a.site-login")["href"] == "/login"
    assert soup.select_one('link[rel="stylesheet"]')["href"] == "/theme/style.css"


def test_layout_shows_the_logged_in_contact_and_a_logout_form() -> None:
    theme = Theme(DEFAULT)
    contact = Contact(1, "ann@example.com", [], {"FirstName": "<Ann>"})
    soup = BeautifulSoup(
        str(
            theme.render(
                "page.html",
                title="t",
                content=Markup(""),
                contact=contact,
                site=None,
                csrf_token="tok",
            )
        ),
        "html.parser",
    )
    assert soup.select_one(".site-contact").get_text() == "<Ann>"
    form = soup.select_one("form.site-logout")
    assert form["method"] == "post"
    assert form.find("input", attrs={"name": "csrf_token"})["value"] == "tok"


def test_catalog_page_lints_clean_and_renders_each_branch(env: Environment) -> None:
    text = (ROOT / "site" / "pages" / "catalog.md").read_text("utf-8")
    body = text.split("---", 2)[2]
    assert [p for p in env.lint(body) if p.severity == "error"] == []
    owner = Contact(1, "o@example.com", [Tag(1, "Owns Course B")], {"_Credits": 25})
    soup = render(env, body, owner)
    states = [
        branch_of(BeautifulSoup(str(box), "html.parser")) for box in soup.select("div.creditbutton")
    ]
    assert len(states) == 6
    # Course A (20) and the guide (10) are affordable, B is owned, the rest are short.
    assert states == [
        "creditbutton-affordable",
        "creditbutton-owned",
        "creditbutton-short",
        "creditbutton-affordable",
        "creditbutton-short",
        "creditbutton-short",
    ]
    member = render(env, body, Contact(2, "m@example.com", [Tag(2, "All Access")], {}))
    assert len(member.select("div.creditbutton-owned")) == 6
