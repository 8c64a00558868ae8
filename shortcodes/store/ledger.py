"""Store ledger: credit, debit, transfer and refund as append-only entries plus a cached balance.

Every balance change appends a ledger entry *and* updates ``credit_accounts.balance`` in the same
transaction. A debit is one guarded statement (``... SET balance = balance - :n WHERE ... AND
balance >= :n``) backed by the table's ``CHECK (balance >= 0)``: two parallel purchases can never
overdraw, whatever the interleaving. ``verify`` replays the entries and reports every disagreement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shortcodes.errors import InsufficientCredits, InvalidInput, RefundError, UnknownField
from shortcodes.membership import vocabulary as vocab
from shortcodes.store import schema
from shortcodes.store.contacts import lock_contact
from shortcodes.store.events import current_cause, event_row, record_event, record_events
from shortcodes.store.fastpath import Prepared, among, insert_many, update_rows, upsert_rows
from shortcodes.store.idempotency import check_key, fingerprint, once
from shortcodes.store.session import Actor, Tx, from_db_time

#: No single change may move more than this; it keeps sums far from 64-bit overflow.
MAX_AMOUNT = vocab.MAX_AMOUNT
MAX_PAGE = 500


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


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """A page of entries, newest first; pass ``next_cursor`` as ``after`` for the next page."""

    entries: list[Entry]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """One thing ``verify`` found wrong, with a sentence that says what."""

    contact_id: int
    field: str
    message: str
    entry_id: int | None = None


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of replaying the ledger: what was checked and every disagreement."""

    accounts: int
    entries: int
    problems: list[Discrepancy] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every balance and every entry agrees with the replay."""
        return not self.problems


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
) -> tuple[int, int]:
    """Move one balance by ``delta`` and append its entry; returns (entry id, balance after).

    The caller holds the contact's lock and has validated ``field`` and the amount. The
    ``balance_changed`` event is inserted now, or appended to ``events`` for the caller to
    insert with the rest of its events before the transaction ends (one statement for all).
    """
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
    }
    if tx.is_postgres:
        entry_id, balance = _move_with_entry(tx, entry)
    else:
        balance = _move(tx, contact_id, field, delta)
        entry_id = _INSERT_ENTRY.scalar(tx.conn, entry | {"balance_after": balance})
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


# Statements built once (see events.py for why); the upsert differs per dialect only in its class.
_INSERT_ENTRY = Prepared(insert(schema.ledger_entries).returning(schema.ledger_entries.c.id))
_acc = schema.credit_accounts
_ACCOUNT = (_acc.c.contact_id == bindparam("b_contact")) & (_acc.c.field == bindparam("b_field"))
# The guard is in the statement itself: no read-then-write window for a parallel purchase.
_LOWER = Prepared(
    update(_acc)
    .where(_ACCOUNT & (_acc.c.balance >= bindparam("b_amount")))
    .values(balance=_acc.c.balance - bindparam("b_amount"), updated_at=bindparam("b_now"))
    .returning(_acc.c.balance)
)
_BALANCE = Prepared(select(_acc.c.balance).where(_ACCOUNT))


def _upsert(insert_class: Any) -> Prepared:
    stmt = insert_class(_acc).values(
        contact_id=bindparam("b_contact"),
        field=bindparam("b_field"),
        balance=bindparam("b_amount"),
        updated_at=bindparam("b_now"),
    )
    return Prepared(
        stmt.on_conflict_do_update(
            index_elements=[_acc.c.contact_id, _acc.c.field],
            set_={
                "balance": _acc.c.balance + stmt.excluded.balance,
                "updated_at": stmt.excluded.updated_at,
            },
        ).returning(_acc.c.balance)
    )


_RAISE = _upsert(sqlite.insert)


def _with_entry(change: Prepared) -> Prepared:
    """PostgreSQL: ``change`` (a balance statement returning ``balance``) and the entry recording
    it as one statement, a data-modifying CTE: one round trip instead of two on every purchase.
    A refused debit changes no row, so the insert selects nothing and the statement returns none.
    """
    moved = change.statement.cte("moved")  # type: ignore[attr-defined]
    columns = [c for c in _entries.c if c.name != "id"]
    values = [
        # Prefixed: a bind named like an account column would make the UPDATE set that column.
        moved.c.balance if c.name == "balance_after" else bindparam(f"e_{c.name}", type_=c.type)
        for c in columns
    ]
    return Prepared(
        insert(_entries)
        .from_select([c.name for c in columns], select(*values).select_from(moved))
        .returning(_entries.c.id, _entries.c.balance_after)
    )


_entries = schema.ledger_entries
_RAISE_WITH_ENTRY = _with_entry(_upsert(postgresql.insert))
_LOWER_WITH_ENTRY = _with_entry(_LOWER)


def _move(tx: Tx, contact_id: int, field: str, delta: int) -> int:
    """SQLite: change one balance by ``delta``; the balance after (refuses an overdraft)."""
    values = {"b_contact": contact_id, "b_field": field, "b_amount": abs(delta), "b_now": tx.now}
    if delta > 0:
        return int(_RAISE.scalar(tx.conn, values))
    balance = _LOWER.scalar(tx.conn, values)
    if balance is None:
        _refuse_overdraft(tx, contact_id, field, -delta)
    return int(balance)


def _move_with_entry(tx: Tx, entry: dict[str, Any]) -> tuple[int, int]:
    """PostgreSQL: :func:`_move` and the entry's insert in one statement; (entry id, balance)."""
    contact_id, field, delta = entry["contact_id"], entry["field"], entry["delta"]
    values = {"b_contact": contact_id, "b_field": field, "b_amount": abs(delta), "b_now": tx.now}
    statement = _RAISE_WITH_ENTRY if delta > 0 else _LOWER_WITH_ENTRY
    row = statement.first(tx.conn, {f"e_{k}": v for k, v in entry.items()} | values)
    if row is None:
        _refuse_overdraft(tx, contact_id, field, -delta)
    return int(row[0]), int(row[1])


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
    tx: Tx, contact: int | str, field: str, amount: int, key: str, reason: str, actor: Actor
) -> LedgerResult:
    """Add ``amount`` credits to ``field`` (once per ``key``)."""
    return _one_sided(tx, "credit", contact, field, check_amount(amount), key, reason, actor)


