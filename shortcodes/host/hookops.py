"""Host webhook operations: what each inbound webhook does, in the one transaction that dedupes it.

Each function takes the open transaction, the checked JSON payload and the event id, and returns
a JSON-able result. They call the store's own functions (contacts, ledger), so a webhook changes
state exactly as the CLI or an actionset would, and records the events automations listen to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select

from shortcodes.automations import loyalty
from shortcodes.automations.rules import LoyaltyConfig
from shortcodes.context import Tag
from shortcodes.errors import InvalidInput, UnknownContact, UnknownField
from shortcodes.membership import vocabulary as vocab
from shortcodes.membership.site import Product, SiteSettings
from shortcodes.store import contacts, ledger, schema
from shortcodes.store.events import record_event
from shortcodes.store.grants import GrantSpec
from shortcodes.store.session import Actor, Tx

Payload = Mapping[str, Any]
HookOp = Callable[[Tx, SiteSettings, Payload, str, Actor], dict[str, Any]]
MATH_OPERATIONS = ("add", "subtract", "set")
_MAX = 10**12
#: What a (demo) payment webhook credits: a paid purchase grant.
PURCHASE = GrantSpec("purchase", "paid")


def _ref(payload: Payload, key: str) -> int | str:
    """The contact ``key`` names (an id or an email), unresolved."""
    ref = payload.get(key)
    if isinstance(ref, bool) or not isinstance(ref, int | str) or ref == "":
        raise InvalidInput(f"{key!r} must be a contact id or an email")
    return ref


def _contact(tx: Tx, payload: Payload) -> int:
    ref = _ref(payload, "contact")
    if not payload.get("origin") or not isinstance(ref, str):
        return contacts.lock_contact(tx, ref)
    # A [[sync]] peer shares its contact base with this site: a member it knows (by email) is
    # created here on the first change it sends, without a password. Ordinary webhooks never
    # create contacts: there an unknown contact is a mistake worth a 404.
    try:
        return contacts.lock_contact(tx, ref)
    except UnknownContact:
        return contacts.add_contact(tx, ref, "", None, {})


def _text(payload: Payload, key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{key!r} must be a non-empty string")
    return value.strip()


def _tag(tx: Tx, payload: Payload) -> Tag:
    """The existing tag named by ``tag`` (an id or a name); tags are never created by a webhook."""
    ref = payload.get("tag")
    if isinstance(ref, int) and not isinstance(ref, bool):
        return contacts.resolve_tag(tx.conn, ref)
    return contacts.resolve_tag(tx.conn, _text(payload, "tag"))


def _int(payload: Payload, key: str, default: int | None = None) -> int:
    value = payload.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > _MAX:
        raise InvalidInput(f"{key!r} must be a whole number, got {value!r}")
    return value


def tag_apply(
    tx: Tx, site: SiteSettings, payload: Payload, event_id: str, actor: Actor
) -> dict[str, Any]:
    """Apply a tag (``tag`` by id or name) to ``contact``."""
    contact_id = _contact(tx, payload)
    tag = _tag(tx, payload)
    changed = contacts.apply_tag(tx, contact_id, tag, f"webhook:{event_id}")
    return {"contact": contact_id, "tag": tag.name, "changed": changed}


def tag_remove(
    tx: Tx, site: SiteSettings, payload: Payload, event_id: str, actor: Actor
) -> dict[str, Any]:
    """Remove a tag from ``contact``."""
    contact_id = _contact(tx, payload)
    tag = _tag(tx, payload)
    changed = contacts.remove_tag(tx, contact_id, tag, f"webhook:{event_id}")
    return {"contact": contact_id, "tag": tag.name, "changed": changed}


def math(
    tx: Tx, site: SiteSettings, payload: Payload, event_id: str, actor: Actor
) -> dict[str, Any]:
    """The Memberium "Math" post: ``operation`` add/subtract/set ``value`` on ``field``, clamped.

    The result is kept within ``min`` (default 0) and ``max`` (default unbounded). On a credit
    field the change is one ledger entry (never a silent overwrite); on any other field the new
    number is stored in the custom field.
    """
    contact_id = _contact(tx, payload)
    field = _text(payload, "field")
    operation = _text(payload, "operation").lower()
    if operation not in MATH_OPERATIONS:
        raise InvalidInput(
            f"'operation' must be one of {', '.join(MATH_OPERATIONS)}, got {operation!r}"
        )
    value = _int(payload, "value")
    low = _int(payload, "min", 0)
    high = _int(payload, "max", _MAX)
    if low > high:
        raise InvalidInput(f"'min' ({low}) is above 'max' ({high})")
    try:
        credit_field = ledger.check_credit_field(tx.credit_fields, field)
    except UnknownField:
        return _field_math(tx, contact_id, field, operation, value, low, high)
    current = ledger.balance(tx.conn, contact_id, credit_field)
    new = min(max(_compute(operation, current, value), low, 0), high)
    delta = new - current
    reason = f"webhook {operation} {value} (event {event_id})"
    key = f"hook:{event_id}:math"
    if delta > 0:
        ledger.credit(tx, contact_id, credit_field, delta, key, reason, actor)
    elif delta < 0:
        ledger.debit(tx, contact_id, credit_field, -delta, key, reason, actor)
    return {
        "contact": contact_id,
        "field": credit_field,
        "before": current,
        "after": new,
        "delta": delta,
    }


def _compute(operation: str, current: int, value: int) -> int:
    if operation == "add":
        return current + value
    if operation == "subtract":
        return current - value
    return value


def _field_math(
    tx: Tx, contact_id: int, field: str, operation: str, value: int, low: int, high: int
) -> dict[str, Any]:
    fields = tx.conn.execute(
        select(schema.contacts.c.fields).where(schema.contacts.c.id == contact_id)
    ).scalar_one()
    raw = next((v for k, v in fields.items() if k.casefold() == field.casefold()), 0)
    current = raw if isinstance(raw, int) and not isinstance(raw, bool) else _number(raw)
    new = min(max(_compute(operation, current, value), low), high)
    contacts.set_field(tx, contact_id, field, new)
    return {
        "contact": contact_id,
        "field": field,
        "before": current,
        "after": new,
        "delta": new - current,
    }


def _number(raw: Any) -> int:
    text = str(raw).strip()
    return int(text) if text.lstrip("-").isdigit() else 0


def update_contact(
    tx: Tx, site: SiteSettings, payload: Payload, event_id: str, actor: Actor
) -> dict[str, Any]:
    """Set custom fields from ``fields`` (credit balances change only through the ledger)."""
    contact_id = _contact(tx, payload)
    fields = payload.get("fields")
    if not isinstance(fields, dict) or not fields:
        raise InvalidInput("'fields' must be a non-empty object of field name -> value")
    for name, value in fields.items():
        if name.casefold() in ("email", "name"):
            raise InvalidInput(f"{name!r} cannot be changed by a webhook")
        contacts.set_field(tx, contact_id, name, value)  # refuses credit fields itself
    return {"contact": contact_id, "fields": sorted(fields)}


def _product(site: SiteSettings, payload: Payload) -> Product:
    pid = _text(payload, "product")
    product = site.products.get(pid)
    if product is None:
        raise InvalidInput(f"no product {pid!r} in site.toml [products]")
    return product


def payment_succeeded(
    tx: Tx, site: SiteSettings, payload: Payload, event_id: str, actor: Actor
) -> dict[str, Any]:
    """A charge went through: credit the product's bundle and apply its tag (once per payment)."""
    contact_id = _contact(tx, payload)
    product = _product(site, payload)
    payment = _text(payload, "payment_id")
    result: dict[str, Any] = {"contact": contact_id, "product": product.id, "payment_id": payment}
    if product.credits:
        done = ledger.credit(
            tx,
            contact_id,
            product.field,
            product.credits,
            f"payment:{payment}",
            f"Payment {payment}: {product.title}",
            actor,
            PURCHASE,
        )
        result["balance"] = done.balances[product.field]
        result["entry_ids"] = list(done.entry_ids)
    if product.tag:
        contacts.apply_tag(
            tx, contact_id, contacts.resolve_tag(tx.conn, product.tag), f"payment:{payment}"
        )
    record_event(
        tx, "payment_succeeded", contact_id, {"product": product.id, "payment_id": payment}
    )
    return result


