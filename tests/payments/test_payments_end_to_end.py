"""End to end: our real server and a real localstripe process, on SQLite and PostgreSQL.

The visitor subscribes through our server (which creates the Stripe customer in localstripe and a
Checkout Session); the test then completes the purchase the way Checkout would, by creating the
subscription in localstripe. localstripe bills it and delivers its own signed webhooks to our
running server: the monthly credits and the membership land once. A refund made in localstripe is
reversed in proportion.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from shortcodes.membership.config import load_config
from shortcodes.store import schema
from shortcodes.store.facade import Store
from tests.support import stripe_events as se
from tests.support.backends import empty_database_url
from tests.support.live_server import LiveServer
from tests.support.stripe_server import API_KEY, LocalStripe
from tests.support.visitors import HttpVisitor

pytestmark = pytest.mark.slow


@pytest.fixture
def localstripe(tmp_path: Path) -> Iterator[LocalStripe]:
    """A fresh localstripe process for the test."""
    with LocalStripe(tmp_path / "localstripe") as server:
        yield server


@pytest.fixture
def live(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    stripe_site: Path,
    localstripe: LocalStripe,
) -> Iterator[tuple[LiveServer, Store]]:
    """Our server selling through localstripe, and a store on its database (the ledger must
    verify at the end); localstripe sends its webhooks to the server's ``/hooks/stripe``."""
    url = empty_database_url(backend, request, tmp_path, schema.metadata.sorted_tables)
    env = {
        "SHORTCODES_STRIPE_SECRET_KEY": API_KEY,
        "SHORTCODES_STRIPE_WEBHOOK_SECRET": se.WEBHOOK_SECRET,
        "SHORTCODES_STRIPE_API_BASE": localstripe.api,
    }
    with LiveServer(tmp_path / "instance", url, site_dir=stripe_site, env=env) as server:
        localstripe.send_webhooks_to(f"{server.url}/hooks/stripe", se.WEBHOOK_SECRET)
        with Store.from_url(url, site=load_config(stripe_site).actions) as store:
            yield server, store
            report = store.verify()
            assert report.ok, report.problems


