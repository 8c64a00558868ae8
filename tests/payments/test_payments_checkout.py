"""Buying: the buttons create Stripe Checkout Sessions through the ``stripe`` library and send the
visitor to them; nothing is granted before the webhook.

The API is a real localstripe process. localstripe has no Checkout or billing-portal Sessions,
so its test launcher (``tests/support/localstripe_server.py``) adds those two endpoints and
records what the library sent; customers are localstripe's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup
from flask import Flask

from shortcodes.payments import records
from tests.support.host import store
from tests.support.stripe_server import API_KEY, LocalStripe
from tests.support.visitors import Visitor

PASSWORD = "ann-password-1"


@pytest.fixture(scope="module")
def localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripe]:
    """One localstripe process for this module's tests."""
    with LocalStripe(tmp_path_factory.mktemp("localstripe")) as server:
        yield server


@pytest.fixture
def stripe_api(localstripe: LocalStripe) -> dict[str, str]:
    """The app talks to localstripe."""
    return {"STRIPE_SECRET_KEY": API_KEY, "STRIPE_API_BASE": localstripe.api}


@pytest.fixture
def ann(stripe_app: Flask) -> Visitor:
    """Ann, logged in, on the buy page."""
    store(stripe_app).add_contact("ann@example.com", "Ann", password=PASSWORD)
    visitor = Visitor(stripe_app.test_client())
    assert visitor.login("ann@example.com", PASSWORD).status_code == 303
    visitor.get("/buy")
    return visitor


def session_request(localstripe: LocalStripe, url: str) -> dict[str, Any]:
    """The recorded request of the session whose page is ``url``."""
    session_id = url.rsplit("/", 1)[1]
    (found,) = [s for s in localstripe.sessions() if s["id"] == session_id]
    return found


def customer(app: Flask) -> str | None:
    contact = store(app).contact_id("ann@example.com")
    return store(app).run_in_transaction(lambda tx: records.customer_of(tx.conn, contact))


def test_the_buy_buttons_post_to_the_stripe_checkout_routes(ann: Visitor) -> None:
    forms = BeautifulSoup(ann.last, "html.parser").select("form.checkout")
    actions = [f.get("action") for f in forms]
    assert actions == ["/pay/bundle-100", "/pay/monthly-50", "/pay/portal"]
    assert "Not on sale yet" in ann.last  # credits-50 has no stripe_price and no demo


def test_buying_a_bundle_redirects_to_a_payment_mode_checkout_session(
    ann: Visitor, stripe_app: Flask, localstripe: LocalStripe
) -> None:
    response = ann.post("/pay/bundle-100")
    assert response.status_code == 303
    assert response.location.startswith(f"{localstripe.api}/_config/test/pay/cs_test_")
    params = session_request(localstripe, response.location)["params"]
    contact = str(store(stripe_app).contact_id("ann@example.com"))
    assert params == {
        "mode": "payment",
        "line_items": [{"price": "price_bundle100", "quantity": "1"}],
        "customer": customer(stripe_app),
        "client_reference_id": contact,
        "metadata": {"contact": contact, "product": "bundle-100"},
        "payment_intent_data": {"metadata": {"contact": contact, "product": "bundle-100"}},
        "success_url": "http://localhost/pay/success?product=bundle-100",
        "cancel_url": "http://localhost/credits",
    }


def test_subscribing_creates_a_subscription_mode_session_carrying_the_contact(
    ann: Visitor, stripe_app: Flask, localstripe: LocalStripe
) -> None:
    params = session_request(localstripe, ann.post("/pay/monthly-50").location)["params"]
    contact = str(store(stripe_app).contact_id("ann@example.com"))
    assert (params["mode"], params["line_items"][0]["price"]) == ("subscription", "price_monthly50")
    assert params["subscription_data"] == {
        "metadata": {"contact": contact, "product": "monthly-50"}
    }


def test_the_first_purchase_records_a_stripe_customer_and_later_ones_reuse_it(
    ann: Visitor, stripe_app: Flask, localstripe: LocalStripe
) -> None:
    first = session_request(localstripe, ann.post("/pay/bundle-100").location)
    second = session_request(localstripe, ann.post("/pay/monthly-50").location)
    recorded = customer(stripe_app)
    assert recorded is not None
    assert recorded.startswith("cus_")
    assert first["params"]["customer"] == second["params"]["customer"] == recorded
    found = localstripe.client().v1.customers.retrieve(recorded)
    assert found.email == "ann@example.com"


def test_creating_a_session_grants_nothing_and_the_success_page_says_it_is_being_confirmed(
    ann: Visitor, stripe_app: Flask
) -> None:
    ann.post("/pay/bundle-100")
    html = ann.get("/pay/success?product=bundle-100")
    assert "Your payment for <strong>100 credits</strong> is being confirmed by Stripe." in html
    assert store(stripe_app).balance("ann@example.com") == 0


def test_manage_subscription_opens_the_billing_portal_of_the_contacts_customer(
    ann: Visitor, stripe_app: Flask, localstripe: LocalStripe
) -> None:
    ann.post("/pay/monthly-50")
    response = ann.post("/pay/portal")
    assert response.location.startswith(f"{localstripe.api}/_config/test/portal/bps_test_")
    params = session_request(localstripe, response.location)["params"]
    assert params == {"customer": customer(stripe_app), "return_url": "http://localhost/account"}


def test_manage_subscription_without_a_customer_says_so(ann: Visitor) -> None:
    response = ann.post("/pay/portal")
    assert (response.status_code, response.location) == (303, "/credits")
    assert ann.flashes(ann.get("/credits")) == ["You have no subscription to manage yet."]


@pytest.mark.parametrize("product", ["credits-50", "bogus"])
def test_a_product_not_sold_through_stripe_is_404(ann: Visitor, product: str) -> None:
    assert ann.post(f"/pay/{product}").status_code == 404


def test_paying_needs_a_login_and_the_csrf_token(stripe_app: Flask) -> None:
    client = stripe_app.test_client()
    assert client.post("/pay/bundle-100").status_code == 400  # CSRF first
    assert client.get("/pay/success").location == "/login?next=/pay/success"


def test_stripe_being_unreachable_sends_the_visitor_back_with_a_message(
    ann: Visitor, stripe_app: Flask, tmp_path: Path
) -> None:
    state = stripe_app.extensions["shortcodes"]
    state.stripe = type(state.stripe)(API_KEY, "", "http://127.0.0.1:9")  # nothing listens
    response = ann.post("/pay/bundle-100")
    assert (response.status_code, response.location) == (303, "/credits")
    assert ann.flashes(ann.get("/credits")) == [
        "The payment page could not be opened. Please try again in a moment."
    ]