def payment_failed(
    tx: Tx, site: SiteSettings, payload: Payload, event_id: str, actor: Actor
) -> dict[str, Any]:
    """A charge failed: revoke the access tag the product grants (credits were never added)."""
    contact_id = _contact(tx, payload)
    product = _product(site, payload)
    revoked = False
    if product.tag:
        tag = contacts.resolve_tag(tx.conn, product.tag)
        revoked = contacts.remove_tag(tx, contact_id, tag, f"payment_failed:{event_id}")
    record_event(tx, "payment_failed", contact_id, {"product": product.id})
    return {"contact": contact_id, "product": product.id, "revoked": revoked}


def payment_refunded(
    tx: Tx, site: SiteSettings, payload: Payload, event_id: str, actor: Actor
) -> dict[str, Any]:
    """A charge was refunded: reverse exactly its ledger entries and revoke the product's tag.

    If the credits were already spent, the reversal would overdraw: the whole webhook is refused
    (409) and nothing changes, so an operator can decide.
    """
    contact_id = _contact(tx, payload)
    product = _product(site, payload)
    payment = _text(payload, "payment_id")
    result: dict[str, Any] = {"contact": contact_id, "product": product.id, "payment_id": payment}
    if product.credits:
        ops = schema.operations
        stored = tx.conn.execute(
            select(ops.c.result, ops.c.contact_id).where(ops.c.key == f"payment:{payment}")
        ).first()
        if stored is None or stored.contact_id != contact_id:
            raise InvalidInput(f"no payment {payment!r} for this contact to refund")
        entry_ids = list(stored.result.get("entry_ids", []))
        done = ledger.refund(
            tx, entry_ids, f"refund:{payment}", f"Refund of payment {payment}", actor
        )
        result["balances"] = dict(done.balances)
    if product.tag:
        tag = contacts.resolve_tag(tx.conn, product.tag)
        result["revoked"] = contacts.remove_tag(tx, contact_id, tag, f"refund:{payment}")
    record_event(tx, "refunded", contact_id, {"product": product.id, "payment_id": payment})
    return result


