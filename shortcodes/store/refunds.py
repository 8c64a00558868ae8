"""Store refunds by grant: a refund of a purchase takes back the credits *that purchase* added.

See :func:`refund_grant`; the field's ``clawback`` policy decides what happens to the part of
the purchase's credits that was already spent (docs/credits.md, "Refunds by grant").
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from shortcodes.errors import RefundError
from shortcodes.store import grants, schema
from shortcodes.store.contacts import lock_contact
from shortcodes.store.ledger import (
    LedgerResult,
    apply_delta,
    balance,
    check_amount,
    check_credit_field,
    keyed,
)
from shortcodes.store.session import Actor, Tx


@dataclass(frozen=True, slots=True)
class GrantRefund:
    """What a refund by grant took back (units): from the purchase's own grants, from the
    contact's other grants (``balance`` clawback), and what stays spent."""

    wanted: int
    from_grants: int
    from_balance: int
    policy: str
    entry_id: int | None
    balance: int

    @property
    def taken(self) -> int:
        """Everything taken back."""
        return self.from_grants + self.from_balance

    @property
    def kept(self) -> int:
        """What was already spent and stays spent."""
        return self.wanted - self.taken


def refund_grant(
    tx: Tx,
    operation_key: str,
    contact: int,
    field: str,
    amount: int,
    key: str,
    reason: str,
    actor: Actor,
) -> GrantRefund:
    """Take back ``amount`` units of the credits the operation ``operation_key`` added (e.g.
    ``stripe:cs_…``), once per ``key``: first what is left of the grants it created (so a
    refund takes back *that purchase's* credits), then, for what was spent already, what the
    field's ``clawback`` policy says: ``grant`` leaves it spent, ``balance`` takes it from the
    contact's other grants as far as they go. Never below zero. One ledger entry (none when
    nothing could be taken). A purchase credited before grants existed (migration 0007) has
    no grant of its own: its refund takes from the contact's grants in consumption order."""
    amount = check_amount(amount)
    field = check_credit_field(tx.credit_fields, field)
    contact_id = lock_contact(tx, contact)
    o, g = schema.operations, schema.credit_grants
    op_id = tx.conn.execute(select(o.c.id).where(o.c.key == operation_key)).scalar()
    if op_id is None:
        raise RefundError(f"no ledger operation {operation_key!r}")
    made = tx.conn.execute(
        select(g.c.id).where(
            (g.c.operation_id == op_id) & (g.c.contact_id == contact_id) & (g.c.field == field)
        )
    ).scalars()
    grant_ids = [int(i) for i in made]
    params = {"operation": operation_key, "amount": amount, "reason": reason}
    found: list[GrantRefund] = []

    def perform(op: int) -> LedgerResult:
        found.append(
            _refund_grants(tx, contact_id, field, grant_ids, amount, (key, reason, actor, op))
        )
        done = found[0]
        ids = () if done.entry_id is None else (done.entry_id,)
        return LedgerResult(ids, {field: done.balance})

    result = keyed(tx, key, "refund_grant", contact_id, params, actor, perform)
    if found:
        return found[0]
    # A replay: the first run's entry says what was taken.
    taken = 0
    if result.entry_ids:
        e = schema.ledger_entries
        delta = tx.conn.execute(select(e.c.delta).where(e.c.id == result.entry_ids[0])).scalar()
        taken = -int(delta or 0)
    policy = tx.policy(field).clawback
    after = int(result.balances.get(field, balance(tx.conn, contact_id, field)))
    ids = result.entry_ids[0] if result.entry_ids else None
    return GrantRefund(amount, taken, 0, policy, ids, after)


def _refund_grants(
    tx: Tx,
    contact_id: int,
    field: str,
    grant_ids: list[int],
    amount: int,
    entry: tuple[str, str, Actor, int],
) -> GrantRefund:
    key, reason, actor, op_id = entry
    rows = grants.load(tx.conn, grant_ids)
    # Without a grant of its own (credited before grants existed) it is the balance's to cover.
    policy = tx.policy(field).clawback if rows else "balance"
    plan: list[tuple[int, int]] = []
    left = amount
    for row in rows:
        take = min(left, int(row.remaining)) if row.status == "active" else 0
        if take:
            plan.append((int(row.id), take))
            left -= take
    from_grants = amount - left
    from_balance = 0
    if left and policy == "balance":
        from_balance = min(left, grants.usable(tx.conn, contact_id, field, tx.now) - from_grants)
    total = from_grants + from_balance
    if not total:
        return GrantRefund(amount, 0, 0, policy, None, balance(tx.conn, contact_id, field))

    def moves(entry_id: int) -> None:
        for grant_id, take in plan:
            grants.take_from(tx, grant_id, take, entry_id, "refund")
        if from_balance:
            grants.consume(tx, contact_id, field, from_balance, entry_id)

    entry_id, after = apply_delta(
        tx, contact_id, field, -total, f"op:{key}#1",
        reason=reason, actor=actor, operation_id=op_id, moves=moves,
    )  # fmt: skip
    return GrantRefund(amount, from_grants, from_balance, policy, entry_id, after)