def debit(
    tx: Tx, contact: int | str, field: str, amount: int, key: str, reason: str, actor: Actor
) -> LedgerResult:
    """Take ``amount`` credits from ``field`` (once per ``key``); refuses to go below zero."""
    return _one_sided(tx, "debit", contact, field, -check_amount(amount), key, reason, actor)


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
    field = check_credit_field(tx.credit_fields, field)
    contact_id = lock_contact(tx, contact)
    params = {"contact": contact_id, "field": field, "delta": delta, "reason": reason}

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
    amount: int,
    key: str,
    reason: str,
    actor: Actor,
) -> LedgerResult:
    """Move ``amount`` from one credit field of a contact to another, as two entries."""
    amount = check_amount(amount)
    source = check_credit_field(tx.credit_fields, from_field)
    target = check_credit_field(tx.credit_fields, to_field)
    if source == target:
        raise InvalidInput(f"a transfer needs two different fields, got {source!r} twice")
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
        in_id, in_balance = apply_delta(tx, contact_id, target, amount, f"op:{key}#2", **kw)
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
                **kw,
            )
            new_ids.append(entry_id)
            balances[f"{orig.contact_id}:{orig.field}"] = balance
        return LedgerResult(tuple(new_ids), balances)

    contact = originals[0].contact_id if len({e.contact_id for e in originals}) == 1 else None
    return keyed(tx, key, "refund", contact, params, actor, perform)


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


def verify(conn: Connection, max_problems: int = 1000) -> VerifyReport:
    """Replay the ledger: every cached balance, every entry's balance_after, every reversal."""
    problems = _check_balances(conn) + _check_chains(conn) + _check_reversals(conn)
    accounts = conn.execute(select(func.count()).select_from(schema.credit_accounts)).scalar_one()
    entries = conn.execute(select(func.count()).select_from(schema.ledger_entries)).scalar_one()
    return VerifyReport(int(accounts), int(entries), problems[:max_problems])