def _points(payload: Payload) -> int:
    value = payload.get("points")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _MAX:
        raise InvalidInput(f"'points' must be a whole number from 1 to {_MAX}, got {value!r}")
    return value


def _reason(payload: Payload) -> str:
    reason = _text(payload, "reason")
    if len(reason) > 500:
        raise InvalidInput("'reason' must be at most 500 characters")
    return reason


def _wait(payload: Payload) -> loyalty.Wait:
    if "available_after" not in payload:
        return None
    try:
        return vocab.delay_or_now(payload["available_after"])
    except ValueError as exc:
        raise InvalidInput(f"'available_after': {exc}") from None


def _loyalty_config() -> LoyaltyConfig:
    from shortcodes.host.state import host  # the site's [loyalty], read once by the host

    return host().automations.loyalty


def _points_answer(tx: Tx, contact_id: int) -> dict[str, Any]:
    summary = loyalty.summary(tx.conn, _loyalty_config(), contact_id, tx.now)
    return {
        "contact": contact_id,
        "available": summary.available,
        "pending": summary.pending,
        "lifetime": summary.lifetime,
        "stage": summary.stage,
    }


def points_award(
    tx: Tx, site: SiteSettings, payload: Payload, event_id: str, actor: Actor
) -> dict[str, Any]:
    """Award ``points`` (a whole number) to ``contact`` for ``reason`` (shown in the ledger).

    They stay pending for ``[loyalty] available_after``, or for ``available_after`` when the
    body names it (a duration like ``"7d"``, or ``"now"`` for points available at once); the
    worker makes them available. Answers the contact's ``available``, ``pending``, ``lifetime``
    points and ``stage``.
    """
    contact_id = _contact(tx, payload)
    points, reason, wait = _points(payload), _reason(payload), _wait(payload)
    loyalty.earn(
        tx, _loyalty_config(), contact_id, points, f"hook:{event_id}", reason,
        wait=wait, actor=actor,
    )  # fmt: skip
    return _points_answer(tx, contact_id) | {"awarded": points}


