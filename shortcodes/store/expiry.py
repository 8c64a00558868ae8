"""Store expiry: the worker's grant passes, which start pending grants and expire due ones.

Each grant started or expired is one ledger entry written in the worker's own transaction and
keyed by the grant (``grant:N:start`` / ``grant:N:expire``), so a pass killed midway rolls back
and the next pass does it exactly once. Nothing expires silently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update

from shortcodes.store import grants, schema
from shortcodes.store.contacts import lock_contact
from shortcodes.store.entries import apply_delta
from shortcodes.store.ledger import LedgerResult, keyed
from shortcodes.store.session import Actor, Tx

WORKER = Actor("system", "grant worker")
#: Called after a grant pass changed a contact's field (loyalty records its events here).
Changed = Callable[[Tx, int, str], None]


def expire_due(tx: Tx, limit: int = 200, changed: Changed | None = None) -> int:
    """Expire active grants whose ``expires_at`` has come: what is left of each leaves the
    balance as a ledger entry (operation ``grant:ID:expire``, so a pass killed midway and run
    again never expires a grant twice). Returns the number of grants expired."""
    g = schema.credit_grants
    due = (g.c.status == "active") & (g.c.expires_at <= tx.now)
    return _grant_pass(tx, due, g.c.expires_at, limit, _expire_one, changed)


def start_due(tx: Tx, limit: int = 200, changed: Changed | None = None) -> int:
    """Start pending grants whose ``starts_at`` has come: each enters the balance as a ledger
    entry (operation ``grant:ID:start``). Returns the number started."""
    g = schema.credit_grants
    due = (g.c.status == "pending") & (g.c.starts_at <= tx.now)
    return _grant_pass(tx, due, g.c.starts_at, limit, _start_one, changed)


def _grant_pass(
    tx: Tx,
    due: Any,
    when: Any,
    limit: int,
    one: Callable[[Tx, Any], bool],
    changed: Changed | None,
) -> int:
    g = schema.credit_grants
    # Read without row locks, then lock the contact and read the grant again: the contact lock
    # comes first, as on every other path, so the pass never deadlocks with a purchase.
    picked = tx.conn.execute(select(g.c.id).where(due).order_by(when, g.c.id).limit(limit))
    done = 0
    for (grant_id,) in picked.all():
        owner = tx.conn.execute(select(g.c.contact_id).where(g.c.id == grant_id)).scalar_one()
        lock_contact(tx, int(owner))
        row = tx.conn.execute(select(g).where(g.c.id == grant_id).where(due)).first()
        if row is None or not one(tx, row):
            continue
        done += 1
        if changed is not None:
            changed(tx, row.contact_id, row.field)
    return done


def _expire_one(tx: Tx, row: Any) -> bool:
    g = schema.credit_grants
    if row.remaining:
        expiry = row.expires_at.isoformat(sep=" ", timespec="seconds")

        def perform(op_id: int) -> LedgerResult:
            def moves(entry_id: int) -> None:
                grants.take_from(tx, row.id, int(row.remaining), entry_id, "expire")

            entry_id, after = apply_delta(
                tx, row.contact_id, row.field, -int(row.remaining), f"grant:{row.id}:expire#1",
                reason=f"expired: grant {row.id} ({row.reason}) expired {expiry}",
                actor=WORKER, operation_id=op_id, moves=moves,
            )  # fmt: skip
            return LedgerResult((entry_id,), {row.field: after})

        params = {"grant": row.id}
        keyed(tx, f"grant:{row.id}:expire", "expire", row.contact_id, params, WORKER, perform)
    tx.conn.execute(update(g).where(g.c.id == row.id).values(status="expired"))
    return True


def _start_one(tx: Tx, row: Any) -> bool:
    g = schema.credit_grants
    tx.conn.execute(update(g).where(g.c.id == row.id).values(status="active"))

    def perform(op_id: int) -> LedgerResult:
        # What is left of it: a pending loyalty award may have been lowered by a removal.
        def moves(entry_id: int) -> None:
            grants.record_move(tx, row.id, int(row.remaining), entry_id, "grant")

        entry_id, after = apply_delta(
            tx, row.contact_id, row.field, int(row.remaining), f"grant:{row.id}:start#1",
            reason=f"started: grant {row.id} ({row.reason})",
            actor=WORKER, operation_id=op_id, moves=moves,
        )  # fmt: skip
        return LedgerResult((entry_id,), {row.field: after})

    keyed(tx, f"grant:{row.id}:start", "start", row.contact_id, {"grant": row.id}, WORKER, perform)
    return True
