"""Payments checkout: send the visitor to Stripe Checkout, and to Stripe's billing portal.

``POST /pay/<product>`` (logged in, CSRF-protected) creates a Checkout Session through the
``stripe`` library: mode ``payment`` for a bundle, ``subscription`` for a product with an
``interval``; it carries the contact as ``client_reference_id`` and in the metadata of the
session and of the payment or subscription it creates, and the contact's Stripe customer (created
and recorded on the first purchase). The visitor is redirected to the session's URL. The success
page only says the payment is being confirmed: fulfilment comes from the webhook alone
(:mod:`.webhook`), so a forged or reloaded success URL grants nothing. ``POST /pay/portal``
opens Stripe's billing portal ("Manage subscription"). ``GET /admin/payments`` shows admins the
payment health: the last event received, how many were applied, ignored, deferred or failed, and
the ones not applied yet.
"""

from __future__ import annotations

import logging

import stripe
from flask import Blueprint, flash, redirect, request
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from shortcodes.context import Contact
from shortcodes.host.admin import console_page
from shortcodes.host.auth import admin_required, login_required
from shortcodes.host.render import host_template, simple_page
from shortcodes.host.state import host, signed_in
from shortcodes.host.views import error_page
from shortcodes.membership.site import Product
from shortcodes.payments import records
from shortcodes.payments.stripe_client import make_client
from shortcodes.store.session import run_read

log = logging.getLogger("shortcodes.payments")

bp = Blueprint("payments", __name__)

_FORM = Markup(
    '<form class="checkout" method="post" action="{action}">'
    '<input type="hidden" name="csrf_token" value="{csrf}">'
    '<button type="submit" class="button">{label}</button></form>'
)


def pay_form(action: str, csrf: str, label: str) -> Markup:
    """A CSRF-protected POST button (escaped label)."""
    return _FORM.format(action=action, csrf=csrf, label=label)


def sellable(product: Product) -> bool:
    """True when ``product`` is sold through Stripe on this site (a price and an API key)."""
    return bool(product.stripe_price) and host().stripe.can_sell


def customer_for(client: stripe.StripeClient, contact: Contact) -> str:
    """The contact's Stripe customer id: the recorded one, else a new customer, recorded."""
    store = host().store
    found = store.run_in_transaction(lambda tx: records.customer_of(tx.conn, contact.id))
    if found is not None:
        return found
    created = client.v1.customers.create(
        params={"email": contact.email, "metadata": {"contact": str(contact.id)}},
        options={"idempotency_key": f"customer-{contact.id}"},
    )
    store.run_in_transaction(lambda tx: records.record_customer(tx, contact.id, created.id))
    return created.id


def session_params(product: Product, contact: Contact, customer: str) -> dict[str, object]:
    """The Checkout Session to create for ``product`` (see the module docstring)."""
    meta = {"contact": str(contact.id), "product": product.id}
    root = request.host_url.rstrip("/")
    params: dict[str, object] = {
        "mode": "subscription" if product.is_subscription else "payment",
        "line_items": [{"price": product.stripe_price, "quantity": 1}],
        "customer": customer,
        "client_reference_id": str(contact.id),
        "metadata": meta,
        "success_url": f"{root}/pay/success?product={product.id}",
        "cancel_url": f"{root}{host().site.buy_more_url}",
    }
    extra = "subscription_data" if product.is_subscription else "payment_intent_data"
    params[extra] = {"metadata": meta}
    return params


@bp.post("/pay/<product_id>")
@login_required
def pay(product_id: str) -> ResponseReturnValue:
    """Create a Checkout Session for the logged-in contact and send them to it."""
    contact = signed_in()
    product = host().site.products.get(product_id)
    if product is None or not sellable(product):
        return error_page(404, "No such product", "This site sells no such product.")
    try:
        client = make_client(host().stripe)
        customer = customer_for(client, contact)
        session = client.v1.checkout.sessions.create(
            params=session_params(product, contact, customer)  # type: ignore[arg-type]
        )
    except stripe.StripeError as exc:
        log.error("stripe checkout for contact %s, %s: %s", contact.id, product.id, exc)
        flash("The payment page could not be opened. Please try again in a moment.", "error")
        return redirect(host().site.buy_more_url, 303)
    return redirect(str(session.url), 303)


@bp.get("/pay/success")
@login_required
def success() -> ResponseReturnValue:
    """Where Stripe Checkout returns: the payment is being confirmed (nothing is granted here)."""
    product = host().site.products.get(request.args.get("product", ""))
    title = product.title if product is not None else "your purchase"
    body = host_template("payment_pending", title=title, account_url="/account")
    return simple_page("Payment received", body, signed_in()), 200


@bp.post("/pay/portal")
@login_required
def portal() -> ResponseReturnValue:
    """Open Stripe's billing portal for the contact's subscriptions and invoices."""
    contact = signed_in()
    state = host()
    customer = state.store.run_in_transaction(lambda tx: records.customer_of(tx.conn, contact.id))
    if customer is None or not state.stripe.can_sell:
        flash("You have no subscription to manage yet.", "info")
        return redirect(state.site.buy_more_url, 303)
    try:
        session = make_client(state.stripe).v1.billing_portal.sessions.create(
            params={"customer": customer, "return_url": request.host_url.rstrip("/") + "/account"}
        )
    except stripe.StripeError as exc:
        log.error("stripe billing portal for contact %s: %s", contact.id, exc)
        flash("The subscription page could not be opened. Please try again in a moment.", "error")
        return redirect(state.site.buy_more_url, 303)
    return redirect(str(session.url), 303)


@bp.get("/admin/payments")
@admin_required
def payment_health() -> ResponseReturnValue:
    """Payment health for admins (see :func:`shortcodes.payments.records.health`)."""
    state = host()
    health = run_read(state.store.engine, records.health)
    body = host_template("payment_health", health=health)
    return console_page("Payment health", body)