def points_remove(
    tx: Tx, site: SiteSettings, payload: Payload, event_id: str, actor: Actor
) -> dict[str, Any]:
    """Take up to ``points`` back from ``contact`` for ``reason``: first from pending awards
    (newest first: the points of a returned order never become available), then from the
    available points as one ledger entry. Never below zero: ``removed`` says how many were
    taken (fewer when the contact had fewer), ``from_pending`` how many of them were pending."""
    contact_id = _contact(tx, payload)
    points, reason = _points(payload), _reason(payload)
    done = loyalty.remove(
        tx, _loyalty_config(), contact_id, points, f"hook:{event_id}", reason, actor
    )
    taken = {"removed": done.removed, "from_pending": done.from_pending, "requested": points}
    return _points_answer(tx, contact_id) | taken


def referral_made(
    tx: Tx, site: SiteSettings, payload: Payload, event_id: str, actor: Actor
) -> dict[str, Any]:
    """``referrer`` brought ``referred`` (both contacts, by id or email): starts the
    ``referral_made`` rules of the referrer, once per referred contact (``recorded`` is false
    when this referral was known already; another referrer for the same contact is refused)."""
    referrer, referred = _ref(payload, "referrer"), _ref(payload, "referred")
    recorded = loyalty.make_referral(tx, referrer, referred)
    return _referral_answer(tx, referred) | {"recorded": recorded}


def referral_approved(
    tx: Tx, site: SiteSettings, payload: Payload, event_id: str, actor: Actor
) -> dict[str, Any]:
    """The referral of ``referred`` is approved (``referrer`` may be left out when the referral
    was made first): starts the ``referral_approved`` rules of the referrer, once per referred
    contact. A referral never made is made and approved at once."""
    referred = _ref(payload, "referred")
    referrer = _ref(payload, "referrer") if "referrer" in payload else None
    approved = loyalty.approve_referral(tx, referrer, referred)
    return _referral_answer(tx, referred) | {"approved": approved}


def _referral_answer(tx: Tx, referred: int | str) -> dict[str, Any]:
    """The referral on record for ``referred`` (the operation just recorded it); ``contact``
    is the referrer, whose rules run (the ``webhook`` event is recorded for them)."""
    referred_id = contacts.resolve_contact(tx.conn, referred)
    t = schema.loyalty_referrals
    referrer = tx.conn.execute(select(t.c.referrer_id).where(t.c.referred_id == referred_id))
    return {"contact": int(referrer.scalar_one()), "referred": referred_id}


def custom_event(name: str, rules: list[str]) -> HookOp:
    """The operation of ``/hooks/events/<name>``: it changes nothing itself; the ``webhook``
    event recorded with it (see :func:`shortcodes.host.webhooks.apply_once`) is heard by
    ``rules``, the rules listening to ``name`` (their conditions decide whether they run)."""

    def announce(
        tx: Tx, site: SiteSettings, payload: Payload, event_id: str, actor: Actor
    ) -> dict[str, Any]:
        return {"contact": _contact(tx, payload), "event": name, "rules": rules}

    return announce


#: URL name under /hooks/ -> operation (``events/<name>`` is :func:`custom_event`).
OPERATIONS: dict[str, HookOp] = {
    "tags/apply": tag_apply,
    "tags/remove": tag_remove,
    "credits": math,
    "contacts/update": update_contact,
    "payments/succeeded": payment_succeeded,
    "payments/failed": payment_failed,
    "payments/refunded": payment_refunded,
    "points/award": points_award,
    "points/remove": points_remove,
    "referrals/made": referral_made,
    "referrals/approved": referral_approved,
}
