"""Host demo checkout: buy a credit bundle; the payment is simulated by the signed payment webhook.

It exists only on a site whose ``[site]`` sets ``demo_payments = true`` (the app registers this
blueprint only then; elsewhere ``/checkout/*`` is 404 and ``check`` warns when it is on), since
it hands out products without taking money.

A real site sends visitors to its payment provider, which later calls ``/hooks/payments/succeeded``.
The demo has no provider, so ``POST /checkout/<product>`` (CSRF-protected, for the logged-in
contact only) builds the webhook the provider would send, signs it with the site's secret and
delivers it through the same verification and dedupe path as an HTTP webhook. The host registers
``[checkout_button product="credits-50"]`` on the engine, like any theme shortcode.
"""

from __future__ import annotations

import json
import secrets

from flask import Blueprint, flash, redirect
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from shortcodes.context import Context
from shortcodes.environment import Environment
from shortcodes.host.auth import login_required
from shortcodes.host.state import host, signed_in
from shortcodes.host.views import error_page
from shortcodes.host.webhooks import process
from shortcodes.membership.signing import signed_headers
from shortcodes.payments.buying import pay_form, sellable
from shortcodes.registry import Attribute
from shortcodes.runtime import Shortcode

bp = Blueprint("checkout", __name__)
#: Registered instead of :data:`bp` on a site without ``demo_payments``: a POST would otherwise
#: meet the page route's 405, which would tell a prober the checkout exists.
closed = Blueprint("checkout_closed", __name__)

_FORM = Markup(
    '<form class="checkout" method="post" action="/checkout/{product}">'
    '<input type="hidden" name="csrf_token" value="{csrf}">'
    '<button type="submit" class="button">{label}</button></form>'
)


def checkout_button(sc: Shortcode, ctx: Context) -> Markup:
    """A button that buys a product of site.toml [products]: through Stripe Checkout when the
    product has a ``stripe_price`` and the site an API key, else the demo checkout when the
    site has ``demo_payments``; "not on sale" otherwise. Nothing for visitors."""
    if ctx.contact is None:
        return Markup("")
    state = host()
    product = state.site.products.get(str(sc.attrs.get("product", "")))
    if product is None:
        raise ValueError(f"no product {sc.attrs.get('product')!r} in site.toml [products]")
    label = sc.attrs.get("button_text") or f"Buy {product.title} for {product.price}"
    if sellable(product):
        return pay_form(f"/pay/{product.id}", ctx.csrf_token, label)
    if state.site.demo_payments:
        return _FORM.format(product=product.id, csrf=ctx.csrf_token, label=label)
    return Markup('<span class="checkout-unavailable">Not on sale yet</span>')


def manage_subscription(sc: Shortcode, ctx: Context) -> Markup:
    """A "Manage subscription" button that opens Stripe's billing portal (logged-in contacts of
    a site that sells through Stripe)."""
    if ctx.contact is None or not host().stripe.can_sell:
        return Markup("")
    return pay_form(
        "/pay/portal", ctx.csrf_token, sc.attrs.get("button_text") or "Manage subscription"
    )


def register_host_shortcodes(env: Environment) -> None:
    """Register the host's own shortcodes through the public API."""
    env.add_shortcode(
        "checkout_button",
        checkout_button,
        attributes=[
            Attribute("product", str, required=True, doc="a product id from site.toml"),
            Attribute("button_text", str, default="", doc="the button label"),
        ],
        example='[checkout_button product="credits-50"]',
    )
    env.add_shortcode(
        "manage_subscription",
        manage_subscription,
        attributes=[Attribute("button_text", str, default="", doc="the button label")],
        example="[manage_subscription]",
    )


@bp.post("/checkout/<product_id>")
@login_required
def checkout(product_id: str) -> ResponseReturnValue:
    """Simulate a successful payment for the logged-in contact through the payment webhook."""
    contact = signed_in()
    state = host()
    product = state.site.products.get(product_id)
    if product is None:
        return error_page(404, "No such product", "This site sells no such product.")
    payment_id = f"demo-{secrets.token_hex(8)}"
    body = json.dumps(
        {
            "event_id": f"evt-{payment_id}",
            "contact": contact.id,
            "product": product.id,
            "payment_id": payment_id,
        }
    ).encode()
    answer, status = process(
        "payments/succeeded", signed_headers(state.site.webhook_secret, body), body
    )
    if status != 200:
        flash(f"The payment could not be recorded: {answer.get('message')}", "error")
        return redirect("/credits", 303)
    balance = answer["result"].get("balance")
    tail = f" — you now have {balance} credits" if balance is not None else ""
    flash(f"Payment received for {product.title}{tail}.", "success")
    return redirect("/credits", 303)


@closed.route("/checkout/<path:rest>", methods=["GET", "POST"])
def no_checkout(rest: str) -> ResponseReturnValue:
    """404: this site has no simulated checkout (its products are sold through Stripe)."""
    return error_page(404, "Not found", "This site has no such page.")
