"""Store batches: credits and debits of many contacts written with a few set-based statements.

The automations worker executes a batch of due steps in one transaction (see
:mod:`shortcodes.automations.batch`); their ledger moves go through a :class:`MoveBatch`, which
writes exactly what :func:`~shortcodes.store.ledger.credit` and
:func:`~shortcodes.store.ledger.debit` would have written one by one, with one statement per
table: the operation under its key (a key used before makes the insert fail, never a second
move), the ledger entry, the cached balance, the grants (a credit creates one, a debit consumes
them in the consumption order of :mod:`.grants`) with their moves, and the ``balance_changed``
event. This is the one place that writes batched ledger moves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from shortcodes.errors import InsufficientCredits, StoreError
from shortcodes.store import grants, schema
from shortcodes.store.entries import DEFAULT_GRANT
from shortcodes.store.events import current_cause, event_row, record_events
from shortcodes.store.fastpath import among, insert_many, insert_rows, update_rows, upsert_rows
from shortcodes.store.idempotency import check_key, fingerprint
from shortcodes.store.ledger import (
    LedgerResult,
    check_credit_field,
    move_params,
    to_units,
)
from shortcodes.store.session import Actor, Tx

_CHUNK = 5000
_g = schema.credit_grants


def _spendable(now: datetime) -> Any:
    """Grants a debit may take from now (as :mod:`.grants` selects them)."""
    return (
        (_g.c.status == "active")
        & (_g.c.remaining > 0)
        & (_g.c.expires_at.is_(None) | (_g.c.expires_at > now))
    )


@dataclass(frozen=True, slots=True)
class Move:
    """One keyed credit or debit staged in a :class:`MoveBatch` (``delta`` in credits, signed)."""

    key: str
    contact_id: int
    field: str
    delta: int
    reason: str
    actor: Actor
    #: What caused the move (see :func:`~shortcodes.store.events.caused_by`): its event names it.
    cause: Mapping[str, Any] | None = None


@dataclass(slots=True)
class _Pooled:
    """A grant a debit of the batch may take from: an existing one (``id``) or one the batch
    creates (``new``, its index among the batch's new grants)."""

    priority: int
    expires_at: datetime | None
    order: tuple[int, int]  # existing grants by id, then the batch's new ones in creation order
    remaining: int
    id: int | None = None
    new: int | None = None

    def sort_key(self) -> tuple[Any, ...]:
        """The consumption order of :mod:`.grants` (priority, soonest expiry, oldest)."""
        never = self.expires_at is None
        return (self.priority, never, self.expires_at or datetime.min, self.order)


class MoveBatch:
    """Credits and debits of many contacts, staged in memory, written by :meth:`write`.

    The caller holds the lock of every contact it stages moves for (the worker's claim locks
    them), so what is read when the batch starts stays true while it computes: each
    :meth:`stage` answers the balance after its move at once, refusing a debit that the
    contact's unexpired grants cannot cover exactly as :func:`~shortcodes.store.ledger.debit`
    does, before anything is written. A credit for an account in debt is refused too (a
    :class:`StoreError`): the step then runs on the one-step path, whose credit settles the
    debt first (:func:`~shortcodes.store.entries.apply_delta`); batches never write a debt.
    """

    def __init__(self, tx: Tx, contact_ids: Iterable[int]) -> None:
        self.tx = tx
        self.moves: list[tuple[Move, int]] = []  # (move in units, balance after)
        self._balances: dict[tuple[int, str], int] = {}
        self._owing: set[tuple[int, str]] = set()
        # What the unexpired grants held when the batch began (read at the first debit: a
        # batch of credits, a billing run, never needs it) and what the staged moves add.
        self._held: dict[tuple[int, str], int] | None = None
        self._staged: dict[tuple[int, str], int] = {}
        self._contacts = sorted(set(contact_ids))
        a = schema.credit_accounts
        for chunk in self._chunks():
            query = select(a.c.contact_id, a.c.field, a.c.balance, a.c.debt).where(
                among(tx.conn, a.c.contact_id, chunk)
            )
            for contact_id, field_name, value, debt in tx.conn.execute(query):
                self._balances[(int(contact_id), field_name)] = int(value)
                if debt:
                    self._owing.add((int(contact_id), field_name))

    def _read_held(self) -> dict[tuple[int, str], int]:
        """What each contact's unexpired grants hold, per field, as the batch began."""
        held: dict[tuple[int, str], int] = {}
        for chunk in self._chunks():
            query = (
                select(_g.c.contact_id, _g.c.field, func.sum(_g.c.remaining))
                .where(among(self.tx.conn, _g.c.contact_id, chunk) & _spendable(self.tx.now))
                .group_by(_g.c.contact_id, _g.c.field)
            )
            for contact_id, field_name, total in self.tx.conn.execute(query):
                held[(int(contact_id), field_name)] = int(total)
        return held

    def _chunks(self) -> Iterable[list[int]]:
        for start in range(0, len(self._contacts), _CHUNK):
            yield self._contacts[start : start + _CHUNK]

    def balance(self, contact_id: int, field_name: str) -> int:
        """The balance (units) with every move staged so far."""
        return self._balances.get((contact_id, field_name), 0)

    def balances(self, contact_id: int, credit_fields: Iterable[str]) -> dict[str, int]:
        """The contact's balance in each of ``credit_fields``, as ledger ``balances`` answers."""
        return {name: self.balance(contact_id, name) for name in credit_fields}

    def stage(self, move: Move) -> int:
        """Stage ``move`` (validated like ``credit``/``debit``); the balance after it."""
        field_name = check_credit_field(self.tx.credit_fields, move.field)
        units = to_units(self.tx, field_name, abs(move.delta))
        delta = units if move.delta > 0 else -units
        key = (move.contact_id, field_name)
        if delta < 0:
            if self._held is None:
                self._held = self._read_held()
            usable = self._held.get(key, 0) + self._staged.get(key, 0)
            if usable < units:
                raise InsufficientCredits(field_name, units, usable)
        if delta > 0 and key in self._owing:
            raise StoreError(
                f"{field_name} of contact {move.contact_id} is in debt: its credit "
                "settles the debt on the one-step path"
            )
        after = self.balance(*key) + delta
        self._balances[key] = after
        self._staged[key] = self._staged.get(key, 0) + delta
        cause = current_cause() if move.cause is None else move.cause
        staged = Move(move.key, move.contact_id, field_name, delta, move.reason, move.actor, cause)
        self.moves.append((staged, after))
        return after

    def mark(self) -> int:
        """A point to :meth:`rollback` to."""
        return len(self.moves)

    def rollback(self, mark: int) -> None:
        """Forget the moves staged after ``mark`` (a step that failed half-way)."""
        for move, _after in reversed(self.moves[mark:]):
            key = (move.contact_id, move.field)
            self._balances[key] -= move.delta
            self._staged[key] -= move.delta
        del self.moves[mark:]

    def write(self) -> None:
        """Record every staged move (see the module docstring); the batch is then empty."""
        if not self.moves:
            return
        op_ids = self._insert_operations()
        entry_ids = self._insert_entries(op_ids)
        self._store_balances()
        self._move_grants(op_ids, entry_ids)
        self._finish_operations(op_ids, entry_ids)
        self._record_events(entry_ids)
        self.moves.clear()

    def _insert_operations(self) -> list[int]:
        rows = []
        for move, _after in self.moves:
            kind = "credit" if move.delta > 0 else "debit"
            # As credit/debit fingerprint it: a replay on either path agrees.
            grant = DEFAULT_GRANT if move.delta > 0 else None
            params = move_params(move.contact_id, move.field, move.delta, move.reason, grant)
            rows.append(
                {
                    "key": check_key(move.key),
                    "kind": kind,
                    "contact_id": move.contact_id,
                    "fingerprint": fingerprint(kind, params),
                    "result": {},
                    "actor_kind": move.actor.kind,
                    "actor_id": move.actor.id,
                    "created_at": self.tx.now,
                }
            )
        return insert_many(self.tx.conn, schema.operations, rows, "key")

    def _insert_entries(self, op_ids: list[int]) -> list[int]:
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
                "created_at": self.tx.now,
            }
            for (move, after), op_id in zip(self.moves, op_ids, strict=True)
        ]
        return insert_many(self.tx.conn, schema.ledger_entries, rows, "idempotency_key")

    def _store_balances(self) -> None:
        final = {(m.contact_id, m.field): after for m, after in self.moves}
        rows = [
            {"contact_id": c, "field": f, "balance": v, "updated_at": self.tx.now}
            for (c, f), v in sorted(final.items())
        ]
        upsert_rows(self.tx.conn, schema.credit_accounts, rows, ("contact_id", "field"))

    def _move_grants(self, op_ids: list[int], entry_ids: list[int]) -> None:
        """Every credit creates a grant; every debit takes from the pool of its contact's field
        in consumption order. Computed in memory (the contacts are locked), then written as one
        insert of grants, one update of the existing grants used and one insert of moves."""
        pools = self._pools()
        new: list[dict[str, Any]] = []
        creations: list[int] = []  # the entry id of each new grant
        takes: list[tuple[_Pooled, int, int]] = []  # (grant, entry id, units)
        for (move, _after), op_id, entry_id in zip(self.moves, op_ids, entry_ids, strict=True):
            pool = pools.setdefault((move.contact_id, move.field), [])
            if move.delta > 0:
                values = grants.row_values(
                    self.tx, move.contact_id, move.field, move.delta, DEFAULT_GRANT,
                    move.reason, operation_id=op_id,
                )  # fmt: skip
                pool.append(
                    _Pooled(
                        values["priority"],
                        values["expires_at"],
                        (1, len(new)),
                        move.delta,
                        new=len(new),
                    )
                )
                new.append(values)
                creations.append(entry_id)
            else:
                takes.extend(self._take(pool, move, entry_id))
        spent_new = [0] * len(new)
        for grant, _entry, units in takes:
            if grant.new is not None:
                spent_new[grant.new] += units
        rows = [
            values | {"remaining": values["amount"] - spent}
            for values, spent in zip(new, spent_new, strict=True)
        ]
        new_ids = insert_many(self.tx.conn, _g, rows, "operation_id")
        self._write_grant_changes(takes, new_ids, creations, new)

    def _write_grant_changes(
        self,
        takes: list[tuple[_Pooled, int, int]],
        new_ids: list[int],
        creations: list[int],
        new: list[dict[str, Any]],
    ) -> None:
        used = {id(grant): grant for grant, _entry, _units in takes if grant.id is not None}
        lowered = [{"id": g.id, "remaining": g.remaining} for g in used.values()]
        update_rows(self.tx.conn, _g, sorted(lowered, key=lambda row: row["id"]))
        now = self.tx.now
        moves = [
            {"grant_id": gid, "entry_id": e, "kind": "grant", "delta": v["amount"]}
            | {"created_at": now}
            for gid, e, v in zip(new_ids, creations, new, strict=True)
        ]
        for grant, entry_id, units in takes:
            grant_id = grant.id if grant.new is None else new_ids[grant.new]
            moves.append(
                {"grant_id": grant_id, "entry_id": entry_id, "kind": "use", "delta": -units}
                | {"created_at": now}
            )
        insert_rows(self.tx.conn, schema.grant_moves, moves)

    def _pools(self) -> dict[tuple[int, str], list[_Pooled]]:
        """The usable grants of every (contact, field) the batch debits, one read per chunk."""
        wanted = {(m.contact_id, m.field) for m, _ in self.moves if m.delta < 0}
        pools: dict[tuple[int, str], list[_Pooled]] = {key: [] for key in wanted}
        contacts = sorted({c for c, _ in wanted})
        usable = _spendable(self.tx.now)
        for start in range(0, len(contacts), _CHUNK):
            chunk = contacts[start : start + _CHUNK]
            query = select(
                _g.c.id, _g.c.contact_id, _g.c.field, _g.c.priority, _g.c.expires_at,
                _g.c.remaining,
            ).where(among(self.tx.conn, _g.c.contact_id, chunk) & usable)  # fmt: skip
            for row in self.tx.conn.execute(query):
                pool = pools.get((int(row.contact_id), row.field))
                if pool is not None:
                    order = (0, int(row.id))
                    pool.append(
                        _Pooled(
                            row.priority, row.expires_at, order, int(row.remaining), int(row.id)
                        )
                    )
        return pools

    @staticmethod
    def _take(pool: list[_Pooled], move: Move, entry_id: int) -> list[tuple[_Pooled, int, int]]:
        left = -move.delta
        taken = []
        for grant in sorted(pool, key=_Pooled.sort_key):
            if not left:
                break
            if grant.remaining <= 0:
                continue
            units = min(left, grant.remaining)
            grant.remaining -= units
            left -= units
            taken.append((grant, entry_id, units))
        if left:  # stage() checked what the grants hold; this is a broken invariant
            raise InsufficientCredits(move.field, -move.delta, -move.delta - left)
        return taken

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
