"""Accounts: sign-up with an emailed verification link, password reset, settings, sessions that
end on the server, the known-device rule of the login lock, and the account-mail rate limit."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from shortcodes.errors import ConfigError
from shortcodes.membership.config import parse_config
from shortcodes.store import schema
from tests.support.db import row_counts
from tests.support.host import logged_in, make_app, store
from tests.support.mailbox import body, link_in, mails_to
from tests.support.sites import demo_copy
from tests.support.visitors import Visitor


def visitor_from(app: Flask, address: str) -> Visitor:
    """A visitor whose requests come from ``address``."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return Visitor(client)


NINA_PASSWORD = "nina-pass-1"


def sign_up(who: Visitor, email: str, name: str = "Nina New", password: str = NINA_PASSWORD) -> Any:
    """Fill in the sign-up form; the response."""
    who.get("/signup")
    return who.post("/signup", {"name": name, "email": email, "password": password})


def follow(who: Visitor, path: str) -> Any:
    """Open an emailed link (a confirm page) and press its button; the response."""
    who.get(path)
    token = re.search(r'name="token" value="([^"]+)"', who.last)
    assert token is not None
    return who.post(path.split("?")[0], {"token": token.group(1)})


def same_page(html: str, email: str) -> str:
    """A page with the typed email and the CSRF token taken out, for comparing two answers."""
    return re.sub(r'name="csrf_token" value="[^"]+"', "", html.replace(email, "EMAIL"))


def test_a_new_visitor_signs_up_verifies_by_email_and_logs_in(app: Flask) -> None:
    nina = Visitor(app.test_client())
    response = sign_up(nina, "nina@example.com")
    assert response.status_code == 200
    assert "We sent an email to <strong>nina@example.com</strong>" in response.get_data(
        as_text=True
    )
    assert nina.client.get("/account").status_code == 302  # no account before the link
    (mail,) = mails_to(app, "nina@example.com")
    assert mail["Subject"] == "Confirm your email for Credit Academy"
    confirmed = follow(nina, link_in(mail))
    assert (confirmed.status_code, confirmed.location) == (303, "/account")
    assert nina.client.get("/account").status_code == 200
    assert store(app).get_contact("nina@example.com").field("Name") == "Nina New"
    nina.get("/")
    assert nina.post("/logout").status_code == 303
    assert Visitor(app.test_client()).login("nina@example.com", "nina-pass-1").status_code == 303


def test_a_verification_link_works_once(app: Flask) -> None:
    nina = Visitor(app.test_client())
    sign_up(nina, "nina@example.com")
    path = link_in(mails_to(app, "nina@example.com")[0])
    assert follow(nina, path).status_code == 303
    again = Visitor(app.test_client())
    assert follow(again, path).status_code == 400
    assert row_counts(store(app), schema.contacts)[schema.contacts.name] == 6


def test_an_altered_verification_link_changes_nothing(app: Flask) -> None:
    nina = Visitor(app.test_client())
    sign_up(nina, "nina@example.com")
    path = link_in(mails_to(app, "nina@example.com")[0])
    assert nina.client.get(path[:-3] + "abc").status_code == 400
    response = nina.client.post("/verify", data={"token": "x" * 100, "csrf_token": nina.csrf()})
    assert response.status_code == 400


def test_sign_up_answers_the_same_whether_or_not_the_email_has_an_account(app: Flask) -> None:
    new = sign_up(Visitor(app.test_client()), "nina@example.com").get_data(as_text=True)
    known = sign_up(Visitor(app.test_client()), "rich@example.com").get_data(as_text=True)
    assert same_page(new, "nina@example.com") == same_page(known, "rich@example.com")
    (mail,) = mails_to(app, "rich@example.com")
    assert mail["Subject"] == "You already have an account at Credit Academy"
    assert link_in(mail) == "/reset"
    # Rich's account is untouched: the old password still works.
    assert Visitor(app.test_client()).login("rich@example.com").status_code == 303


@pytest.fixture
def site_with(tmp_path: Path, template_db: Path) -> Iterator[Any]:
    """Make an app on a demo site whose ``[accounts] signup`` line is replaced by the given one."""
    made: list[Flask] = []

    def build(line: str) -> Flask:
        site = demo_copy(tmp_path / f"site{len(made)}")
        toml = site / "site.toml"
        text = toml.read_text(encoding="utf-8")
        assert 'signup = "open"\n' in text
        toml.write_text(text.replace('signup = "open"\n', line + "\n"), encoding="utf-8")
        app = make_app(template_db, tmp_path / f"instance{len(made)}", SITE_DIR=site)
        made.append(app)
        return app

    yield build
    for app in made:
        store(app).close()


