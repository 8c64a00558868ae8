"""Payments mapping: what each Stripe event does to the store, inside the transaction that
records the event.

Every handler takes the open transaction, the site's products and the verified event (a plain
dict) and returns an :class:`Outcome`: ``applied`` (it changed something) or ``ignored`` (it
is not ours, or already done: a second event for an invoice already paid, an older
subscription event than the state we hold). A problem Stripe should retry later raises
:class:`~shortcodes.errors.HookError` (409 ``deferred``: a refund for a payment not recorded yet);
the transaction then rolls back, so nothing is half-applied.

Fulfilment is keyed by the object, not the event: one payment row per Checkout Session or
invoice id, so ``invoice.paid`` and ``invoice.payment_succeeded`` for the same invoice, or a
re-sent event with a new id, credit once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from shortcodes.errors import HookError, NotOurEvent, UnknownContact
from shortcodes.membership.credit_policy import CreditPolicy
from shortcodes.membership.site import Product, SiteSettings
from shortcodes.payments import records
from shortcodes.store import contacts, ledger, refunds
from shortcodes.store.events import record_event
from shortcodes.store.grants import GrantSpec
from shortcodes.store.session import Actor, Tx

log = logging.getLogger("shortcodes.payments")

Event = Mapping[str, Any]
#: Subscription statuses that keep the membership tag: ``past_due`` keeps access while Stripe
#: retries the card; every other status (``unpaid``, ``canceled``, ``paused``...) ends it.
KEEPS_ACCESS = frozenset({"active", "trialing", "past_due"})
#: The longest id the ``stripe_*`` tables keep (Stripe's ids are far shorter).
MAX_ID = 255
#: The largest amount in minor units an event may carry (Stripe's own cap is far below).
MAX_MINOR = 10**15


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an event did: ``applied`` or ``ignored``, a sentence, the contact it concerned."""

    status: str
    message: str
    contact: int | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The JSON answer's ``result`` (also what a replay of the event id answers)."""
        return {
            "outcome": self.status,
            "message": self.message,
            "contact": self.contact,
            **self.detail,
        }


def ignored(message: str, contact: int | None = None) -> Outcome:
    """An event that changes nothing, logged so an operator can see why."""
    log.info("stripe event ignored: %s", message)
    return Outcome("ignored", message, contact)


# -- reading Stripe objects --------------------------------------------------------------------


def obj(event: Event) -> Mapping[str, Any]:
    """The event's ``data.object`` (checked by the webhook before any handler runs)."""
    found: Mapping[str, Any] = event["data"]["object"]
    return found


def ref(value: Any) -> str | None:
    """The id of an expandable field: the string itself, or the expanded object's ``id``
    (None when it is neither, or longer than any Stripe id: 255 characters)."""
    if isinstance(value, Mapping):
        value = value.get("id")
    if isinstance(value, str) and 0 < len(value) <= MAX_ID:
        return value
    return None


def _currency(value: Any) -> str:
    """A three-letter ISO currency code, lower case as Stripe writes it."""
    if isinstance(value, str) and len(value) == 3 and value.isascii() and value.isalpha():
        return value.lower()
    raise HookError(400, "bad_object", f"'currency' must be a three-letter code, got {value!r}")


def _status(value: Any) -> str:
    """A subscription status as Stripe names them (a short word)."""
    if isinstance(value, str) and 0 < len(value) <= 30 and value.replace("_", "").isalpha():
        return value
    raise HookError(400, "bad_object", f"'status' must be a subscription status, got {value!r}")


