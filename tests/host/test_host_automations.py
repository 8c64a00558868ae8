"""The host feeds the automations: logins become events, pages see loyalty points."""

from __future__ import annotations

from flask import Flask, session

from shortcodes.context import Context
from shortcodes.host.state import current_contact, host
from tests.support.host import logged_in, store


def test_logging_in_records_a_login_event_for_that_contact_only(app: Flask) -> None:
    """A successful login writes one `login` event for the contact who logged in."""
    before = {e.id for e in store(app).events_after(0, 10_000)}
    logged_in(app, "rich@example.com")
    rich = store(app).get_contact("rich@example.com")
    new = [e for e in store(app).events_after(0, 10_000) if e.id not in before]
    assert [(e.kind, e.contact_id) for e in new if e.kind == "login"] == [("login", rich.id)]


def test_a_failed_login_records_no_event(app: Flask) -> None:
    """A wrong password changes nothing: no login event."""
    before = len(store(app).events_after(0, 10_000))
    client = app.test_client()
    client.get("/login")
    response = client.post("/login", data={"email": "rich@example.com", "password": "nope"})
    assert response.status_code in (400, 401)
    assert len(store(app).events_after(0, 10_000)) == before


def test_pages_see_the_contacts_loyalty_points(app: Flask) -> None:
    """The request's contact carries its points, and [loyalty_points] prints them."""
    rich = store(app).get_contact("rich@example.com")
    with app.test_request_context("/"):
        session["contact_id"] = rich.id
        contact = current_contact()
        assert contact is not None
        assert contact.field("PointsLifetime") == 0
        page = host().env.compile('[loyalty_points kind="lifetime"]/[loyalty_stage]')
        assert page.render(Context(contact=contact)) == "0/Bronze"  # Bronze starts at 0 points
        assert page.render(Context()) == "/"
