"""The host feeds the automations: logins become events, pages see loyalty points."""

from __future__ import annotations

from flask import Flask, session

from shortcodes.context import Context
from shortcodes.host.state import current_contact, host
from tests.support.host import logged_in, store
from tests.support.visitors import Visitor


def test_logging_in_records_a_login_event_for_that_contact_only(app: Flask) -> None:
    """A successful login writes one `login` event for the contact who logged in."""
    before = {e.id for e in store(app).events_after(0, 10_000)}
    logged_in(app, "rich@example.com")
    rich = store(app).get_contact("rich@example.com")
    new = [e for e in store(app).events_after(0, 10_000) if e.id not in before]
    assert [(e.kind, e.contact_id) for e in new if e.kind == "login"] == [("login", rich.id)]


def test_a_wrong_password_is_refused_401_and_records_no_event(app: Flask) -> None:
    """The login passes CSRF, reaches the password check and is refused: no event is recorded."""
    before = store(app).events_after(0, 10_000)
    visitor = Visitor(app.test_client())
    response = visitor.login("rich@example.com", "nope")  # the form's CSRF token is sent
    assert response.status_code == 401
    page = response.get_data(as_text=True)
    assert visitor.flashes(page) == ["That email and password do not match an account."]
    assert store(app).events_after(0, 10_000) == before
    assert visitor.client.get("/account").status_code == 302  # still anonymous


def test_pages_see_the_contacts_loyalty_points(app: Flask) -> None:
    """The request's contact carries its points, and [loyalty_points] prints them."""
    rich = store(app).get_contact("rich@example.com")
    with app.test_request_context("/"):
        session["sid"] = store(app).accounts().start_session(rich.id)
        contact = current_contact()
        assert contact is not None
        assert contact.field("PointsLifetime") == 0
        page = host().env.compile('[loyalty_points kind="lifetime"]/[loyalty_stage]')
        assert page.render(Context(contact=contact)) == "0/Bronze"  # Bronze starts at 0 points
        assert page.render(Context()) == "/"