def test_a_closed_site_takes_no_sign_ups(site_with: Any) -> None:
    app = site_with('signup = "closed"')
    who = Visitor(app.test_client())
    assert "does not take new sign-ups" in who.get("/signup", status=403)
    data = {"name": "N", "email": "nina@example.com", "password": "nina-pass-1"}
    who.get("/login")  # a page with a CSRF token
    assert who.post("/signup", data).status_code == 403
    assert mails_to(app, "nina@example.com") == []


def test_an_invite_only_site_lets_known_contacts_claim_their_account(site_with: Any) -> None:
    app = site_with('signup = "invite"')
    store(app).add_contact("ivy@example.com", "Ivy")  # imported, no password yet
    sign_up(Visitor(app.test_client()), "stranger@example.com")
    (refusal,) = mails_to(app, "stranger@example.com")
    assert "has not been invited" in " ".join(body(refusal).split())
    ivy = Visitor(app.test_client())
    sign_up(ivy, "ivy@example.com", password="ivy-pass-12")
    assert follow(ivy, link_in(mails_to(app, "ivy@example.com")[0])).status_code == 303
    assert Visitor(app.test_client()).login("ivy@example.com", "ivy-pass-12").status_code == 303
    assert store(app).get_contact("ivy@example.com").field("Name") == "Ivy"


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": "", "email": "a@example.com", "password": "long-enough"}, "give your name"),
        ({"name": "A", "email": "not-an-email", "password": "long-enough"}, "not a valid email"),
        ({"name": "A", "email": "a@example.com", "password": "short"}, "8 to 320 characters"),
        ({"name": "A", "email": "a@example.com", "password": "p" * 321}, "longer than 320"),
        ({"name": "A\x07", "email": "a@example.com", "password": "long-enough"}, "control"),
    ],
)
def test_a_malformed_sign_up_is_400_with_the_reason(
    app: Flask, form: dict[str, str], message: str
) -> None:
    who = Visitor(app.test_client())
    who.get("/signup")
    response = who.post("/signup", form)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert mails_to(app, form["email"]) == []


def test_config_names_the_line_and_column_of_a_bad_signup_mode() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config('[accounts]\nsignup = "maybe"\n', "site.toml")
    assert str(caught.value).startswith("site.toml:2:1: accounts.signup: must be one of open,")
    with pytest.raises(ConfigError) as caught:
        parse_config("[accounts]\nmax_emails_per_email = 0\n", "site.toml")
    assert str(caught.value).startswith("site.toml:2:1: accounts.max_emails_per_email: must be")
    with pytest.raises(ConfigError, match=r"site\.toml:2:1: accounts\.typo"):
        parse_config("[accounts]\ntypo = 1\n", "site.toml")


# -- reset ---------------------------------------------------------------------------------------


def test_a_reset_link_sets_a_new_password_once_and_ends_every_session(app: Flask) -> None:
    elsewhere = logged_in(app, "rich@example.com")
    who = Visitor(app.test_client())
    who.get("/reset")
    answer = who.post("/reset", {"email": "rich@example.com"})
    assert answer.status_code == 200
    (mail,) = mails_to(app, "rich@example.com")
    assert mail["Subject"] == "Your password link for Credit Academy"
    path = link_in(mail)
    who.get(path)
    response = who.post("/reset/new", {"token": path.split("token=")[1], "password": "new-pass-99"})
    assert (response.status_code, response.location) == (303, "/login")
    assert elsewhere.client.get("/account").status_code == 302  # the other session ended
    assert Visitor(app.test_client()).login("rich@example.com").status_code == 401
    assert Visitor(app.test_client()).login("rich@example.com", "new-pass-99").status_code == 303
    assert Visitor(app.test_client()).client.get(path).status_code == 400  # used


def test_reset_answers_the_same_whether_or_not_the_email_has_an_account(app: Flask) -> None:
    pages = []
    for email in ("rich@example.com", "nobody@example.com"):
        who = Visitor(app.test_client())
        who.get("/reset")
        pages.append(same_page(who.post("/reset", {"email": email}).get_data(as_text=True), email))
    assert pages[0] == pages[1]
    (unknown,) = mails_to(app, "nobody@example.com")
    assert "has no account" in " ".join(body(unknown).split())


def test_account_mail_is_limited_per_email_and_per_visitor_address(app: Flask) -> None:
    for n in range(3):
        who = visitor_from(app, f"10.0.0.{n + 1}")
        who.get("/reset")
        assert who.post("/reset", {"email": "rich@example.com"}).status_code == 200
    who = visitor_from(app, "10.0.0.9")
    who.get("/reset")
    refused = who.post("/reset", {"email": "rich@example.com"})
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers
    assert len(mails_to(app, "rich@example.com")) == 3
    one = visitor_from(app, "10.9.9.9")
    for n in range(10):
        one.get("/reset")
        assert one.post("/reset", {"email": f"x{n}@example.com"}).status_code == 200
    one.get("/reset")
    assert one.post("/reset", {"email": "x10@example.com"}).status_code == 429
    assert mails_to(app, "x10@example.com") == []


