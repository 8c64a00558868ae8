"""A Stripe refund of spent credits on a site whose clawback may go below zero: the answer
says how much went below zero, and the next purchase settles the debt (SQLite and PostgreSQL;
the ledger verifies after each test, see the ``stripe_app`` fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from shortcodes.payments import records
from tests.payments.conftest import BUY_PAGE, STRIPE_PRODUCTS
from tests.payments.test_payments_webhook import Hooks
from tests.support import stripe_events as se
from tests.support.host import store
from tests.support.sites import demo_copy


@pytest.fixture
def stripe_site(tmp_path: Path) -> Path:
    """The Stripe-selling demo site with ``clawback = "below_zero"`` for ``_Credits``."""
    site = demo_copy(tmp_path / "site", demo_payments=False, extra=STRIPE_PRODUCTS)
    toml = site / "site.toml"
    text = toml.read_text(encoding="utf-8")
    assert 'clawback = "grant"' in text
    toml.write_text(text.replace('clawback = "grant"', 'clawback = "below_zero"'), "utf-8")
    (site / "pages" / "buy.md").write_text(BUY_PAGE, encoding="utf-8")
    return site


@pytest.fixture
def hooks(stripe_app: Flask) -> Hooks:
    st = store(stripe_app)
    ann = st.add_contact("ann@example.com", "Ann")
    st.run_in_transaction(lambda tx: records.record_customer(tx, ann, "cus_ann"))
    return Hooks(stripe_app)


def test_a_refund_of_spent_credits_goes_below_zero_says_so_and_the_next_purchase_settles(
    hooks: Hooks,
) -> None:
    st = store(hooks.app)
    ann = st.contact_id("ann@example.com")
    first = se.checkout_session(ann, "bundle-100", amount=1000)
    hooks.send(se.event("checkout.session.completed", first))
    st.debit("ann@example.com", 90, reason="spent on a course")
    refund = se.charge("ch_1", refunded=1000, payment_intent=first["payment_intent"])
    status, answer = hooks.send(se.event("charge.refunded", refund))
    assert (status, hooks.balance()) == (200, -90)
    assert answer["result"]["message"] == (
        f"{first['id']}: reversed 100 of 100 credits (90 already spent: 0 taken from the rest "
        "of the balance, 90 below zero (balance -90))"
    )
    assert (answer["result"]["reversed"], answer["result"]["below_zero"]) == (100, "90")
    second = se.checkout_session(ann, "bundle-100", amount=1000)
    hooks.send(se.event("checkout.session.completed", second))
    assert hooks.balance() == 10
    assert [(g.amount, g.remaining) for g in st.grants(ann, include_spent=True)] == [
        (100, 10),
        (100, 0),
    ]
