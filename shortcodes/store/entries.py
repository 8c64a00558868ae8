"""Store entries: one balance change, written with its ledger entry, its grant moves and its
debt, in the caller's transaction (the primitive every ledger operation is made of).

Every balance change appends a ledger entry *and* updates ``credit_accounts.balance`` in the same
transaction. A debit is one guarded statement (``... SET balance = balance - :n WHERE ... AND
balance >= :n``): two parallel purchases can never overdraw, whatever the interleaving. A balance
is below zero only by a recorded **debt** (``credit_accounts.debt``, what a refund clawback took
below zero under ``clawback = "below_zero"``), backed by ``CHECK (balance + debt >= 0)``; a
contact in debt cannot spend, and the next credit of the field settles the debt first (a
``settle`` grant move, the entry's ``debt_delta``). On PostgreSQL each change is one statement
(data-modifying CTEs); SQLite, in-process, runs one statement per write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from shortcodes.errors import InsufficientCredits, InvalidInput
from shortcodes.store import grants, schema
from shortcodes.store.events import event_row, record_event
from shortcodes.store.fastpath import Prepared
from shortcodes.store.grants import GrantSpec
from shortcodes.store.session import Actor, Tx

#: What a credit without a grant of its own creates: an ``admin`` grant under the field's policy.
DEFAULT_GRANT = GrantSpec()


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