def _whole(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MINOR:
        raise HookError(400, "bad_object", f"{what} must be a whole number of minor units")
    return value


def _metadata(*objects: Any) -> dict[str, str]:
    """The metadata of the objects, merged (earlier objects win)."""
    merged: dict[str, str] = {}
    for item in reversed(objects):
        if isinstance(item, Mapping) and isinstance(item.get("metadata"), Mapping):
            merged.update({str(k): str(v) for k, v in item["metadata"].items()})
    return merged


def _contact(tx: Tx, customer: str | None, meta: Mapping[str, str], fallback: Any = None) -> int:
    """The contact an object is for: its recorded customer, else ``metadata.contact`` (or the
    Checkout Session's ``client_reference_id``). Unknown: a :class:`HookError` ``ignored``."""
    if customer is not None:
        found = records.contact_of(tx.conn, customer)
        if found is not None:
            return contacts.lock_contact(tx, found)
    given = meta.get("contact") or (str(fallback) if fallback else "")
    if given.isdigit():
        try:
            contact_id = contacts.lock_contact(tx, int(given))
        except UnknownContact:
            pass
        else:
            if customer is not None:
                records.record_customer(tx, contact_id, customer)
            return contact_id
    raise NotOurEvent(f"unknown customer {customer!r} and no known contact in metadata")


def _product_by_id(site: SiteSettings, pid: str | None) -> Product:
    product = site.products.get(pid or "")
    if product is None:
        raise NotOurEvent(f"no product {pid!r} in site.toml [products]")
    return product


def _product_by_prices(site: SiteSettings, prices: list[str], meta: Mapping[str, str]) -> Product:
    """The product whose ``stripe_price`` is among ``prices`` (else ``metadata.product``)."""
    for product in site.products.values():
        if product.stripe_price and product.stripe_price in prices:
            return product
    if meta.get("product"):
        return _product_by_id(site, meta["product"])
    raise NotOurEvent(f"no product of this site sells price {', '.join(prices) or '(none)'}")


def _prices(items: Any) -> list[str]:
    """The price ids of invoice lines or subscription items, in every shape the API has used:
    ``price.id``, the legacy ``plan.id``, and ``pricing.price_details.price``."""
    data = items.get("data") if isinstance(items, Mapping) else None
    found: list[str] = []
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, Mapping):
            continue
        details = item.get("pricing", {}) or {}
        price_details = details.get("price_details", {}) if isinstance(details, Mapping) else {}
        for candidate in (item.get("price"), item.get("plan"), price_details.get("price")):
            if ref(candidate):
                found.append(str(ref(candidate)))
    return found


# -- fulfilment --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sale:
    """A payment to fulfil: the object it is keyed by and what it paid for."""

    ref: str
    contact_id: int
    product: Product
    amount: int
    currency: str
    charge: str | None = None
    payment_intent: str | None = None
    subscription: str | None = None


def fulfil(tx: Tx, sale: Sale, actor: Actor, grant_tag: bool = True) -> Outcome:
    """Credit the product's credits and apply its tag once per ``sale.ref``; record the
    ``payment_succeeded(product)`` event automations listen to."""
    if records.payment(tx.conn, ref=sale.ref) is not None:
        return ignored(f"{sale.ref} was already fulfilled", sale.contact_id)
    product = sale.product
    records.add_payment(
        tx,
        {
            "ref": sale.ref,
            "contact_id": sale.contact_id,
            "product": product.id,
            "charge": sale.charge,
            "payment_intent": sale.payment_intent,
            "subscription": sale.subscription,
            "amount": sale.amount,
            "currency": sale.currency,
            "credits": product.credits,
            "field": product.field,
        },
    )
    detail: dict[str, Any] = {"product": product.id, "payment": sale.ref}
    if product.credits:
        reason = f"Stripe payment {sale.ref}: {product.title}"
        source = GrantSpec("subscription" if sale.subscription else "purchase", "paid")
        done = ledger.credit(
            tx, sale.contact_id, product.field, product.credits, credit_key(sale.ref), reason,
            actor, source,
        )  # fmt: skip
        detail["balance"] = tx.policy(product.field).show(done.balances[product.field])
    if product.tag and grant_tag:
        _set_tag(tx, sale.contact_id, product, True, f"stripe:{sale.ref}")
    record_event(
        tx, "payment_succeeded", sale.contact_id, {"product": product.id, "payment_id": sale.ref}
    )
    message = f"{sale.ref}: {product.credits} credits" + (" and its tag" if product.tag else "")
    return Outcome("applied", message, sale.contact_id, detail)


def _set_tag(tx: Tx, contact_id: int, product: Product, on: bool, source: str) -> bool:
    """Apply or remove the product's tag; True when that changed something."""
    if not product.tag:
        return False
    tag = contacts.resolve_tag(tx.conn, product.tag)
    if on:
        return contacts.apply_tag(tx, contact_id, tag, source)
    return contacts.remove_tag(tx, contact_id, tag, source)


