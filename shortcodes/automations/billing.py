"""Automations billing run: record this period's ``payment_succeeded`` for every subscriber, once.

A monthly billing run stands in for the payment provider's recurring charges: every contact who
holds the subscription tag gets one ``payment_succeeded`` event for the product and the period,
which the rules then act on exactly like a payment webhook (typically: deposit the monthly credits
and send an email). Each (product, period, contact) is claimed in the store's idempotency table in
the same transaction as its event, so running the same period again, or after a crash half-way,
bills nobody twice. Contacts are walked by id in batches, one transaction per batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import select

from shortcodes.errors import InvalidInput
from shortcodes.store import Store, contacts
from shortcodes.store import schema as db
from shortcodes.store.events import event_row, record_events
from shortcodes.store.idempotency import claim_many
from shortcodes.store.session import Actor, Tx

BATCH = 1000
ACTOR = Actor("automation", "billing-run")


@dataclass
class BillingReport:
    """How many subscribers were found, newly billed, and already billed for the period."""

    subscribers: int = 0
    billed: int = 0
    already: int = 0


def subscribers(store: Store, tag: str, after: int, limit: int) -> list[int]:
    """Ids above ``after`` of contacts holding ``tag`` now, ascending."""
    found = store.get_tag(tag)
    now = store.clock().replace(tzinfo=None)
    ct = db.contact_tags
    query = (
        select(ct.c.contact_id)
        .where((ct.c.tag_id == found.id) & (ct.c.contact_id > after))
        .where(ct.c.expires_at.is_(None) | (ct.c.expires_at > now))
        .order_by(ct.c.contact_id)
        .limit(limit)
    )
    with store.engine.connect() as conn:
        return [int(i) for i in conn.execute(query).scalars()]


def bill_batch(tx: Tx, ids: Iterable[int], product: str, period: str) -> tuple[int, int]:
    """Record the period's payment event for each contact not billed yet; (billed, already).

    Set-based: the contacts are locked in id order, the (product, period, contact) keys claimed
    and the events inserted with one statement each, whatever the batch's size.
    """
    ids = sorted(ids)
    contacts.lock_contacts(tx, ids)
    claims = [
        (
            f"billing:{product}:{period}:{contact_id}",
            contact_id,
            {"product": product, "period": period, "contact": contact_id},
        )
        for contact_id in ids
    ]
    fresh = claim_many(tx, "billing", ACTOR, claims)
    billed = [contact_id for contact_id, new in zip(ids, fresh, strict=True) if new]
    record_events(
        tx,
        [
            event_row(
                tx,
                "payment_succeeded",
                contact_id,
                {
                    "product": product,
                    "payment_id": f"billing-{period}-{product}-{contact_id}",
                    "source": "billing-run",
                },
            )
            for contact_id in billed
        ],
    )
    return len(billed), len(ids) - len(billed)


def billing_run(
    store: Store,
    product: str,
    period: str,
    tag: str,
    *,
    batch: int = BATCH,
    progress: Callable[[int], Any] | None = None,
) -> BillingReport:
    """Bill every holder of ``tag`` for ``product`` in ``period`` (e.g. ``2026-01``)."""
    if not period.strip() or len(period) > 20 or not period.replace("-", "").isalnum():
        raise InvalidInput(f"a billing period is a short label like 2026-01, got {period!r}")
    report = BillingReport()
    after = 0
    while True:
        ids = subscribers(store, tag, after, batch)
        if not ids:
            return report
        billed, already = store.run_in_transaction(
            partial(bill_batch, ids=ids, product=product, period=period)
        )
        report.subscribers += len(ids)
        report.billed += billed
        report.already += already
        after = ids[-1]
        if progress is not None:
            progress(len(ids))