def _check_balances(conn: Connection) -> list[Discrepancy]:
    e, a = schema.ledger_entries, schema.credit_accounts
    sums = {
        (r.contact_id, r.field): int(r.total)
        for r in conn.execute(
            select(e.c.contact_id, e.c.field, func.sum(e.c.delta).label("total")).group_by(
                e.c.contact_id, e.c.field
            )
        )
    }
    problems = []
    for row in conn.execute(select(a.c.contact_id, a.c.field, a.c.balance)):
        replayed = sums.pop((row.contact_id, row.field), 0)
        if replayed != row.balance:
            msg = f"balance is {row.balance} but its entries add up to {replayed}"
            problems.append(Discrepancy(row.contact_id, row.field, msg))
    for (contact_id, fld), total in sorted(sums.items()):
        msg = f"entries add up to {total} but there is no balance row"
        problems.append(Discrepancy(contact_id, fld, msg))
    return problems


def _check_chains(conn: Connection) -> list[Discrepancy]:
    e = schema.ledger_entries
    running = func.sum(e.c.delta).over(partition_by=(e.c.contact_id, e.c.field), order_by=e.c.id)
    inner = select(
        e.c.id, e.c.contact_id, e.c.field, e.c.balance_after, running.label("run")
    ).subquery()
    query = select(inner).where(inner.c.run != inner.c.balance_after).order_by(inner.c.id)
    return [
        Discrepancy(
            r.contact_id,
            r.field,
            f"entry {r.id} says the balance became {r.balance_after}; replay gives {r.run}",
            r.id,
        )
        for r in conn.execute(query)
    ]


def _check_reversals(conn: Connection) -> list[Discrepancy]:
    rev, orig = schema.ledger_entries.alias("rev"), schema.ledger_entries.alias("orig")
    query = (
        select(rev.c.id, rev.c.contact_id, rev.c.field, orig.c.id.label("orig_id"))
        .join(orig, rev.c.reverses_id == orig.c.id)
        .where(
            (rev.c.delta != -orig.c.delta)
            | (rev.c.field != orig.c.field)
            | (rev.c.contact_id != orig.c.contact_id)
        )
    )
    return [
        Discrepancy(
            r.contact_id, r.field, f"entry {r.id} does not exactly reverse entry {r.orig_id}", r.id
        )
        for r in conn.execute(query)
    ]


# -- many keyed moves at once (the automations worker's batches) --------------------------------


@dataclass(frozen=True, slots=True)
class Move:
    """One keyed credit or debit staged in a :class:`MoveBatch`."""

    key: str
    contact_id: int
    field: str
    delta: int
    reason: str
    actor: Actor
    #: What caused the move (see :func:`~shortcodes.store.events.caused_by`): its event names it.
    cause: Mapping[str, Any] | None = None