# -- the handlers ------------------------------------------------------------------------------


def checkout_completed(tx: Tx, site: SiteSettings, event: Event, actor: Actor) -> Outcome:
    """A Checkout Session completed: a bundle's credits once per session (a subscription's come
    with its invoices); the customer id is recorded either way."""
    session = obj(event)
    meta = _metadata(session)
    customer = ref(session.get("customer"))
    contact_id = _contact(tx, customer, meta, session.get("client_reference_id"))
    if session.get("mode") == "subscription":
        return ignored("a subscription's credits come with invoice.paid", contact_id)
    if session.get("payment_status") != "paid":
        # Bank debits and vouchers: checkout.session.async_payment_succeeded follows.
        return ignored(f"{session.get('id')} is not paid yet", contact_id)
    sale = Sale(
        ref=str(session["id"]),
        contact_id=contact_id,
        product=_product_by_id(site, meta.get("product")),
        amount=_whole(session.get("amount_total"), "amount_total"),
        currency=_currency(session.get("currency")),
        payment_intent=ref(session.get("payment_intent")),
    )
    return fulfil(tx, sale, actor)


def _invoice_subscription(invoice: Mapping[str, Any]) -> tuple[str | None, dict[str, str]]:
    """The invoice's subscription id and the subscription metadata it carries (newer API
    versions put both under ``parent.subscription_details``)."""
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") if isinstance(parent, Mapping) else None
    details = details or invoice.get("subscription_details") or {}
    sub = ref(invoice.get("subscription")) or ref(details.get("subscription"))
    return sub, _metadata(details, invoice)


def invoice_paid(tx: Tx, site: SiteSettings, event: Event, actor: Actor) -> Outcome:
    """A subscription period was paid: its credits and tag, once per invoice id."""
    invoice = obj(event)
    sub_id, meta = _invoice_subscription(invoice)
    product = _product_by_prices(site, _prices(invoice.get("lines")), meta)
    contact_id = _contact(tx, ref(invoice.get("customer")), meta)
    held = records.subscription(tx.conn, sub_id) if sub_id else None
    if sub_id and held is None:
        records.save_subscription(tx, sub_id, contact_id, product.id, "active", event["created"])
    ended = held is not None and held.status not in KEEPS_ACCESS
    sale = Sale(
        ref=str(invoice["id"]),
        contact_id=contact_id,
        product=product,
        amount=_whole(invoice.get("amount_paid"), "amount_paid"),
        currency=_currency(invoice.get("currency")),
        charge=ref(invoice.get("charge")),
        payment_intent=ref(invoice.get("payment_intent")),
        subscription=sub_id,
    )
    # A late invoice of a subscription that already ended still pays its credits, not access.
    return fulfil(tx, sale, actor, grant_tag=not ended)


def invoice_failed(tx: Tx, site: SiteSettings, event: Event, actor: Actor) -> Outcome:
    """A renewal failed: the ``payment_failed(product)`` event; access follows the
    subscription's status (``past_due`` keeps it while Stripe retries)."""
    invoice = obj(event)
    _sub, meta = _invoice_subscription(invoice)
    product = _product_by_prices(site, _prices(invoice.get("lines")), meta)
    contact_id = _contact(tx, ref(invoice.get("customer")), meta)
    record_event(
        tx, "payment_failed", contact_id, {"product": product.id, "invoice": invoice.get("id")}
    )
    return Outcome("applied", f"{invoice.get('id')} failed", contact_id, {"product": product.id})


