"""Store verify: replay the ledger and report every disagreement, never changing anything.

``ledger verify`` (the CLI), the admin console and the tests call :func:`verify`: every cached
balance against its entries, every entry's ``balance_after`` chain, every reversal, every debt,
and the grants (each balance is its active grants minus its debt; each grant's ``remaining`` is
the sum of its moves; each entry's delta is its grant moves minus its debt change). The writes
these checks prove are in :mod:`.ledger`, :mod:`.grants`, :mod:`.refunds` and :mod:`.expiry`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.engine import Connection

from shortcodes.store import schema


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


def verify(conn: Connection, max_problems: int = 1000) -> VerifyReport:
    """Replay the ledger: every cached balance, every entry's balance_after, every reversal,
    every debt (the sum of its entries' ``debt_delta``, never below zero along the way); and the
    grants: each balance is its active grants' ``remaining`` minus its debt, each grant's
    ``remaining`` the sum of its moves, and each entry's delta its grant moves minus its
    ``debt_delta``."""
    problems = _check_balances(conn) + _check_chains(conn) + _check_reversals(conn)
    problems += _check_debts(conn)
    problems += _check_grant_balances(conn) + _check_grant_moves(conn) + _check_entry_moves(conn)
    accounts = conn.execute(select(func.count()).select_from(schema.credit_accounts)).scalar_one()
    entries = conn.execute(select(func.count()).select_from(schema.ledger_entries)).scalar_one()
    return VerifyReport(int(accounts), int(entries), problems[:max_problems])


def _check_balances(conn: Connection) -> list[Discrepancy]:
    balance = schema.credit_accounts.c.balance
    return _account_sums(conn, schema.ledger_entries.c.delta, balance, "balance", "")


def _account_sums(
    conn: Connection, entry_value: Any, account_value: Any, name: str, orphan: str
) -> list[Discrepancy]:
    """Each account's ``account_value`` (its ``name``) against the sum of ``entry_value`` over
    its entries, and every sum of entries with no account (``orphan`` names what it adds up to).
    Entries whose value is 0 add nothing, so they are left out of the sums."""
    e, a = schema.ledger_entries, schema.credit_accounts
    sums = {
        (r.contact_id, r.field): int(r.total)
        for r in conn.execute(
            select(e.c.contact_id, e.c.field, func.sum(entry_value).label("total"))
            .where(entry_value != 0)
            .group_by(e.c.contact_id, e.c.field)
        )
    }
    problems = []
    for row in conn.execute(select(a.c.contact_id, a.c.field, account_value.label("value"))):
        replayed = sums.pop((row.contact_id, row.field), 0)
        if replayed != row.value:
            msg = f"{name} is {row.value} but its entries add up to {replayed}"
            problems.append(Discrepancy(row.contact_id, row.field, msg))
    for (contact_id, fld), total in sorted(sums.items()):
        msg = f"entries add up to {orphan}{total} but there is no balance row"
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


def _check_debts(conn: Connection) -> list[Discrepancy]:
    e = schema.ledger_entries
    problems = _account_sums(
        conn, e.c.debt_delta, schema.credit_accounts.c.debt, "debt", "a debt of "
    )
    owed = func.sum(e.c.debt_delta)
    running = owed.over(partition_by=(e.c.contact_id, e.c.field), order_by=e.c.id)
    inner = select(e.c.id, e.c.contact_id, e.c.field, running.label("run")).subquery()
    query = select(inner).where(inner.c.run < 0).order_by(inner.c.id)
    problems += [
        Discrepancy(
            r.contact_id, r.field, f"entry {r.id} settles more debt than was owed ({r.run})", r.id
        )
        for r in conn.execute(query)
    ]
    return problems


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


# -- verify: grants ----------------------------------------------------------------------------

#: The operation migration 0007 recorded with the last entry written before grants existed.
GRANTS_BOUNDARY_KEY = "migration:0007"


def _check_grant_balances(conn: Connection) -> list[Discrepancy]:
    g, a = schema.credit_grants, schema.credit_accounts
    held = {
        (r.contact_id, r.field): int(r.total)
        for r in conn.execute(
            select(g.c.contact_id, g.c.field, func.sum(g.c.remaining).label("total"))
            .where(g.c.status == "active")
            .group_by(g.c.contact_id, g.c.field)
        )
    }
    problems = []
    for row in conn.execute(select(a.c.contact_id, a.c.field, a.c.balance, a.c.debt)):
        total = held.pop((row.contact_id, row.field), 0)
        if total - row.debt != row.balance:
            owes = f" less its debt of {row.debt}" if row.debt else ""
            msg = f"balance is {row.balance} but its active grants hold {total}{owes}"
            problems.append(Discrepancy(row.contact_id, row.field, msg))
    for (contact_id, fld), total in sorted(held.items()):
        if total:
            msg = f"active grants hold {total} but there is no balance row"
            problems.append(Discrepancy(contact_id, fld, msg))
    return problems


def _check_grant_moves(conn: Connection) -> list[Discrepancy]:
    g, m = schema.credit_grants, schema.grant_moves
    moved = (
        select(m.c.grant_id, func.sum(m.c.delta).label("total")).group_by(m.c.grant_id).subquery()
    )
    expected = case((g.c.status == "pending", 0), else_=g.c.remaining)
    query = (
        select(g.c.id, g.c.contact_id, g.c.field, g.c.status, g.c.remaining, moved.c.total)
        .outerjoin(moved, moved.c.grant_id == g.c.id)
        .where(func.coalesce(moved.c.total, 0) != expected)
        .order_by(g.c.id)
    )
    return [
        Discrepancy(
            r.contact_id,
            r.field,
            f"grant {r.id} ({r.status}) has {r.remaining} left but its moves add up to "
            f"{r.total or 0}",
        )
        for r in conn.execute(query)
    ]


def _check_entry_moves(conn: Connection) -> list[Discrepancy]:
    e, m, o = schema.ledger_entries, schema.grant_moves, schema.operations
    mark = conn.execute(select(o.c.result).where(o.c.key == GRANTS_BOUNDARY_KEY)).scalar()
    boundary = int(mark["last_entry"]) if mark else 0
    moved = (
        select(m.c.entry_id, func.sum(m.c.delta).label("total"))
        .where(m.c.entry_id.is_not(None))
        .group_by(m.c.entry_id)
        .subquery()
    )
    query = (
        select(e.c.id, e.c.contact_id, e.c.field, e.c.delta, e.c.debt_delta, moved.c.total)
        .outerjoin(moved, moved.c.entry_id == e.c.id)
        .where(
            (func.coalesce(moved.c.total, 0) - e.c.debt_delta != e.c.delta)
            & ((e.c.id > boundary) | moved.c.total.is_not(None))
        )
        .order_by(e.c.id)
    )
    return [
        Discrepancy(
            r.contact_id,
            r.field,
            f"entry {r.id} moved the balance by {r.delta} but its grants by {r.total or 0}"
            + (f" and the debt by {r.debt_delta}" if r.debt_delta else ""),
            r.id,
        )
        for r in conn.execute(query)
    ]