class MoveBatch:
    """Credits and debits of many contacts, written with a few set-based statements.

    The caller holds the lock of every contact it stages moves for (the worker's claim locks
    them), so the balances read once when the batch starts stay true while it computes: each
    :meth:`stage` answers the balance after its move at once (refusing an overdraft exactly as
    :func:`debit` does, before anything is written), and :meth:`write` records every staged move
    as :func:`credit`/:func:`debit` would have, one row of the same shape in each table: the
    operation under its key (a key used before makes the insert fail, never a second move), the
    ledger entry, the cached balance and the ``balance_changed`` event. One statement per table,
    whatever the number of moves. This is the one place that writes batched ledger moves.
    """

    def __init__(self, tx: Tx, contact_ids: Iterable[int]) -> None:
        self.tx = tx
        self.moves: list[tuple[Move, int]] = []  # (move, balance after)
        self._balances: dict[tuple[int, str], int] = {}
        ids = sorted(set(contact_ids))
        a = schema.credit_accounts
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            query = select(a.c.contact_id, a.c.field, a.c.balance).where(
                among(tx.conn, a.c.contact_id, chunk)
            )
            for contact_id, field_name, value in tx.conn.execute(query):
                self._balances[(int(contact_id), field_name)] = int(value)

    def balance(self, contact_id: int, field_name: str) -> int:
        """The balance with every move staged so far."""
        return self._balances.get((contact_id, field_name), 0)

    def balances(self, contact_id: int, credit_fields: Iterable[str]) -> dict[str, int]:
        """The contact's balance in each of ``credit_fields``, as :func:`balances` answers."""
        return {name: self.balance(contact_id, name) for name in credit_fields}

    def stage(self, move: Move) -> int:
        """Stage ``move`` (validated like :func:`credit`/:func:`debit`); the balance after it."""
        field_name = check_credit_field(self.tx.credit_fields, move.field)
        amount = check_amount(abs(move.delta))
        delta = amount if move.delta > 0 else -amount
        after = self.balance(move.contact_id, field_name) + delta
        if after < 0:
            raise InsufficientCredits(field_name, amount, after - delta)
        self._balances[(move.contact_id, field_name)] = after
        staged = Move(
            move.key,
            move.contact_id,
            field_name,
            delta,
            move.reason,
            move.actor,
            current_cause() if move.cause is None else move.cause,
        )
        self.moves.append((staged, after))
        return after

    def mark(self) -> int:
        """A point to :meth:`rollback` to."""
        return len(self.moves)

    def rollback(self, mark: int) -> None:
        """Forget the moves staged after ``mark`` (a step that failed half-way)."""
        for move, _after in reversed(self.moves[mark:]):
            self._balances[(move.contact_id, move.field)] -= move.delta
        del self.moves[mark:]

    def write(self) -> None:
        """Record every staged move (see the class docstring); the batch is then empty."""
        if not self.moves:
            return
        op_ids = self._insert_operations()
        entry_ids = self._insert_entries(op_ids)
        self._store_balances()
        self._finish_operations(op_ids, entry_ids)
        self._record_events(entry_ids)
        self.moves.clear()

    def _insert_operations(self) -> list[int]:
        t, now = schema.operations, self.tx.now
        rows = []
        for move, _after in self.moves:
            kind = "credit" if move.delta > 0 else "debit"
            params = {
                "contact": move.contact_id,
                "field": move.field,
                "delta": move.delta,
                "reason": move.reason,
            }
            rows.append(
                {
                    "key": check_key(move.key),
                    "kind": kind,
                    "contact_id": move.contact_id,
                    "fingerprint": fingerprint(kind, params),
                    "result": {},
                    "actor_kind": move.actor.kind,
                    "actor_id": move.actor.id,
                    "created_at": now,
                }
            )
        return insert_many(self.tx.conn, t, rows, "key")

    def _insert_entries(self, op_ids: list[int]) -> list[int]:
        t, now = schema.ledger_entries, self.tx.now
        rows = [
            {
                "contact_id": move.contact_id,
                "field": move.field,
                "delta": move.delta,
                "balance_after": after,
                "reason": move.reason[:500],
                "actor_kind": move.actor.kind,
                "actor_id": move.actor.id,
                "idempotency_key": f"op:{move.key}#1",
                "operation_id": op_id,
                "run_id": None,
                "reverses_id": None,
                "created_at": now,
            }
            for (move, after), op_id in zip(self.moves, op_ids, strict=True)
        ]
        return insert_many(self.tx.conn, t, rows, "idempotency_key")

    def _store_balances(self) -> None:
        final = {(m.contact_id, m.field): after for m, after in self.moves}
        rows = [
            {"contact_id": c, "field": f, "balance": v, "updated_at": self.tx.now}
            for (c, f), v in sorted(final.items())
        ]
        upsert_rows(self.tx.conn, schema.credit_accounts, rows, ("contact_id", "field"))

    def _finish_operations(self, op_ids: list[int], entry_ids: list[int]) -> None:
        rows = [
            {"id": op_id, "result": LedgerResult((entry_id,), {move.field: after}).to_json()}
            for (move, after), op_id, entry_id in zip(self.moves, op_ids, entry_ids, strict=True)
        ]
        update_rows(self.tx.conn, schema.operations, rows)

    def _record_events(self, entry_ids: list[int]) -> None:
        rows = [
            event_row(
                self.tx,
                "balance_changed",
                move.contact_id,
                {
                    "field": move.field,
                    "delta": move.delta,
                    "balance": after,
                    "entry_id": entry_id,
                    "reason": move.reason,
                    **({} if move.cause is None else {"cause": dict(move.cause)}),
                },
            )
            for (move, after), entry_id in zip(self.moves, entry_ids, strict=True)
        ]
        record_events(self.tx, rows)