# -- sessions ------------------------------------------------------------------------------------


def test_a_cookie_copied_before_logout_is_refused_after_it(app: Flask) -> None:
    rich = logged_in(app, "rich@example.com")
    rich.get("/catalog")
    button = rich.button("buy-course-a")
    cookie = rich.client.get_cookie("shortcodes_session")
    assert cookie is not None
    rich.get("/")
    assert rich.post("/logout").status_code == 303
    thief = app.test_client()
    thief.set_cookie("shortcodes_session", cookie.value)
    assert thief.get("/account").status_code == 302
    response = thief.post("/actions/buy-course-a", data=button)
    assert response.status_code in (302, 400, 403)
    assert store(app).balance("rich@example.com") == 260


def test_log_out_everywhere_ends_every_browsers_session(app: Flask) -> None:
    laptop, phone = logged_in(app, "rich@example.com"), logged_in(app, "rich@example.com")
    poor = logged_in(app, "poor@example.com")
    laptop.get("/account/settings")
    assert "logged in on 2 browsers" in laptop.last
    response = laptop.post("/account/sessions/end")
    assert response.status_code == 303
    assert laptop.client.get("/account").status_code == 302
    assert phone.client.get("/account").status_code == 302
    assert poor.client.get("/account").status_code == 200


def test_changing_the_password_ends_the_other_sessions_and_keeps_this_one(app: Flask) -> None:
    laptop, phone = logged_in(app, "rich@example.com"), logged_in(app, "rich@example.com")
    laptop.get("/account/settings")
    form = {"form": "password", "current_password": "rich-pass", "password": "rich-new-pass"}
    assert laptop.post("/account/settings", form).status_code == 303
    assert laptop.client.get("/account").status_code == 200
    assert phone.client.get("/account").status_code == 302
    laptop.get("/account/settings")
    wrong = {"form": "password", "current_password": "rich-pass", "password": "another-one"}
    assert laptop.post("/account/settings", wrong).status_code == 400


def test_a_new_email_takes_effect_when_its_link_is_followed(app: Flask) -> None:
    rich = logged_in(app, "rich@example.com")
    rich.get("/account/settings")
    form = {"form": "email", "email": "rita@example.com", "current_password": "rich-pass"}
    assert rich.post("/account/settings", form).status_code == 303
    assert store(app).contact_id("rich@example.com") == 2
    (mail,) = mails_to(app, "rita@example.com")
    assert follow(rich, link_in(mail)).status_code == 303
    assert store(app).contact_id("rita@example.com") == 2
    assert follow(Visitor(app.test_client()), link_in(mail)).status_code == 400  # once


def test_the_name_changes_from_the_settings_page(app: Flask) -> None:
    rich = logged_in(app, "rich@example.com")
    rich.get("/account/settings")
    assert rich.post("/account/settings", {"form": "name", "name": "Rita R."}).status_code == 303
    assert store(app).get_contact(2).field("Name") == "Rita R."


# -- the known-device rule -----------------------------------------------------------------------


def test_a_browser_that_logged_in_before_passes_the_per_address_lock(app: Flask) -> None:
    poor = visitor_from(app, "192.0.2.7")
    assert poor.login("poor@example.com").status_code == 303
    poor.get("/")
    assert poor.post("/logout").status_code == 303
    stranger = visitor_from(app, "192.0.2.7")  # the same NAT
    for n in range(20):
        assert stranger.login(f"victim{n % 4}@example.com", "guess").status_code == 401
    assert visitor_from(app, "192.0.2.7").login("poor@example.com").status_code == 429
    assert poor.login("poor@example.com").status_code == 303  # the device cookie vouches


def test_the_device_cookie_buys_no_extra_guesses_at_its_account(app: Flask) -> None:
    poor = visitor_from(app, "192.0.2.8")
    assert poor.login("poor@example.com").status_code == 303
    poor.get("/")
    assert poor.post("/logout").status_code == 303
    for _ in range(5):
        assert poor.login("poor@example.com", "guess").status_code == 401
    assert poor.login("poor@example.com").status_code == 429


def test_a_forged_device_cookie_vouches_for_nothing(app: Flask) -> None:
    stranger = visitor_from(app, "192.0.2.9")
    for n in range(20):
        stranger.login(f"victim{n % 4}@example.com", "guess")
    forger = visitor_from(app, "192.0.2.9")
    forger.client.set_cookie("shortcodes_device", "eyJhIjpbXX0.forged.sig")
    assert forger.login("poor@example.com").status_code == 429


def test_a_config_with_a_bad_window_is_refused(tmp_path: Path, template_db: Path) -> None:
    site = demo_copy(tmp_path / "site")
    toml = site / "site.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8").replace('email_window = "1h"', 'email_window = "soon"'),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"site\.toml:25:1: accounts\.email_window"):
        make_app(template_db, tmp_path / "instance", SITE_DIR=site)