def eventually(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    """The first truthy answer of ``check`` (localstripe delivers webhooks a second later)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s: {check.__doc__ or check}")


def subscribe(server: LiveServer, localstripe: LocalStripe, store: Store) -> dict[str, Any]:
    """Poor subscribes to monthly-50 through our server, then "pays" in localstripe: its
    customer gets a card and the subscription Checkout would create. The subscription."""
    poor = HttpVisitor(server.url)
    assert poor.login("poor@example.com").status == 303
    poor.request("/buy")
    answer = poor.request("/pay/monthly-50", {"csrf_token": poor.csrf()})
    assert answer.location.startswith(f"{localstripe.api}/_config/test/pay/cs_test_")
    (session,) = [s for s in localstripe.sessions() if s["kind"] == "checkout"]
    params = session["params"]
    client = localstripe.client()
    # localstripe knows plans, not prices: a plan whose id is the product's stripe_price.
    client.v1.plans.create(
        params={
            "id": "price_monthly50",
            "amount": 900,
            "currency": "usd",
            "interval": "month",
            "product": {"name": "Monthly"},
        }
    )
    card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
    method = client.v1.payment_methods.create(params={"type": "card", "card": card})
    client.v1.payment_methods.attach(method.id, params={"customer": params["customer"]})
    client.v1.customers.update(
        params["customer"], params={"invoice_settings": {"default_payment_method": method.id}}
    )
    sub = client.v1.subscriptions.create(
        params={
            "customer": params["customer"],
            "items": [{"plan": "price_monthly50"}],
            "metadata": params["subscription_data"]["metadata"],
        }
    )
    return sub.to_dict()


def test_a_localstripe_subscription_credits_its_month_once_through_the_signed_webhook(
    live: tuple[LiveServer, Store], localstripe: LocalStripe
) -> None:
    server, store = live
    sub = subscribe(server, localstripe, store)
    assert sub["status"] == "active"

    def credited() -> bool:
        """the monthly credits arrived"""
        return store.balance("poor@example.com") == 55

    eventually(credited)
    assert store.get_contact("poor@example.com").has_tag("All Access")
    # localstripe's own deliveries, every one applied or ignored, none refused:
    outcomes = _outcomes(store)
    assert outcomes["invoice.payment_succeeded"] == "applied"
    assert outcomes["customer.subscription.created"] == "applied"
    # Stripe re-sends the invoice event: the same event id is a duplicate, and nothing changes.
    (paid,) = localstripe.client().v1.events.list(params={"type": "invoice.payment_succeeded"}).data
    answer = _deliver(server, paid.to_dict())
    assert (answer["duplicate"], store.balance("poor@example.com")) == (True, 55)


def test_a_refund_in_localstripe_reverses_the_credits_in_proportion(
    live: tuple[LiveServer, Store], localstripe: LocalStripe
) -> None:
    """localstripe emits no ``charge.refunded``: the test builds that event from the charge
    localstripe returns after the refund (its ``amount_refunded`` included) and signs it with
    the ``stripe`` library's helper."""
    server, store = live
    subscribe(server, localstripe, store)
    eventually(lambda: store.balance("poor@example.com") == 55)
    client = localstripe.client()
    (invoice,) = client.v1.invoices.list().data
    charge_id = invoice.to_dict()["charge"]["id"]
    client.v1.refunds.create(params={"charge": charge_id, "amount": 450})
    charge = client.v1.charges.retrieve(charge_id).to_dict()
    assert charge["amount_refunded"] == 450
    answer = _deliver(server, se.event("charge.refunded", charge))
    assert answer["result"]["reversed"] == 25
    assert store.balance("poor@example.com") == 30
    assert store.get_contact("poor@example.com").has_tag("All Access")  # half refunded: kept


def _deliver(server: LiveServer, event: dict[str, Any]) -> dict[str, Any]:
    """POST a signed event to the live server's /hooks/stripe; its JSON answer (200 expected)."""
    body, headers = se.signed(event)
    request = urllib.request.Request(f"{server.url}/hooks/stripe", data=body, headers=headers)  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
        assert response.status == 200
        answer: dict[str, Any] = json.load(response)
    return answer


def _outcomes(store: Store) -> dict[str, str]:
    t = schema.stripe_events
    with store.engine.connect() as conn:
        return {row.type: row.outcome for row in conn.execute(select(t.c.type, t.c.outcome))}


def test_a_late_subscription_event_is_re_read_from_the_api_before_it_is_applied(
    live: tuple[LiveServer, Store], localstripe: LocalStripe
) -> None:
    """A stale ``updated`` event saying ``unpaid`` arrives after the subscription is active
    again: the server re-reads the subscription from localstripe and keeps the access."""
    server, store = live
    sub = subscribe(server, localstripe, store)
    eventually(lambda: store.balance("poor@example.com") == 55)
    stale = {**sub, "status": "unpaid"}
    answer = _deliver(server, se.event("customer.subscription.updated", stale, created=1))
    assert answer["result"]["message"] == f"{sub['id']} is active: keeps access"
    assert store.get_contact("poor@example.com").has_tag("All Access")


def test_a_bundle_bought_through_checkout_is_credited_once_by_its_completed_session(
    live: tuple[LiveServer, Store], localstripe: LocalStripe
) -> None:
    """localstripe has no Checkout Sessions: the test builds ``checkout.session.completed`` from
    the session our server created (recorded by the launcher: its id, customer, contact and
    metadata) and a PaymentIntent localstripe really charged, signs it with the ``stripe``
    library's helper and delivers it twice, as Stripe's retry would, with a new event id."""
    server, store = live
    poor = HttpVisitor(server.url)
    assert poor.login("poor@example.com").status == 303
    poor.request("/buy")
    assert poor.request("/pay/bundle-100", {"csrf_token": poor.csrf()}).status == 303
    (session,) = localstripe.sessions()
    params = session["params"]
    intent = localstripe.client().v1.payment_intents.create(
        params={"amount": 1000, "currency": "usd", "customer": params["customer"]}
    )
    completed = {
        "id": session["id"],
        "object": "checkout.session",
        "mode": params["mode"],
        "payment_status": "paid",
        "status": "complete",
        "amount_total": intent.amount,
        "currency": intent.currency,
        "customer": params["customer"],
        "client_reference_id": params["client_reference_id"],
        "metadata": params["metadata"],
        "payment_intent": intent.id,
    }
    first = _deliver(server, se.event("checkout.session.completed", completed))
    again = _deliver(server, se.event("checkout.session.completed", completed))
    assert (first["result"]["balance"], again["result"]["outcome"]) == (105, "ignored")
    assert store.balance("poor@example.com") == 105
