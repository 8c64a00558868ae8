"""The admin's payment-health view: last event, outcome counts, events not applied yet."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from flask import Flask

from shortcodes.payments import records
from tests.support import stripe_events as se
from tests.support.host import store
from tests.support.visitors import Visitor


def _visitor(app: Flask, email: str, admin: bool) -> Visitor:
    st = store(app)
    st.add_contact(email, "", password="pass-word-1")
    if admin:
        st.apply_tag(email, "Site Admin")
    who = Visitor(app.test_client())
    assert who.login(email, "pass-word-1").status_code == 303
    return who


def _send(app: Flask, data: dict[str, object]) -> int:
    body, headers = se.signed(data)
    return app.test_client().post("/hooks/stripe", data=body, headers=headers).status_code


def test_admins_see_the_last_event_the_counts_and_what_is_not_applied(stripe_app: Flask) -> None:
    st = store(stripe_app)
    ann = st.add_contact("ann@example.com")
    st.run_in_transaction(lambda tx: records.record_customer(tx, ann, "cus_ann"))
    deferred = se.event("charge.refunded", se.charge("ch_x", refunded=100), created=1)
    assert _send(stripe_app, deferred) == 409
    assert _send(stripe_app, se.event("invoice.paid", se.invoice("price_monthly50"))) == 200
    last = se.event("customer.created", {"id": "cus_new"})
    assert _send(stripe_app, last) == 200
    html = _visitor(stripe_app, "boss@example.com", admin=True).get("/admin/payments")
    soup = BeautifulSoup(html, "html.parser")
    counts = [[td.get_text() for td in tr.select("td")] for tr in soup.select("table.outcomes tr")][
        1:
    ]
    assert counts == [["applied", "1"], ["ignored", "1"], ["deferred", "1"], ["failed", "0"]]
    (row,) = [
        [td.get_text() for td in tr.select("td")] for tr in soup.select("table.unapplied tr")
    ][1:]
    assert row[1:] == [
        deferred["id"],
        "charge.refunded",
        "deferred",
        "the payment of ch_x is not recorded yet; retry after it is",
    ]
    assert "Last Stripe event received: <code>customer.created</code>" in html


def test_with_no_event_yet_the_view_says_to_check_the_endpoint(stripe_app: Flask) -> None:
    html = _visitor(stripe_app, "boss@example.com", admin=True).get("/admin/payments")
    assert "No Stripe event has been received yet." in html


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_view_is_for_admins_only(stripe_app: Flask) -> None:
    member = _visitor(stripe_app, "member@example.com", admin=False)
    assert member.client.get("/admin/payments").status_code == 403
    assert Visitor(stripe_app.test_client()).client.get("/admin/payments").location == (
        "/login?next=/admin/payments"
    )