def subscription_changed(tx: Tx, site: SiteSettings, event: Event, actor: Actor) -> Outcome:
    """Keep or end the membership tag by the subscription's status. A ``deleted`` subscription
    stays ended (later ``updated`` events cannot revive it); an event older than the state we
    hold is ignored, so delivery order does not matter."""
    sub = obj(event)
    sub_id = str(sub["id"])
    deleted = event["type"] == "customer.subscription.deleted"
    status = "canceled" if deleted else _status(sub.get("status"))
    held = records.subscription(tx.conn, sub_id)
    if held is not None and held.status == "canceled":
        return ignored(f"{sub_id} already ended", held.contact_id)
    if held is not None and event["created"] < held.event_created:
        return ignored(f"{sub_id}: an older event than the status we hold", held.contact_id)
    meta = _metadata(sub)
    product = _product_by_prices(site, _prices(sub.get("items")), meta)
    contact_id = _contact(tx, ref(sub.get("customer")), meta)
    records.save_subscription(tx, sub_id, contact_id, product.id, status, event["created"])
    keep = status in KEEPS_ACCESS
    changed = _set_tag(tx, contact_id, product, keep, f"stripe:{sub_id}:{status}")
    verb = "keeps" if keep else "ends"
    return Outcome(
        "applied", f"{sub_id} is {status}: {verb} access", contact_id, {"changed": changed}
    )


def _payment_of_charge(tx: Tx, charge: Mapping[str, Any]) -> records.Payment | None:
    """The payment a charge paid for: by charge id, payment intent, or invoice id."""
    for column, value in (
        ("charge", ref(charge.get("id"))),
        ("payment_intent", ref(charge.get("payment_intent"))),
        ("ref", ref(charge.get("invoice"))),
    ):
        if value:
            found = records.payment(tx.conn, **{column: value})
            if found is not None:
                return found
    return None


def charge_refunded(tx: Tx, site: SiteSettings, event: Event, actor: Actor) -> Outcome:
    """A charge was (partly) refunded: reverse credits in proportion to the newly refunded
    amount (``amount_refunded`` is cumulative; what was already reversed is not reversed again),
    never below a zero balance; a full refund also ends the product's access."""
    charge = obj(event)
    paid = _payment_of_charge(tx, charge)
    if paid is None:
        return _unknown_payment(tx, charge)
    if _currency(charge.get("currency")) != paid.currency.lower():
        return ignored(
            f"refund in {charge.get('currency')!r} for a payment in {paid.currency!r}",
            paid.contact_id,
        )
    total = _whole(charge.get("amount_refunded"), "amount_refunded")
    if total <= paid.refunded:
        return ignored(f"no new refund on {paid.ref}", paid.contact_id)
    return _reverse(tx, site, paid, total, actor, "refunded")


def _unknown_payment(tx: Tx, charge: Mapping[str, Any]) -> Outcome:
    """A refund or dispute before the payment is recorded: for a customer of ours, Stripe must
    retry later (409); for anyone else, it is not ours."""
    customer = ref(charge.get("customer"))
    if customer and records.contact_of(tx.conn, customer) is not None:
        raise HookError(
            409,
            "deferred",
            f"the payment of {charge.get('id')} is not recorded yet; retry after it is",
        )
    return ignored(f"{charge.get('id')} paid for nothing of this site")


def credit_key(ref: str) -> str:
    """The ledger operation that credited the payment ``ref`` (its grants are found by it)."""
    return f"stripe:{ref}"


def _kept_note(done: refunds.GrantRefund, policy: CreditPolicy) -> str:
    """What happened to the part of a refund that was already spent, by the clawback policy."""
    if not done.kept and not done.from_balance and not done.below_zero:
        return ""
    spent = policy.show(done.wanted - done.from_grants)
    if done.policy == "grant":
        return f" ({spent} already spent: the clawback policy keeps spent credits spent)"
    covered = f"{policy.show(done.from_balance)} taken from the rest of the balance"
    if done.policy == "below_zero":
        owed = policy.show(done.below_zero)
        covered += f", {owed} below zero (balance {policy.show(done.balance)})"
    return f" ({spent} already spent: {covered})"


