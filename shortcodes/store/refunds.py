"""Store refunds by grant: a refund of a purchase takes back the credits *that purchase* added.

See :func:`refund_grant`; the field's ``clawback`` policy decides what happens to the part of
the purchase's credits that was already spent (docs/credits.md, "Refunds by grant").
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from shortcodes.errors import RefundError
from shortcodes.store import grants, schema
from shortcodes.store.contacts import lock_contact
from shortcodes.store.entries import apply_delta
from shortcodes.store.ledger import (
    LedgerResult,
    balance,
    check_amount,
    check_credit_field,
    keyed,
)
from shortcodes.store.session import Actor, Tx


@dataclass(frozen=True, slots=True)
class GrantRefund:
    """What a refund by grant took back (units): from the purchase's own grants, from the
    contact's other grants (``balance`` and ``below_zero`` clawback), below zero as a debt
    (``below_zero``), and what stays spent."""

    wanted: int
    from_grants: int
    from_balance: int
    policy: str
    entry_id: int | None
    balance: int
    below_zero: int = 0

    @property
    def taken(self) -> int:
        """Everything taken back (a debt included)."""
        return self.from_grants + self.from_balance + self.below_zero

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
    contact's other grants as far as they go, ``below_zero`` also takes the rest below zero as
    the account's debt. One ledger entry (none when nothing could be taken). A purchase
    credited before grants existed (migration 0007) has no grant of its own: its refund takes
    from the contact's grants in consumption order (and below zero under ``below_zero``)."""
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
    after = int(result.balances.get(field, balance(tx.conn, contact_id, field)))
    entry_id = result.entry_ids[0] if result.entry_ids else None
    return _replayed(tx, field, amount, entry_id, after, _policy(tx, field, grant_ids))


def _policy(tx: Tx, field: str, grant_ids: list[int]) -> str:
    """The clawback that applies: the field's, except that a purchase without a grant of its
    own (credited before grants existed) is the balance's to cover."""
    configured = tx.policy(field).clawback
    return configured if grant_ids or configured == "below_zero" else "balance"


def _replayed(
    tx: Tx, field: str, amount: int, entry_id: int | None, after: int, policy: str
) -> GrantRefund:
    """A replay's answer, read from the first run's entry: its ``refund`` moves came from the
    purchase's grants, its ``use`` moves from the other grants, its ``debt_delta`` below zero."""
    if entry_id is None:
        return GrantRefund(amount, 0, 0, policy, None, after)
    e, m = schema.ledger_entries, schema.grant_moves
    debt = tx.conn.execute(select(e.c.debt_delta).where(e.c.id == entry_id)).scalar_one()
    by_kind = dict(
        tx.conn.execute(
            select(m.c.kind, func.sum(m.c.delta)).where(m.c.entry_id == entry_id).group_by(m.c.kind)
        ).all()
    )
    from_grants, from_balance = -int(by_kind.get("refund", 0)), -int(by_kind.get("use", 0))
    return GrantRefund(amount, from_grants, from_balance, policy, entry_id, after, int(debt))


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
    policy = _policy(tx, field, grant_ids)
    plan: list[tuple[int, int]] = []
    left = amount
    for row in rows:
        take = min(left, int(row.remaining)) if row.status == "active" else 0
        if take:
            plan.append((int(row.id), take))
            left -= take
    from_grants = amount - left
    from_balance = below_zero = 0
    if left and policy in ("balance", "below_zero"):
        # What the other unexpired grants hold (the purchase's own were just counted).
        others = grants.usable(tx.conn, contact_id, field, tx.now, exclude=grant_ids)
        from_balance = min(left, others)
    if policy == "below_zero":
        below_zero = left - from_balance
    total = from_grants + from_balance + below_zero
    if not total:
        return GrantRefund(amount, 0, 0, policy, None, balance(tx.conn, contact_id, field))

    def moves(entry_id: int) -> None:
        for grant_id, take in plan:
            grants.take_from(tx, grant_id, take, entry_id, "refund")
        if from_balance:
            grants.consume(tx, contact_id, field, from_balance, entry_id)

    entry_id, after = apply_delta(
        tx, contact_id, field, -total, f"op:{key}#1",
        reason=reason, actor=actor, operation_id=op_id, moves=moves, debt=below_zero,
    )  # fmt: skip
    return GrantRefund(amount, from_grants, from_balance, policy, entry_id, after, below_zero)
