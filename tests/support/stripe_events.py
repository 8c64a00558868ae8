"""Stripe events for tests: built like Stripe's, signed with the ``stripe`` library's own HMAC
helper (``stripe.WebhookSignature._compute_signature``, what ``construct_event`` checks against)."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import stripe

WEBHOOK_SECRET = "whsec_test_payments_secret"
OLD_SECRET = "whsec_test_rotated_out"
_ids = itertools.count(1)


def event(
    kind: str, obj: dict[str, Any], *, created: int | None = None, event_id: str = ""
) -> dict[str, Any]:
    """A Stripe event of type ``kind`` around ``obj`` (a fresh ``evt_`` id unless given)."""
    return {
        "id": event_id or f"evt_test_{next(_ids)}",
        "object": "event",
        "type": kind,
        "created": int(time.time()) if created is None else created,
        "livemode": False,
        "api_version": "2025-03-31.basil",
        "data": {"object": obj},
    }


def signature(
    body: bytes, secrets: tuple[str, ...] = (WEBHOOK_SECRET,), at: int | None = None
) -> str:
    """The ``Stripe-Signature`` header for ``body``: one ``v1`` per secret, as Stripe sends
    during a secret rotation."""
    stamp = int(time.time()) if at is None else at
    signed = f"{stamp}.{body.decode('utf-8')}"
    v1 = ",".join(f"v1={stripe.WebhookSignature._compute_signature(signed, s)}" for s in secrets)
    return f"t={stamp},{v1}"


def signed(data: dict[str, Any], **kwargs: Any) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a delivery of ``data``."""
    body = json.dumps(data).encode()
    return body, {"Stripe-Signature": signature(body, **kwargs), "Content-Type": "application/json"}


def checkout_session(
    contact: int, product: str, *, amount: int = 1000, customer: str = "cus_ann", **extra: Any
) -> dict[str, Any]:
    """A completed, paid Checkout Session for a bundle, as our checkout creates it."""
    return {
        "id": f"cs_test_{next(_ids)}",
        "object": "checkout.session",
        "mode": "payment",
        "payment_status": "paid",
        "status": "complete",
        "amount_total": amount,
        "currency": "usd",
        "customer": customer,
        "client_reference_id": str(contact),
        "payment_intent": f"pi_test_{next(_ids)}",
        "metadata": {"contact": str(contact), "product": product},
        **extra,
    }


def invoice(
    price: str,
    *,
    customer: str = "cus_ann",
    sub: str = "sub_ann",
    amount: int = 900,
    invoice_id: str = "",
    charge: str = "",
) -> dict[str, Any]:
    """A paid subscription invoice in the current API's shape (``parent.subscription_details``,
    ``pricing.price_details.price``)."""
    return {
        "id": invoice_id or f"in_test_{next(_ids)}",
        "object": "invoice",
        "customer": customer,
        "status": "paid",
        "amount_paid": amount,
        "currency": "usd",
        "charge": charge or f"ch_test_{next(_ids)}",
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": sub, "metadata": {}},
        },
        "lines": {
            "object": "list",
            "data": [{"id": "il_1", "pricing": {"price_details": {"price": price}}}],
        },
    }


def subscription(
    price: str, status: str, *, customer: str = "cus_ann", sub: str = "sub_ann"
) -> dict[str, Any]:
    """A subscription object with one item."""
    return {
        "id": sub,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "items": {"object": "list", "data": [{"id": "si_1", "price": {"id": price}}]},
        "metadata": {},
    }


def charge(
    charge_id: str,
    *,
    refunded: int,
    amount: int = 1000,
    customer: str = "cus_ann",
    payment_intent: str | None = None,
    currency: str = "usd",
) -> dict[str, Any]:
    """A charge with ``refunded`` minor units refunded so far (Stripe's cumulative figure)."""
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_refunded": refunded,
        "currency": currency,
        "customer": customer,
        "payment_intent": payment_intent,
        "refunded": refunded >= amount,
    }
