"""Host authentication: hashed passwords, login/logout, session cookie flags, no open redirects."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from shortcodes.store import schema
from tests.support.host import logged_in, make_app, store
from tests.support.visitors import PASSWORDS, Visitor


def test_login_with_the_right_password_starts_a_session_and_goes_to_next(visitor: Visitor) -> None:
    response = visitor.login("rich@example.com", "rich-pass", next_url="/account")
    assert response.status_code == 303
    assert response.location == "/account"
    assert "Rita" in visitor.get("/account")


@pytest.mark.parametrize(
    ("email", "password"),
    [("rich@example.com", "wrong"), ("nobody@example.com", "rich-pass"), ("rich@example.com", "")],
)
def test_wrong_credentials_are_refused_with_one_message(
    visitor: Visitor, email: str, password: str
) -> None:
    response = visitor.login(email, password)
    assert response.status_code == 401
    assert "do not match an account" in response.get_data(as_text=True)
    assert visitor.client.get("/account").status_code == 302  # still anonymous


def test_passwords_are_stored_hashed(app: Flask) -> None:
    with store(app).engine.connect() as conn:
        rows = conn.execute(select(schema.contacts.c.email, schema.contacts.c.password_hash)).all()
    assert len(rows) == len(PASSWORDS)
    for email, hashed in rows:
        assert PASSWORDS[email] not in hashed
        assert hashed.startswith(("scrypt:", "pbkdf2:"))


def test_session_cookie_is_httponly_and_samesite_lax_not_secure_by_default(app: Flask) -> None:
    visitor = Visitor(app.test_client())
    response = visitor.login("rich@example.com")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_secure_cookie_flag_is_configurable(template_db: Path, tmp_path: Path) -> None:
    app = make_app(template_db, tmp_path / "instance", SESSION_COOKIE_SECURE=True)
    try:
        response = Visitor(app.test_client()).login("rich@example.com")
        assert "Secure" in response.headers["Set-Cookie"]
    finally:
        store(app).close()


def test_login_clears_the_session_it_found(app: Flask) -> None:
    visitor = Visitor(app.test_client())
    visitor.get("/login")
    with visitor.client.session_transaction() as session:
        session["planted"] = "by an attacker"
    visitor.login("rich@example.com")
    with visitor.client.session_transaction() as session:
        assert "planted" not in session
        assert store(app).accounts().session_contact(session["sid"]) == store(app).contact_id(
            "rich@example.com"
        )


@pytest.mark.parametrize(
    "target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"]
)
def test_login_never_redirects_off_the_site(visitor: Visitor, target: str) -> None:
    response = visitor.login("rich@example.com", "rich-pass", next_url=target)
    assert response.location == "/"


def test_logged_in_visitor_asking_for_login_goes_on(app: Flask) -> None:
    rich = logged_in(app, "rich@example.com")
    response = rich.client.get("/login?next=/account")
    assert response.status_code == 302
    assert response.location == "/account"


def test_logout_needs_post_with_csrf_and_ends_the_session(app: Flask) -> None:
    rich = logged_in(app, "rich@example.com")
    assert rich.client.get("/logout").status_code == 404  # a GET (an <img src>) cannot log out
    assert rich.client.post("/logout").status_code == 400  # no CSRF token
    rich.get("/")
    response = rich.post("/logout")
    assert response.status_code == 303
    assert rich.client.get("/account").status_code == 302


def test_login_without_csrf_token_is_400(visitor: Visitor) -> None:
    response = visitor.client.post(
        "/login", data={"email": "rich@example.com", "password": "rich-pass"}
    )
    assert response.status_code == 400
    assert visitor.client.get("/account").status_code == 302


def test_a_forged_session_cookie_is_ignored(app: Flask) -> None:
    visitor = Visitor(app.test_client())
    visitor.client.set_cookie("shortcodes_session", "eyJjb250YWN0X2lkIjoyfQ.forged.signature")
    assert visitor.client.get("/account").status_code == 302


def visitor_from(app: Flask, address: str, forwarded_for: str | None = None) -> Visitor:
    """A visitor whose requests come from ``address`` (optionally claiming ``forwarded_for``)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    if forwarded_for is not None:
        client.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return Visitor(client)


def test_the_sixth_guess_is_answered_429_with_retry_after_and_the_password_unchecked(
    visitor: Visitor,
) -> None:
    for _ in range(5):
        assert visitor.login("rich@example.com", "guess").status_code == 401
    response = visitor.login("rich@example.com")  # the right password, while locked
    assert response.status_code == 429
    assert 890 <= int(response.headers["Retry-After"]) <= 900  # the first guess was just now
    assert "Too many failed logins. Try again in 15 minutes." in response.get_data(as_text=True)
    assert visitor.client.get("/account").status_code == 302  # still anonymous


def test_a_locked_account_still_logs_in_from_another_address(app: Flask) -> None:
    stranger = visitor_from(app, "203.0.113.7")
    for _ in range(5):
        stranger.login("rich@example.com", "guess")
    assert stranger.login("rich@example.com").status_code == 429
    assert visitor_from(app, "198.51.100.9").login("rich@example.com").status_code == 303


def test_a_forged_forwarded_for_header_does_not_escape_the_limit(app: Flask) -> None:
    for n in range(5):
        visitor_from(app, "203.0.113.7", f"10.0.0.{n}").login("rich@example.com", "guess")
    response = visitor_from(app, "203.0.113.7", "10.0.0.99").login("rich@example.com")
    assert response.status_code == 429


def test_behind_a_proxy_the_forwarded_address_is_the_one_counted(
    template_db: Path, tmp_path: Path
) -> None:
    app = make_app(template_db, tmp_path / "instance", PROXY_HOPS=1)
    try:
        for _ in range(5):
            visitor_from(app, "127.0.0.1", "203.0.113.7").login("rich@example.com", "guess")
        assert (
            visitor_from(app, "127.0.0.1", "203.0.113.7").login("rich@example.com").status_code
            == 429
        )
        assert (
            visitor_from(app, "127.0.0.1", "198.51.100.9").login("rich@example.com").status_code
            == 303
        )
    finally:
        store(app).close()


@pytest.mark.parametrize("hops", ["two", "-1", "1.5", "", "\u00b2"])
def test_proxy_hops_must_be_a_whole_number(template_db: Path, tmp_path: Path, hops: str) -> None:
    with pytest.raises(ValueError, match="PROXY_HOPS must be a whole number >= 0"):
        make_app(template_db, tmp_path / "instance", PROXY_HOPS=hops)
