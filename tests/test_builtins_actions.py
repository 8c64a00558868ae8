"""[memb_actionset_button] / [buy_actionset_button]: the POST form and its signed token.

The form is checked with BeautifulSoup; the token is verified with the real ActionSigner the
host uses (shortcodes.membership.signing), so these tests prove the button binds what the spec says.
"""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from bs4 import Tag as HtmlTag

from shortcodes import Contact, Context, Environment, Tag
from shortcodes.context import RequestInfo, SiteInfo
from shortcodes.errors import ActionTokenInvalid, ActionTokenWrongAction, ActionTokenWrongContact
from shortcodes.membership.signing import ActionSigner

ANN = Contact(7, "ann@example.com", [Tag(7, "Gold")], {"FirstName": "Ann", "_Credits": 60})
BUY = (
    '[memb_actionset_button action_id="buy-course-b" cost="50" tag="Owns Course B" '
    'button_text="Unlock for 50 credits" css_class="big" redirect_url="/courses/b"]'
)


@pytest.fixture(scope="module")
def env() -> Environment:
    """An environment with the builtins."""
    return Environment()


@pytest.fixture
def signer() -> ActionSigner:
    """The host's signer with a test secret."""
    return ActionSigner("test-secret", max_age=600)


def ctx_for(contact: Contact | None, signer: ActionSigner, **kw: object) -> Context:
    """A context like the host builds: signer, CSRF token, request path."""
    return Context(
        contact=contact,
        signer=signer,
        csrf_token="csrf-123",
        request=RequestInfo(path="/catalog"),
        site=SiteInfo(url="https://example.com"),
        **kw,
    )  # type: ignore[arg-type]


def the_form(html: str) -> HtmlTag:
    """The only form in ``html``."""
    forms = BeautifulSoup(html, "html.parser").find_all("form")
    assert len(forms) == 1, html
    return forms[0]


def fields(form: HtmlTag) -> dict[str, str]:
    """The hidden inputs of a form by name."""
    return {str(i["name"]): str(i["value"]) for i in form.find_all("input", type="hidden")}


def test_button_is_a_post_form_to_the_action_route(env: Environment, signer: ActionSigner) -> None:
    form = the_form(env.render(BUY, ctx_for(ANN, signer)))
    assert form["method"] == "post"
    assert form["action"] == "/actions/buy-course-b"
    assert sorted(fields(form)) == ["csrf_token", "redirect_url", "token"]
    assert fields(form)["csrf_token"] == "csrf-123"
    assert fields(form)["redirect_url"] == "/courses/b"
    button = form.find("button")
    assert button is not None
    assert button["type"] == "submit"
    assert button.get_text() == "Unlock for 50 credits"
    assert "big" in button["class"]


def test_token_binds_contact_action_and_declared_params(
    env: Environment, signer: ActionSigner
) -> None:
    token = fields(the_form(env.render(BUY, ctx_for(ANN, signer))))["token"]
    claim = signer.verify_action(token, 7, "buy-course-b")
    assert claim.contact_id == 7
    assert claim.action_id == "buy-course-b"
    assert dict(claim.params) == {"cost": "50", "tag": "Owns Course B"}


def test_token_for_another_contact_or_action_is_refused(
    env: Environment, signer: ActionSigner
) -> None:
    token = fields(the_form(env.render(BUY, ctx_for(ANN, signer))))["token"]
    with pytest.raises(ActionTokenWrongContact):
        signer.verify_action(token, 8, "buy-course-b")
    with pytest.raises(ActionTokenWrongAction):
        signer.verify_action(token, 7, "buy-course-c")


def test_tampered_token_is_refused(env: Environment, signer: ActionSigner) -> None:
    token = fields(the_form(env.render(BUY, ctx_for(ANN, signer))))["token"]
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(ActionTokenInvalid):
        signer.verify_action(tampered, 7, "buy-course-b")


def test_each_render_mints_a_fresh_single_use_token(env: Environment, signer: ActionSigner) -> None:
    template = env.compile(BUY)
    first = fields(the_form(template.render(ctx_for(ANN, signer))))["token"]
    second = fields(the_form(template.render(ctx_for(ANN, signer))))["token"]
    assert first != second
    assert (
        signer.verify_action(first, 7).idempotency_key
        != signer.verify_action(second, 7).idempotency_key
    )


def test_params_from_variables_are_bound_as_rendered(
    env: Environment, signer: ActionSigner
) -> None:
    page = '[buy_actionset_button action_id="gift" note="for {{contact.FirstName}}"]'
    token = fields(the_form(env.render(page, ctx_for(ANN, signer))))["token"]
    assert dict(signer.verify_action(token, 7, "gift").params) == {"note": "for Ann"}


def test_anonymous_visitor_gets_nothing(env: Environment, signer: ActionSigner) -> None:
    assert str(env.render(BUY, ctx_for(None, signer))) == ""


def test_defaults_submit_text_and_current_page(env: Environment, signer: ActionSigner) -> None:
    form = the_form(env.render('[memb_actionset_button action_id="a"]', ctx_for(ANN, signer)))
    assert form.find("button").get_text() == "Submit"  # type: ignore[union-attr]
    assert fields(form)["redirect_url"] == "/catalog"


def test_redirect_under_the_site_url_is_kept(env: Environment, signer: ActionSigner) -> None:
    page = '[memb_actionset_button action_id="a" redirect_url="https://example.com/done"]'
    assert fields(the_form(env.render(page, ctx_for(ANN, signer))))["redirect_url"] == (
        "https://example.com/done"
    )


def test_missing_action_id_is_a_notice_in_preview_and_empty_for_visitors(
    env: Environment, signer: ActionSigner
) -> None:
    page = '[memb_actionset_button button_text="Go"]'
    preview = BeautifulSoup(env.render(page, ctx_for(ANN, signer)), "html.parser")
    assert preview.find("form") is None
    notice = preview.find(class_="shortcode-error")
    assert notice is not None
    assert "needs action_id" in notice.get_text()
    assert str(env.render(page, ctx_for(ANN, signer, show_errors=False))) == ""
    assert str(env.render(page, ctx_for(None, signer))) == ""


def test_redirect_off_the_site_renders_no_form(env: Environment, signer: ActionSigner) -> None:
    page = '[memb_actionset_button action_id="a" redirect_url="//evil.example/x"]'
    html = env.render(page, ctx_for(ANN, signer, show_errors=False))
    assert str(html) == ""


def test_context_without_signer_renders_a_notice_not_a_form(env: Environment) -> None:
    html = env.render(BUY, Context(contact=ANN))
    soup = BeautifulSoup(html, "html.parser")
    assert soup.find("form") is None
    assert "no signer" in soup.get_text()


def test_button_text_and_class_are_escaped(env: Environment, signer: ActionSigner) -> None:
    page = (
        '[memb_actionset_button action_id="a" button_text="<img src=x onerror=alert(1)>" '
        'css_class="x onclick=alert(1)"]'
    )
    form = the_form(env.render(page, ctx_for(ANN, signer)))
    assert form.find("img") is None
    button = form.find("button")
    assert button is not None
    assert button.get_text() == "<img src=x onerror=alert(1)>"
    assert not any(name.startswith("on") for name in button.attrs)
