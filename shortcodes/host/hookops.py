"""Host webhook operations: what each inbound webhook does, in the one transaction that dedupes it.

Each function takes the open transaction, the checked JSON payload and the event id, and returns
a JSON-able result. They call the store's own functions (contacts, ledger), so a webhook changes
state exactly as the CLI or an actionset would, and records the events automations listen to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select

from shortcodes.context import Tag
from shortcodes.errors import InvalidInput, UnknownContact, UnknownField
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


def _contact(tx: Tx, payload: Payload) -> int:
    ref = payload.get("contact")
    if isinstance(ref, bool) or not isinstance(ref, int | str) or ref == "":
        raise InvalidInput("'contact' must be a contact id or an email")
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
}
