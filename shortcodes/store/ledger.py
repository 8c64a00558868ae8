"""Store ledger: credit, debit, transfer and refund as append-only entries plus a cached balance.

Every balance change appends a ledger entry *and* updates ``credit_accounts.balance`` in the same
transaction. A debit is one guarded statement (``... SET balance = balance - :n WHERE ... AND
balance >= :n``): two parallel purchases can never overdraw, whatever the interleaving. A balance
is below zero only by a recorded **debt** (``credit_accounts.debt``, what a refund clawback took
below zero under ``clawback = "below_zero"``), backed by ``CHECK (balance + debt >= 0)``; a
contact in debt cannot spend, and the next credit of the field settles the debt first (a
``settle`` grant move, the entry's ``debt_delta``). ``verify`` replays the entries and reports
every disagreement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, NoReturn

from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shortcodes.errors import InsufficientCredits, InvalidInput, RefundError, UnknownField
from shortcodes.membership import vocabulary as vocab
from shortcodes.store import grants, schema
from shortcodes.store.contacts import lock_contact
from shortcodes.store.events import event_row, record_event
from shortcodes.store.fastpath import Prepared
from shortcodes.store.grants import GrantSpec
from shortcodes.store.idempotency import once
from shortcodes.store.session import Actor, Tx, from_db_time

#: No single change may move more than this; it keeps sums far from 64-bit overflow.
MAX_AMOUNT = vocab.MAX_AMOUNT
MAX_PAGE = 500
DEFAULT_GRANT = GrantSpec()
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


def apply_delta(
    tx: Tx,
    contact_id: int,
    field: str,
    delta: int,
    entry_key: str,
    *,
    reason: str,
    actor: Actor,
    operation_id: int | None = None,
    run_id: int | None = None,
    reverses_id: int | None = None,
    events: list[dict[str, Any]] | None = None,
    grant: GrantSpec | None = None,
    moves: Callable[[int], None] | None = None,
    debt: int = 0,
) -> tuple[int, int]:
    """Move one balance by ``delta`` and append its entry; returns (entry id, balance after).

    The caller holds the contact's lock and has validated ``field`` and the amount. The
    ``balance_changed`` event is inserted now, or appended to ``events`` for the caller to
    insert with the rest of its events before the transaction ends (one statement for all).

    The grants move with the balance: ``moves(entry_id)`` when the caller says which grants
    the entry changes (expiry, refunds), else a credit creates a grant (``grant``, or an
    ``admin`` grant under the field's policy) and a debit consumes grants in consumption order
    (:mod:`.grants`), refusing with :class:`InsufficientCredits` when the unexpired grants hold
    less than the amount.

    ``debt`` (with ``moves``, on a negative entry only) is the part of ``-delta`` no grant
    gives: it takes the balance below zero as the account's debt (a refund clawback). A
    positive entry while the account owes first settles the debt from what it added.
    """
    if debt and not (moves is not None and 0 < debt <= -delta):
        raise InvalidInput("only a clawback entry with its own grant moves can add a debt")
    entry = {
        "contact_id": contact_id,
        "field": field,
        "delta": delta,
        "reason": reason[:500],
        "actor_kind": actor.kind,
        "actor_id": actor.id,
        "idempotency_key": entry_key,
        "operation_id": operation_id,
        "run_id": run_id,
        "reverses_id": reverses_id,
        "created_at": tx.now,
        "debt_delta": debt,
    }
    entry_id, balance, settled = _write(tx, entry, debit=moves is None)
    if moves is not None:
        moves(int(entry_id))
    elif delta > 0:
        spec = grant or DEFAULT_GRANT
        values = grants.row_values(
            tx, contact_id, field, delta, spec, reason, operation_id=operation_id, run_id=run_id
        )
        if values["status"] == "pending":
            raise InvalidInput(
                "a grant that starts later is added by grants.add, not a ledger entry"
            )
        grants.create(tx, values, int(entry_id))
    elif tx.is_postgres:
        pass  # the debit statement consumed the grants
    elif (taken := grants.consume(tx, contact_id, field, -delta, int(entry_id))) != -delta:
        raise InsufficientCredits(field, -delta, taken)  # all it could take: what is usable
    if settled:
        _settle(tx, contact_id, field, settled, entry_id)
    data = {
        "field": field,
        "delta": delta,
        "balance": balance,
        "entry_id": entry_id,
        "reason": reason,
    }
    if events is None:
        record_event(tx, "balance_changed", contact_id, data, run_id=run_id)
    else:
        events.append(event_row(tx, "balance_changed", contact_id, data, run_id))
    return int(entry_id), balance


def _write(tx: Tx, entry: dict[str, Any], *, debit: bool) -> tuple[int, int, int]:
    """The balance (and debt) change and its entry: (entry id, balance after, debt to settle).

    A positive entry records as its ``debt_delta`` the part of it that settles the account's
    debt (what the account owed, at most the entry), which the caller then takes from the
    grants the entry added (:func:`_settle`)."""
    if tx.is_postgres and debit and entry["delta"] < 0:
        # The purchase path: balance, entry and grant consumption in one round trip.
        return (*_debit_with_entry(tx, entry), 0)
    if tx.is_postgres:
        return _move_with_entry(tx, entry)
    balance, debt_delta = _move(tx, entry, debit=debit)
    row = entry | {"balance_after": balance, "debt_delta": debt_delta}
    return int(_INSERT_ENTRY.scalar(tx.conn, row)), balance, max(-debt_delta, 0)


# Statements built once (see events.py for why); the upsert differs per dialect only in its class.
_INSERT_ENTRY = Prepared(insert(schema.ledger_entries).returning(schema.ledger_entries.c.id))
_acc = schema.credit_accounts
_ACCOUNT = (_acc.c.contact_id == bindparam("b_contact")) & (_acc.c.field == bindparam("b_field"))
# The guard is in the statement itself: no read-then-write window for a parallel purchase. A
# debit needs the *balance* to cover it, so a contact in debt cannot spend.
_LOWER = Prepared(
    update(_acc)
    .where(_ACCOUNT & (_acc.c.balance >= bindparam("b_amount")))
    .values(balance=_acc.c.balance - bindparam("b_amount"), updated_at=bindparam("b_now"))
    .returning(_acc.c.balance)
)
# An entry that names its grant moves (expiry, refunds, rollover) needs the grants to hold what
# it takes from them (balance + debt is what they hold), and may add ``b_debt`` of debt.
_TAKE = Prepared(
    update(_acc)
    .where(_ACCOUNT & (_acc.c.balance + _acc.c.debt >= bindparam("b_amount") - bindparam("b_debt")))
    .values(
        balance=_acc.c.balance - bindparam("b_amount"),
        debt=_acc.c.debt + bindparam("b_debt"),
        updated_at=bindparam("b_now"),
    )
    .returning(_acc.c.balance)
)
_BALANCE = Prepared(select(_acc.c.balance).where(_ACCOUNT))
_SETTLE = Prepared(update(_acc).where(_ACCOUNT).values(debt=_acc.c.debt - bindparam("b_settled")))


def _settle(tx: Tx, contact_id: int, field: str, units: int, entry_id: int) -> None:
    """Pay ``units`` of the account's debt from the grants the positive entry ``entry_id`` just
    added (in the order it added them), as ``settle`` moves of that entry."""
    left = units
    for grant_id, added in grants.moves_of(tx.conn, entry_id):
        take = min(left, added)
        if take > 0:
            grants.take_from(tx, grant_id, take, entry_id, "settle")
            left -= take
    _SETTLE.execute(tx.conn, {"b_contact": contact_id, "b_field": field, "b_settled": units})


def _upsert(insert_class: Any) -> Prepared:
    stmt = insert_class(_acc).values(
        contact_id=bindparam("b_contact"),
        field=bindparam("b_field"),
        balance=bindparam("b_amount"),
        updated_at=bindparam("b_now"),
    )
    # The debt returned is the one before the credit (the upsert leaves it): what it settles.
    return Prepared(
        stmt.on_conflict_do_update(
            index_elements=[_acc.c.contact_id, _acc.c.field],
            set_={
                "balance": _acc.c.balance + stmt.excluded.balance,
                "updated_at": stmt.excluded.updated_at,
            },
        ).returning(_acc.c.balance, _acc.c.debt)
    )


_RAISE = _upsert(sqlite.insert)


def _with_entry(change: Prepared, *, settles: bool = False) -> Prepared:
    """PostgreSQL: ``change`` (a balance statement returning ``balance``) and the entry recording
    it as one statement, a data-modifying CTE: one round trip instead of two on every purchase.
    A refused debit changes no row, so the insert selects nothing and the statement returns none.
    A credit (``settles``; its statement also returns the debt it found) records the part of it
    that settles the debt as the entry's ``debt_delta``.
    """
    moved = change.statement.cte("moved")  # type: ignore[attr-defined]
    columns = [c for c in _entries.c if c.name != "id"]
    computed = {"balance_after": moved.c.balance}
    if settles:
        computed["debt_delta"] = -func.least(moved.c.debt, bindparam("b_amount"))
    values = [
        # Prefixed: a bind named like an account column would make the UPDATE set that column.
        computed.get(c.name, bindparam(f"e_{c.name}", type_=c.type))
        for c in columns
    ]
    return Prepared(
        insert(_entries)
        .from_select([c.name for c in columns], select(*values).select_from(moved))
        .returning(_entries.c.id, _entries.c.balance_after, _entries.c.debt_delta)
    )


_entries = schema.ledger_entries
_RAISE_WITH_ENTRY = _with_entry(_upsert(postgresql.insert), settles=True)
_TAKE_WITH_ENTRY = _with_entry(_TAKE)


def _debit_statement() -> Prepared:
    """PostgreSQL: a debit in one statement: lower the balance (guarded), insert its entry, and
    consume grants in consumption order (see :mod:`.grants`) recording a move per grant used,
    tied to the new entry. A refused debit changes no row and returns none; otherwise the row
    is (entry id, balance after, units consumed); fewer units than the debit means the
    unexpired grants held too little and the caller refuses (rolling everything back)."""
    columns = [c.name for c in _entries.c if c.name != "id"]
    values = ", ".join("moved.balance" if c == "balance_after" else f":e_{c}" for c in columns)
    return Prepared(
        text(f"""
WITH moved AS (
    UPDATE credit_accounts SET balance = balance - :b_amount, updated_at = :b_now
    WHERE contact_id = :b_contact AND field = :b_field AND balance >= :b_amount
    RETURNING balance
), entry AS (
    INSERT INTO ledger_entries ({", ".join(columns)})
    SELECT {values} FROM moved
    RETURNING id, balance_after
), ordered AS (
    {grants.ORDERED_SQL}
), take AS (
    SELECT id, LEAST(remaining, :b_amount - before) AS n FROM ordered WHERE before < :b_amount
), used AS (
    UPDATE credit_grants AS g SET remaining = g.remaining - take.n
    FROM take, entry WHERE g.id = take.id
    RETURNING g.id, take.n, entry.id AS entry_id
), recorded AS (
    INSERT INTO grant_moves (grant_id, entry_id, kind, delta, created_at)
    SELECT id, entry_id, 'use', -n, :b_now FROM used
)
SELECT entry.id, entry.balance_after, (SELECT COALESCE(SUM(n), 0) FROM used) FROM entry
""").bindparams(  # noqa: S608 - the column names are the schema's own
            bindparam("b_now", type_=_acc.c.updated_at.type),
            *(
                bindparam(f"e_{c.name}", type_=c.type)
                for c in _entries.c
                if c.name not in ("id", "balance_after")
            ),
        )
    )


_DEBIT = _debit_statement()


def _debit_with_entry(tx: Tx, entry: dict[str, Any]) -> tuple[int, int]:
    """PostgreSQL: :data:`_DEBIT`; (entry id, balance after), or a refusal."""
    contact_id, field, amount = entry["contact_id"], entry["field"], -entry["delta"]
    values = {"b_contact": contact_id, "b_field": field, "b_amount": amount, "b_now": tx.now}
    row = _DEBIT.first(tx.conn, {f"e_{k}": v for k, v in entry.items()} | values)
    if row is None:
        _refuse_overdraft(tx, contact_id, field, amount)
    if int(row[2]) != amount:  # the grants held less: all it could take is what is usable
        raise InsufficientCredits(field, amount, int(row[2]))
    return int(row[0]), int(row[1])


def _move(tx: Tx, entry: dict[str, Any], *, debit: bool) -> tuple[int, int]:
    """SQLite: change one balance by the entry's delta (refusing an overdraft); the balance
    after and the entry's ``debt_delta`` (a credit's: what it settles)."""
    contact_id, field, delta = entry["contact_id"], entry["field"], entry["delta"]
    values = {"b_contact": contact_id, "b_field": field, "b_amount": abs(delta), "b_now": tx.now}
    if delta > 0:
        raised = _RAISE.first(tx.conn, values)
        assert raised is not None  # an upsert always returns its row
        return int(raised[0]), -min(int(raised[1]), delta)
    if debit:
        balance = _LOWER.scalar(tx.conn, values)
    else:
        balance = _TAKE.scalar(tx.conn, values | {"b_debt": entry["debt_delta"]})
    if balance is None:
        _refuse_overdraft(tx, contact_id, field, -delta)
    return int(balance), int(entry["debt_delta"])


def _move_with_entry(tx: Tx, entry: dict[str, Any]) -> tuple[int, int, int]:
    """PostgreSQL: :func:`_move` (not a debit) and the entry's insert in one statement; (entry
    id, balance after, debt to settle)."""
    contact_id, field, delta = entry["contact_id"], entry["field"], entry["delta"]
    values = {"b_contact": contact_id, "b_field": field, "b_amount": abs(delta), "b_now": tx.now}
    statement = _RAISE_WITH_ENTRY if delta > 0 else _TAKE_WITH_ENTRY
    if delta < 0:
        values["b_debt"] = entry["debt_delta"]
    row = statement.first(tx.conn, {f"e_{k}": v for k, v in entry.items()} | values)
    if row is None:
        _refuse_overdraft(tx, contact_id, field, -delta)
    return int(row[0]), int(row[1]), max(-int(row[2]), 0)


def _refuse_overdraft(tx: Tx, contact_id: int, field: str, amount: int) -> NoReturn:
    have = _BALANCE.scalar(tx.conn, {"b_contact": contact_id, "b_field": field}) or 0
    raise InsufficientCredits(field, amount, int(have))


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
