"""Store ledger: credit, debit, transfer and refund as operations run once per key, each made of
balance changes (:func:`.entries.apply_delta`: the entry, the cached balance, the grants and the
debt move together), and the reads of balances and history. :mod:`.verify` replays the entries
and reports every disagreement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from shortcodes.errors import InsufficientCredits, InvalidInput, RefundError, UnknownField
from shortcodes.membership import vocabulary as vocab
from shortcodes.store import grants, schema
from shortcodes.store.contacts import lock_contact
from shortcodes.store.entries import DEFAULT_GRANT, apply_delta
from shortcodes.store.grants import GrantSpec
from shortcodes.store.idempotency import once
from shortcodes.store.session import Actor, Tx, from_db_time

#: No single change may move more than this; it keeps sums far from 64-bit overflow.
MAX_AMOUNT = vocab.MAX_AMOUNT
MAX_PAGE = 500
TRANSFER_GRANT = GrantSpec("transfer")


@dataclass(frozen=True, slots=True)
class LedgerResult:
    """What a ledger operation did: its entries, the balances after it, and whether it replayed."""

    entry_ids: tuple[int, ...]
    balances: Mapping[str, int]
    replayed: bool = False

    def to_json(self) -> dict[str, Any]:
        """The form stored with the idempotency key."""
        return {"entry_ids": list(self.entry_ids), "balances": dict(self.balances)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], replayed: bool) -> LedgerResult:
        """Rebuild a stored result (replays answer with the first run's figures)."""
        return cls(tuple(data["entry_ids"]), dict(data["balances"]), replayed)


@dataclass(frozen=True, slots=True)
class Entry:
    """One ledger entry as history shows it."""

    id: int
    contact_id: int
    field: str
    delta: int
    balance_after: int
    reason: str
    actor_kind: str
    actor_id: str
    created_at: datetime
    reverses_id: int | None = None
    debt_delta: int = 0  # how the entry changed the account's debt (see ``apply_delta``)


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """A page of entries, newest first; pass ``next_cursor`` as ``after`` for the next page."""

    entries: list[Entry]
    next_cursor: str | None


def check_amount(amount: Any, *, allow_zero: bool = False) -> int:
    """A credit amount: a whole number, positive (or zero when allowed), at most 10**12."""
    try:
        return vocab.amount(amount, allow_zero=allow_zero)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def check_credit_field(credit_fields: Iterable[str], name: Any) -> str:
    """The declared spelling of a credit field named case-insensitively; else UnknownField."""
    try:
        return vocab.credit_field(name, tuple(sorted(credit_fields)))
    except ValueError as exc:
        raise UnknownField(str(exc)) from None


def keyed(
    tx: Tx,
    key: str,
    kind: str,
    contact_id: int | None,
    params: Mapping[str, Any],
    actor: Actor,
    perform: Callable[[int], LedgerResult],
) -> LedgerResult:
    """Run ``perform(operation_id)`` once per key; replays answer with the stored result."""
    done: list[LedgerResult] = []

    def run(op_id: int) -> dict[str, Any]:
        done.append(perform(op_id))
        return done[0].to_json()

    stored, replayed = once(tx, key, kind, contact_id, params, actor, run)
    return LedgerResult.from_json(stored, replayed=True) if replayed else done[0]


def credit(
    tx: Tx,
    contact: int | str,
    field: str,
    amount: Any,
    key: str,
    reason: str,
    actor: Actor,
    grant: GrantSpec | None = None,
) -> LedgerResult:
    """Add ``amount`` credits to ``field`` as one grant (once per ``key``).

    ``amount`` is in credits as people write them (``2.5`` on a field with two decimals); a
    grant that starts later writes no entry until the worker starts it. A ``subscription``
    grant first expires the contact's older subscription credit above the field's rollover cap.
    """
    field = check_credit_field(tx.credit_fields, field)
    units = to_units(tx, field, amount)
    spec = grant or DEFAULT_GRANT
    contact_id = lock_contact(tx, contact)
    params = move_params(contact_id, field, units, reason, spec)

    def perform(op_id: int) -> LedgerResult:
        kw: dict[str, Any] = {"reason": reason, "actor": actor, "operation_id": op_id}
        if spec.source == "subscription":
            cap_rollover(tx, contact_id, field, f"op:{key}#cap", **kw)
        values = grants.row_values(tx, contact_id, field, units, spec, reason, operation_id=op_id)
        if values["status"] == "pending":
            grants.create(tx, values, None)
            return LedgerResult((), {field: balance(tx.conn, contact_id, field)})

        def made(entry_id: int) -> None:
            grants.create(tx, values, entry_id)

        entry_id, after = apply_delta(tx, contact_id, field, units, f"op:{key}#1", moves=made, **kw)
        return LedgerResult((entry_id,), {field: after})

    return keyed(tx, key, "credit", contact_id, params, actor, perform)


def move_params(
    contact_id: int, field: str, delta: int, reason: str, grant: GrantSpec | None = None
) -> dict[str, Any]:
    """What a credit's or debit's operation is fingerprinted by (a replay must match it); a
    credit names the grant it forms."""
    params: dict[str, Any] = {"contact": contact_id, "field": field, "delta": delta}
    params["reason"] = reason
    if grant is not None:
        params["grant"] = [
            grant.source, grant.category, str(grant.starts_at), str(grant.expires_at)
        ]  # fmt: skip
    return params


def to_units(tx: Tx, field: str, amount: Any) -> int:
    """An amount of ``field`` in credits as whole units under its policy (InvalidInput if not)."""
    policy = tx.policy(field)
    if not policy.decimals and not isinstance(amount, Decimal):
        return check_amount(amount)  # whole-number fields keep taking ints only (or Decimals)
    try:
        return policy.units(amount)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def cap_rollover(tx: Tx, contact_id: int, field: str, entry_key: str, **kw: Any) -> int:
    """Expire the contact's subscription credit of ``field`` above the policy's rollover cap
    (the grants expiring soonest go first) as one ledger entry; the units expired."""
    cap = tx.policy(field).rollover_cap
    if cap is None:
        return 0
    held = grants.held(tx.conn, contact_id, field, "subscription", tx.now)
    excess = sum(n for _, n in held) - cap
    if excess <= 0:
        return 0

    def moves(entry_id: int) -> None:
        left = excess
        for grant_id, remaining in held:
            take = min(left, remaining)
            if take:
                grants.take_from(tx, grant_id, take, entry_id, "expire")
                left -= take

    kw = kw | {"reason": f"rollover cap {tx.policy(field).show(cap)}: unused credit expired"}
    apply_delta(tx, contact_id, field, -excess, entry_key, moves=moves, **kw)
    return excess


def debit(
    tx: Tx, contact: int | str, field: str, amount: Any, key: str, reason: str, actor: Actor
) -> LedgerResult:
    """Take ``amount`` credits from ``field`` (once per ``key``); refuses to go below zero."""
    field = check_credit_field(tx.credit_fields, field)
    return _one_sided(tx, "debit", contact, field, -to_units(tx, field, amount), key, reason, actor)


def _one_sided(
    tx: Tx,
    kind: str,
    contact: int | str,
    field: str,
    delta: int,
    key: str,
    reason: str,
    actor: Actor,
) -> LedgerResult:
    contact_id = lock_contact(tx, contact)
    params = move_params(contact_id, field, delta, reason)

    def perform(op_id: int) -> LedgerResult:
        entry_id, balance = apply_delta(
            tx,
            contact_id,
            field,
            delta,
            f"op:{key}#1",
            reason=reason,
            actor=actor,
            operation_id=op_id,
        )
        return LedgerResult((entry_id,), {field: balance})

    return keyed(tx, key, kind, contact_id, params, actor, perform)


def transfer(
    tx: Tx,
    contact: int | str,
    from_field: str,
    to_field: str,
    amount: Any,
    key: str,
    reason: str,
    actor: Actor,
) -> LedgerResult:
    """Move ``amount`` from one credit field of a contact to another, as two entries."""
    source = check_credit_field(tx.credit_fields, from_field)
    target = check_credit_field(tx.credit_fields, to_field)
    if source == target:
        raise InvalidInput(f"a transfer needs two different fields, got {source!r} twice")
    if tx.policy(source).decimals != tx.policy(target).decimals:
        raise InvalidInput(f"{source} and {target} have different decimals; no transfer between")
    amount = to_units(tx, source, amount)
    contact_id = lock_contact(tx, contact)
    params = {
        "contact": contact_id,
        "from": source,
        "to": target,
        "amount": amount,
        "reason": reason,
    }

    def perform(op_id: int) -> LedgerResult:
        kw: dict[str, Any] = {"reason": reason, "actor": actor, "operation_id": op_id}
        out_id, out_balance = apply_delta(tx, contact_id, source, -amount, f"op:{key}#1", **kw)
        in_id, in_balance = apply_delta(
            tx, contact_id, target, amount, f"op:{key}#2", grant=TRANSFER_GRANT, **kw
        )
        return LedgerResult((out_id, in_id), {source: out_balance, target: in_balance})

    return keyed(tx, key, "transfer", contact_id, params, actor, perform)


def refund(tx: Tx, entry_ids: Sequence[int], key: str, reason: str, actor: Actor) -> LedgerResult:
    """Reverse exactly the named entries (each at most once), as new entries that point at them."""
    ids = _check_entry_ids(entry_ids)
    originals = _load_entries(tx.conn, ids)
    for contact_id in sorted({e.contact_id for e in originals}):
        lock_contact(
            tx, contact_id
        )  # sorted order: two refunds never wait on each other in a cycle
    params = {"entries": ids, "reason": reason}

    def perform(op_id: int) -> LedgerResult:
        _check_reversible(tx.conn, originals)
        new_ids, balances = [], {}
        for n, orig in enumerate(originals, start=1):
            kw: dict[str, Any] = {"reason": reason, "actor": actor, "operation_id": op_id}
            entry_id, balance = apply_delta(
                tx,
                orig.contact_id,
                orig.field,
                -orig.delta,
                f"op:{key}#{n}",
                reverses_id=orig.id,
                moves=_reversal(tx, orig, op_id),
                # A credit that settled a debt is reversed by owing that part again.
                debt=max(-orig.debt_delta, 0),
                **kw,
            )
            new_ids.append(entry_id)
            balances[f"{orig.contact_id}:{orig.field}"] = balance
        return LedgerResult(tuple(new_ids), balances)

    contact = originals[0].contact_id if len({e.contact_id for e in originals}) == 1 else None
    return keyed(tx, key, "refund", contact, params, actor, perform)


def _reversal(tx: Tx, orig: Entry, op_id: int) -> Callable[[int], None]:
    """The grant moves of an entry reversing ``orig``: a reversed credit takes back what is
    left of the grants it created, the rest (already spent) from the contact's other grants in
    consumption order (refused when the balance cannot cover it, as always), and the part of it
    that settled a debt is owed again (the caller's ``debt``); a reversed debit
    gives each grant back what it took, or, when that grant has expired since, returns it as a
    new ``refund`` grant."""

    def moves(entry_id: int) -> None:
        if orig.delta > 0:
            _take_back(tx, orig, entry_id)
        else:
            _restore(tx, orig, entry_id, op_id)

    return moves


def _take_back(tx: Tx, orig: Entry, entry_id: int) -> None:
    left = orig.delta + orig.debt_delta  # what the credit's grants got (the rest paid a debt)
    created = [g for g, d in grants.moves_of(tx.conn, orig.id) if d > 0]
    for row in grants.load(tx.conn, created):
        take = min(left, int(row.remaining)) if row.status == "active" else 0
        if take:
            grants.take_from(tx, row.id, take, entry_id, "refund")
            left -= take
    if left and grants.consume(tx, orig.contact_id, orig.field, left, entry_id) != left:
        have = grants.usable(tx.conn, orig.contact_id, orig.field, tx.now)
        raise InsufficientCredits(orig.field, orig.delta, have)


def _restore(tx: Tx, orig: Entry, entry_id: int, op_id: int) -> None:
    used = {g: -d for g, d in grants.moves_of(tx.conn, orig.id) if d < 0}
    for row in grants.load(tx.conn, sorted(used)):
        alive = row.status == "active" and (row.expires_at is None or row.expires_at > tx.now)
        if alive:
            grants.give_back(tx, row.id, used[row.id], entry_id)
            continue
        spec = GrantSpec("refund", row.category)
        reason = f"refund of entry {orig.id} (grant {row.id} had expired)"
        values = grants.row_values(
            tx, orig.contact_id, orig.field, used[row.id], spec, reason, operation_id=op_id
        )
        grants.create(tx, values, entry_id)


def _check_entry_ids(entry_ids: Sequence[int]) -> list[int]:
    if not entry_ids:
        raise InvalidInput("a refund must name at least one entry")
    if any(isinstance(i, bool) or not isinstance(i, int) or i <= 0 for i in entry_ids):
        raise InvalidInput(f"entry ids must be positive whole numbers, got {list(entry_ids)!r}")
    if len(set(entry_ids)) != len(entry_ids):
        raise InvalidInput(f"a refund names each entry once, got {list(entry_ids)!r}")
    return sorted(entry_ids)


def _load_entries(conn: Connection, ids: list[int]) -> list[Entry]:
    t = schema.ledger_entries
    rows = conn.execute(select(t).where(t.c.id.in_(ids)).order_by(t.c.id)).all()
    missing = sorted(set(ids) - {r.id for r in rows})
    if missing:
        raise RefundError(f"no ledger entries {missing}")
    return [_entry(r) for r in rows]


def _check_reversible(conn: Connection, originals: list[Entry]) -> None:
    t = schema.ledger_entries
    reversals = [e.id for e in originals if e.reverses_id is not None]
    if reversals:
        raise RefundError(f"entries {reversals} are themselves refunds and cannot be reversed")
    owing = [e.id for e in originals if e.debt_delta > 0]
    if owing:
        # Its debt may have been settled since by other credits: no exact reverse exists.
        raise RefundError(
            f"entries {owing} took a balance below zero and cannot be reversed; credit the "
            "contact instead (the credit settles the debt first)"
        )
    ids = [e.id for e in originals]
    done = conn.execute(select(t.c.reverses_id).where(t.c.reverses_id.in_(ids))).scalars().all()
    if done:
        raise RefundError(f"entries {sorted(done)} were already refunded")


def _entry(row: Any) -> Entry:
    return Entry(
        id=row.id,
        contact_id=row.contact_id,
        field=row.field,
        delta=int(row.delta),
        balance_after=int(row.balance_after),
        reason=row.reason,
        actor_kind=row.actor_kind,
        actor_id=row.actor_id,
        created_at=from_db_time(row.created_at),
        reverses_id=row.reverses_id,
        debt_delta=int(row.debt_delta),
    )


def balance(conn: Connection, contact_id: int, field: str) -> int:
    """The cached balance (0 when the contact never had an entry in ``field``)."""
    t = schema.credit_accounts
    where = (t.c.contact_id == contact_id) & (t.c.field == field)
    return int(conn.execute(select(t.c.balance).where(where)).scalar() or 0)


def balances(conn: Connection, contact_id: int, credit_fields: Iterable[str]) -> dict[str, int]:
    """The contact's balance in every credit field (0 where it has no account yet)."""
    a = schema.credit_accounts
    found = dict.fromkeys(credit_fields, 0)
    rows = conn.execute(select(a.c.field, a.c.balance).where(a.c.contact_id == contact_id))
    for field_name, value in rows:
        found[field_name] = int(value)
    return found


def debts(conn: Connection, contact_id: int) -> dict[str, int]:
    """What the contact owes per field (units; only fields in debt): what refunds took below
    zero and no credit has settled yet."""
    a = schema.credit_accounts
    rows = conn.execute(
        select(a.c.field, a.c.debt).where((a.c.contact_id == contact_id) & (a.c.debt > 0))
    )
    return {name: int(owed) for name, owed in rows}


def history(
    conn: Connection, contact_id: int, field: str | None, limit: int, after: str | None
) -> HistoryPage:
    """Entries newest first, ``limit`` at a time, continuing below the ``after`` cursor.

    Keyset pagination on the entry id: a page costs the same whatever the ledger's size.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_PAGE}, got {limit!r}")
    t = schema.ledger_entries
    query = select(t).where(t.c.contact_id == contact_id)
    if field is not None:
        query = query.where(t.c.field == field)
    if after is not None:
        query = query.where(t.c.id < _cursor(after))
    rows = conn.execute(query.order_by(t.c.id.desc()).limit(limit + 1)).all()
    entries = [_entry(r) for r in rows[:limit]]
    more = len(rows) > limit
    return HistoryPage(entries, str(entries[-1].id) if more else None)


def _cursor(after: str) -> int:
    if not (isinstance(after, str) and after.isdigit() and after.isascii()):
        raise InvalidInput(f"not a history cursor: {after!r}")
    return int(after)