def _reverse(
    tx: Tx, site: SiteSettings, paid: records.Payment, total: int, actor: Actor, kind: str
) -> Outcome:
    """Reverse the credits due for ``total`` refunded (minor units) of ``paid``."""
    due = (
        paid.credits if paid.amount <= 0 else min(paid.credits, paid.credits * total // paid.amount)
    )
    wanted = max(due - paid.reversed, 0)
    policy = tx.policy(paid.field)
    taken = 0
    note = ""
    owed: int | Decimal = 0  # what the refund took below zero (a debt), exact
    if wanted:
        reason = f"Stripe {kind} {total} of {paid.amount} {paid.currency} on {paid.ref}"
        key = f"stripe:{kind}:{paid.ref}:{total}"
        done = refunds.refund_grant(
            tx, credit_key(paid.ref), paid.contact_id, paid.field, wanted * policy.scale,
            key, reason, actor,
        )  # fmt: skip
        taken = int(policy.show(done.taken))
        owed = policy.show(done.below_zero)
        note = _kept_note(done, policy)
    records.update_payment(tx, paid.id, refunded=max(total, paid.refunded), reversed=due)
    product = site.products.get(paid.product)
    revoked = False
    if product is not None and total >= paid.amount:
        revoked = _set_tag(tx, paid.contact_id, product, False, f"stripe:{kind}:{paid.ref}")
    record_event(tx, "refunded", paid.contact_id, {"product": paid.product, "payment_id": paid.ref})
    message = f"{paid.ref}: reversed {taken} of {wanted} credits{note}"
    if taken < wanted:
        log.warning("stripe %s: %s", kind, message)
    data = {"reversed": taken, "revoked": revoked, "below_zero": str(owed)}
    return Outcome("applied", message, paid.contact_id, data)


def dispute_created(tx: Tx, site: SiteSettings, event: Event, actor: Actor) -> Outcome:
    """A chargeback was opened: hold the product's access until it is closed."""
    dispute = obj(event)
    paid = _payment_of_charge(
        tx, {"id": ref(dispute.get("charge")), "payment_intent": dispute.get("payment_intent")}
    )
    if paid is None:
        return ignored(f"dispute on {dispute.get('charge')!r}, which paid for nothing of ours")
    records.update_payment(tx, paid.id, disputed=True)
    product = site.products.get(paid.product)
    held = product is not None and _set_tag(tx, paid.contact_id, product, False, "stripe:dispute")
    return Outcome("applied", f"{paid.ref} disputed: access held", paid.contact_id, {"held": held})


def dispute_closed(tx: Tx, site: SiteSettings, event: Event, actor: Actor) -> Outcome:
    """A chargeback was closed: won restores access; lost reverses the whole payment."""
    dispute = obj(event)
    paid = _payment_of_charge(
        tx, {"id": ref(dispute.get("charge")), "payment_intent": dispute.get("payment_intent")}
    )
    if paid is None or not paid.disputed:
        return ignored(f"no held payment for the dispute on {dispute.get('charge')!r}")
    records.update_payment(tx, paid.id, disputed=False)
    if dispute.get("status") == "lost":
        return _reverse(tx, site, paid, paid.amount, actor, "dispute lost")
    product = site.products.get(paid.product)
    sub = records.subscription(tx.conn, paid.subscription) if paid.subscription else None
    restore = product is not None and (sub is None or sub.status in KEEPS_ACCESS)
    if restore and product is not None:
        _set_tag(tx, paid.contact_id, product, True, "stripe:dispute won")
    return Outcome("applied", f"{paid.ref}: dispute {dispute.get('status')}", paid.contact_id)


Handler = Callable[[Tx, SiteSettings, Event, Actor], Outcome]

#: The events this site acts on; every other type is answered 200 and logged.
HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": checkout_completed,
    "checkout.session.async_payment_succeeded": checkout_completed,
    "invoice.paid": invoice_paid,
    # Older API versions (and localstripe) name it so; keyed by invoice id, it credits once.
    "invoice.payment_succeeded": invoice_paid,
    "invoice.payment_failed": invoice_failed,
    "customer.subscription.created": subscription_changed,
    "customer.subscription.updated": subscription_changed,
    "customer.subscription.deleted": subscription_changed,
    "charge.refunded": charge_refunded,
    "charge.dispute.created": dispute_created,
    "charge.dispute.closed": dispute_closed,
}


def apply(tx: Tx, site: SiteSettings, event: Event, actor: Actor) -> Outcome:
    """Apply one verified event (see :data:`HANDLERS`)."""
    handler = HANDLERS.get(event["type"])
    if handler is None:
        return ignored(f"{event['type']} is not an event this site handles")
    try:
        return handler(tx, site, event, actor)
    except NotOurEvent as exc:
        return ignored(str(exc))
