"""Payments records: the ``stripe_*`` rows, read and written inside the caller's transaction.

Customers (contact -> Stripe customer), fulfilled payments (one per Checkout Session or
invoice), subscriptions (last known status) and the log of received events. Nothing here
decides what an event means; :mod:`.mapping` does, and calls these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from shortcodes.store import schema
from shortcodes.store.session import Tx

#: How long an event's outcome message may be in the log.
MAX_MESSAGE = 2000


@dataclass(frozen=True, slots=True)
class Payment:
    """A fulfilled payment: what it granted and how much of it was refunded so far."""

    id: int
    ref: str
    contact_id: int
    product: str
    charge: str | None
    payment_intent: str | None
    subscription: str | None
    amount: int
    currency: str
    credits: int
    field: str
    refunded: int
    reversed: int
    disputed: bool


@dataclass(frozen=True, slots=True)
class Subscription:
    """A subscription's last known status and the time of the event that set it."""

    subscription_id: str
    contact_id: int
    product: str
    status: str
    event_created: int


# -- customers ---------------------------------------------------------------------------------


def customer_of(conn: Connection, contact_id: int) -> str | None:
    """The Stripe customer id recorded for a contact."""
    t = schema.stripe_customers
    found = conn.execute(select(t.c.customer_id).where(t.c.contact_id == contact_id)).scalar()
    return None if found is None else str(found)


def contact_of(conn: Connection, customer_id: str) -> int | None:
    """The contact a Stripe customer belongs to."""
    t = schema.stripe_customers
    found = conn.execute(select(t.c.contact_id).where(t.c.customer_id == customer_id)).scalar()
    return None if found is None else int(found)


def record_customer(tx: Tx, contact_id: int, customer_id: str) -> None:
    """Remember the contact's customer id (the first one recorded stays)."""
    if customer_of(tx.conn, contact_id) is None and contact_of(tx.conn, customer_id) is None:
        t = schema.stripe_customers
        tx.conn.execute(
            insert(t).values(contact_id=contact_id, customer_id=customer_id, created_at=tx.now)
        )


# -- payments ----------------------------------------------------------------------------------


def payment(conn: Connection, **where: str) -> Payment | None:
    """The payment whose column (``ref``, ``charge`` or ``payment_intent``) has this value."""
    t = schema.stripe_payments
    ((column, value),) = where.items()
    row = conn.execute(select(t).where(t.c[column] == value).order_by(t.c.id)).first()
    if row is None:
        return None
    values = dict(row._mapping)
    values.pop("created_at")
    return Payment(**values)


def add_payment(tx: Tx, values: Mapping[str, Any]) -> None:
    """Record a fulfilled payment (``ref`` is unique: the caller checked it is new)."""
    tx.conn.execute(insert(schema.stripe_payments).values(**values, created_at=tx.now))


def update_payment(tx: Tx, payment_id: int, **values: Any) -> None:
    """Change a payment's refund, reversal or dispute state."""
    t = schema.stripe_payments
    tx.conn.execute(update(t).where(t.c.id == payment_id).values(**values))


# -- subscriptions -----------------------------------------------------------------------------


def subscription(conn: Connection, subscription_id: str) -> Subscription | None:
    """The subscription's last known state."""
    t = schema.stripe_subscriptions
    row = conn.execute(select(t).where(t.c.subscription_id == subscription_id)).first()
    if row is None:
        return None
    values = dict(row._mapping)
    values.pop("updated_at")
    return Subscription(**values)


def save_subscription(
    tx: Tx, subscription_id: str, contact_id: int, product: str, status: str, created: int
) -> None:
    """Insert or update the subscription's status as of the event created at ``created``."""
    t = schema.stripe_subscriptions
    values = {"status": status, "event_created": created, "updated_at": tx.now}
    if subscription(tx.conn, subscription_id) is None:
        tx.conn.execute(
            insert(t).values(
                subscription_id=subscription_id, contact_id=contact_id, product=product, **values
            )
        )
    else:
        tx.conn.execute(update(t).where(t.c.subscription_id == subscription_id).values(**values))


# -- the event log -----------------------------------------------------------------------------


def log_event(tx: Tx, event_id: str, kind: str, created: int, outcome: str, message: str) -> None:
    """Record (or update) what became of a received event."""
    t = schema.stripe_events
    values = {"outcome": outcome, "message": message[:MAX_MESSAGE], "received_at": tx.now}
    known = tx.conn.execute(select(t.c.event_id).where(t.c.event_id == event_id)).first()
    if known is None:
        tx.conn.execute(insert(t).values(event_id=event_id, type=kind, created=created, **values))
    else:
        tx.conn.execute(update(t).where(t.c.event_id == event_id).values(**values))


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One line of the event log."""

    event_id: str
    type: str
    created: int
    outcome: str
    message: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Health:
    """The payment-health summary: the last event, and how many were not applied."""

    last: LoggedEvent | None
    counts: Mapping[str, int]
    unapplied: tuple[LoggedEvent, ...]


def health(conn: Connection, limit: int = 50) -> Health:
    """The last event received, the count of each outcome, and the events not (yet) applied:
    deferred (Stripe retries them) and failed ones, newest first."""
    t = schema.stripe_events
    last = conn.execute(select(t).order_by(t.c.received_at.desc(), t.c.event_id).limit(1)).first()
    rows = conn.execute(select(t.c.outcome, func.count()).group_by(t.c.outcome))
    counts = {str(outcome): int(n) for outcome, n in rows}
    pending = conn.execute(
        select(t)
        .where(t.c.outcome.in_(("deferred", "failed")))
        .order_by(t.c.received_at.desc())
        .limit(limit)
    )
    return Health(
        None if last is None else LoggedEvent(**last._mapping),
        counts,
        tuple(LoggedEvent(**row._mapping) for row in pending),
    )
