"""One function per protocol: the safe local redirect and the canonical email, wherever used."""

from __future__ import annotations

import pytest
from flask import Flask

from shortcodes.builtin.common import is_local_path, local_url
from shortcodes.errors import InvalidInput
from shortcodes.host.auth import safe_target
from shortcodes.membership.vocabulary import canonical_email
from shortcodes.store.contacts import normalize_email
from shortcodes.store.throttle import MAX_EMAIL, email_key
from tests.support.host import logged_in
from tests.support.visitors import Visitor

#: Redirect targets that leave the site or smuggle something into the Location header.
UNSAFE_TARGETS = [
    "//evil.example",
    "/\\evil.example",
    "https://evil.example",
    "http:evil.example",
    "/a\r\nSet-Cookie: x=1",
    "/a\nb",
    "/a\rb",
    "/a\x00b",
    "/a\\b",
    "/a\tb",
    "evil.example",
    "",
]


@pytest.mark.parametrize("target", UNSAFE_TARGETS)
def test_an_unsafe_redirect_target_is_refused_everywhere(target: str) -> None:
    assert is_local_path(target) is False
    assert safe_target(target, "/fallback") == "/fallback"
    with pytest.raises(ValueError, match="is not a path on this site") as caught:
        local_url(target)
    assert str(caught.value) == f"{target!r} is not a path on this site (it must start with '/')"


def test_a_script_link_is_refused_as_a_redirect_before_it_is_looked_at_as_a_path() -> None:
    assert is_local_path("javascript:alert(1)") is False
    with pytest.raises(ValueError, match="is not a safe link") as caught:
        local_url("javascript:alert(1)")
    assert str(caught.value) == (
        "'javascript:alert(1)' is not a safe link (use a path on this site or an http(s), "
        "mailto or tel URL)"
    )


@pytest.mark.parametrize("target", ["/", "/account", "/courses/b?tab=2#top", "/a/%2F/b"])
def test_a_path_on_this_site_is_a_safe_redirect_target(target: str) -> None:
    assert is_local_path(target) is True
    assert safe_target(target) == target
    assert local_url(target) == target


def test_a_button_may_redirect_under_the_site_url_but_not_off_it() -> None:
    site = "https://academy.example"
    assert local_url("https://academy.example/account", site) == "https://academy.example/account"
    for target in ("https://academy.example//evil.example", "https://academy.example.evil/x"):
        with pytest.raises(ValueError, match="is not a path on this site"):
            local_url(target, site)


@pytest.mark.parametrize("target", ["//evil.example", "/\\evil.example", "https://evil.example"])
def test_login_never_sends_the_visitor_off_the_site(app: Flask, target: str) -> None:
    rich = logged_in(app, "rich@example.com")
    response = rich.client.get("/login", query_string={"next": target})
    assert (response.status_code, response.location) == (302, "/")


def test_after_a_button_an_unsafe_redirect_url_falls_back_to_the_page(app: Flask) -> None:
    rich = logged_in(app, "rich@example.com")
    rich.get("/catalog")
    response = rich.click("buy-course-b", redirect_url="//evil.example", next="/\\evil.example")
    assert (response.status_code, response.location) == (303, "/")


def test_canonical_email_trims_and_lowers_and_never_raises() -> None:
    assert canonical_email("  Ann@Example.COM \n") == "ann@example.com"
    assert canonical_email("not an email") == "not an email"
    assert canonical_email(None) == ""  # type: ignore[arg-type]


def test_normalize_email_is_the_canonical_form_of_a_valid_address() -> None:
    assert normalize_email("  Ann@Example.COM ") == "ann@example.com"
    with pytest.raises(InvalidInput) as caught:
        normalize_email("not an email")
    assert str(caught.value) == "not a valid email address: 'not an email'"


def test_the_throttle_counts_garbage_under_its_canonical_form_cut_to_the_column() -> None:
    assert email_key("  Ann@Example.COM ") == normalize_email("ann@example.com")
    assert email_key(" Not An Email ") == "not an email"
    assert email_key("X" * 1000) == "x" * MAX_EMAIL


def test_login_accepts_the_email_in_any_case_with_padding(visitor: Visitor) -> None:
    response = visitor.login("  RICH@Example.com ", "rich-pass")
    assert (response.status_code, response.location) == (303, "/")


def test_failures_in_any_spelling_of_an_email_count_against_the_same_account(
    visitor: Visitor,
) -> None:
    """Five failures (the demo's per-account-and-address limit) in five spellings lock it."""
    spellings = ["poor@example.com", "POOR@example.com", " poor@example.com", "Poor@Example.com"]
    for email in [*spellings, "poor@EXAMPLE.com "]:
        assert visitor.login(email, "wrong").status_code == 401
    assert visitor.login("poor@example.com", "poor-pass").status_code == 429
