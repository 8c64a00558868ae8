"""Store grants: where every credit came from, which grants a debit used, and what is left.

A grant holds ``remaining`` units of one field for one contact (see ``schema.credit_grants``).
The cached balance is the sum of ``remaining`` over the contact's *active* grants of the field;
every change of a grant's ``remaining`` is a ``grant_moves`` row tied to the ledger entry that
moved the balance by the same amount, so ``verify`` can prove both agree.

**Consumption order** (one, documented in docs/credits.md): a debit takes from the
active, unexpired grants with something left, lowest ``priority`` first, then the soonest
``expires_at`` (grants that never expire last), then the oldest (lowest id). Promotional grants
get priority 0 and paid ones 1 when the field's policy says ``promotional_first`` (the default),
so promotional credit is spent before paid credit; otherwise both get 1.

Everything here runs inside the caller's transaction, which holds the contact's lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.engine import Connection

from shortcodes.errors import InvalidInput
from shortcodes.membership.credit_policy import GRANT_SOURCES, CreditPolicy
from shortcodes.store import schema
from shortcodes.store.fastpath import Prepared
from shortcodes.store.session import Tx, from_db_time, to_db_time

CATEGORIES = ("paid", "promotional")
_g, _m = schema.credit_grants, schema.grant_moves


@dataclass(frozen=True, slots=True)
class GrantSpec:
    """Where new credits come from: their source, category, and optional start and expiry.

    ``expires_at``/``starts_at`` left as None take the field policy's default for the source
    (expiry) or start at once.
    """

    source: str = "admin"
    category: str | None = None  # None: promotional for the "promotion" source, else paid
    starts_at: datetime | None = None
    expires_at: datetime | None = None
    priority: int | None = None

    def __post_init__(self) -> None:
        if self.source not in GRANT_SOURCES:
            raise InvalidInput(f"a grant source is one of {', '.join(GRANT_SOURCES)}")
        if self.category is not None and self.category not in CATEGORIES:
            raise InvalidInput(f"a category is 'paid' or 'promotional', got {self.category!r}")

    def resolved_category(self) -> str:
        """The category, defaulted from the source."""
        if self.category is not None:
            return self.category
        return "promotional" if self.source in ("promotion", "loyalty") else "paid"


@dataclass(frozen=True, slots=True)
class Grant:
    """One grant as the account page, the CLI and the API show it (amounts in units)."""

    id: int
    field: str
    source: str
    category: str
    priority: int
    amount: int
    remaining: int
    status: str
    starts_at: datetime | None
    expires_at: datetime | None
    reason: str
    created_at: datetime


def row_values(
    tx: Tx,
    contact_id: int,
    field: str,
    amount: int,
    spec: GrantSpec,
    reason: str,
    *,
    operation_id: int | None = None,
    run_id: int | None = None,
) -> dict[str, Any]:
    """The column values of a new grant under the field's policy (default expiry by source)."""
    policy = tx.policy(field)
    category = spec.resolved_category()
    # Times may come aware (callers) or naive UTC (the store's own); rows hold naive UTC.
    wanted_start = None if spec.starts_at is None else to_db_time(spec.starts_at)
    starts = wanted_start if wanted_start is not None and wanted_start > tx.now else None
    expires = None if spec.expires_at is None else to_db_time(spec.expires_at)
    if expires is None and spec.source in policy.expires:
        expires = policy.expires[spec.source].after(starts or tx.now)
    if expires is not None and expires <= (starts or tx.now):
        raise InvalidInput("a grant must expire after it starts")
    return {
        "contact_id": contact_id,
        "field": field,
        "source": spec.source,
        "category": category,
        "priority": spec.priority if spec.priority is not None else _priority(policy, category),
        "amount": amount,
        "remaining": amount,
        "status": "pending" if starts is not None else "active",
        "starts_at": starts,
        "expires_at": expires,
        "operation_id": operation_id,
        "run_id": run_id,
        "reason": reason[:500],
        "created_at": tx.now,
    }


def _priority(policy: CreditPolicy, category: str) -> int:
    return 0 if category == "promotional" and policy.promotional_first else 1


_INSERT_GRANT = Prepared(insert(_g).returning(_g.c.id))
_INSERT_MOVE = Prepared(insert(_m))


def _grant_with_move() -> Prepared:
    """PostgreSQL: the grant and its first move in one statement (one round trip)."""
    columns = [c for c in _g.c if c.name != "id"]
    made = (
        insert(_g)
        .values({c.name: bindparam(f"g_{c.name}", type_=c.type) for c in columns})
        .returning(_g.c.id)
        .cte("made")
    )
    values = select(
        made.c.id,
        bindparam("m_entry_id", type_=_m.c.entry_id.type),
        bindparam("m_kind", type_=_m.c.kind.type),
        bindparam("m_delta", type_=_m.c.delta.type),
        bindparam("m_created_at", type_=_m.c.created_at.type),
    ).select_from(made)
    return Prepared(
        insert(_m)
        .from_select(["grant_id", "entry_id", "kind", "delta", "created_at"], values)
        .returning(_m.c.grant_id)
    )


_GRANT_WITH_MOVE = _grant_with_move()


def create(tx: Tx, values: dict[str, Any], entry_id: int | None) -> int:
    """Insert a grant (from :func:`row_values`); an active one gets its ``grant`` move tied to
    ``entry_id``, the ledger entry that added it to the balance. The new grant's id."""
    if values["status"] == "pending":
        return int(_INSERT_GRANT.scalar(tx.conn, values))
    move = {"entry_id": entry_id, "kind": "grant", "delta": values["amount"], "created_at": tx.now}
    if tx.is_postgres:
        params = {f"g_{k}": v for k, v in values.items()} | {f"m_{k}": v for k, v in move.items()}
        return int(_GRANT_WITH_MOVE.scalar(tx.conn, params))
    grant_id = int(_INSERT_GRANT.scalar(tx.conn, values))
    _INSERT_MOVE.execute(tx.conn, move | {"grant_id": grant_id})
    return grant_id


# PostgreSQL: pick the grants in consumption order, lower them and record the moves, in one
# statement. ``before`` is what the grants ahead of a row hold; a row is used while that is
# short of the amount, and gives what is still missing (at most what it holds).
#: The usable grants in consumption order with what the grants ahead of each hold (``before``);
#: shared with the ledger's one-statement debit.
ORDERED_SQL = """SELECT id, remaining,
           SUM(remaining) OVER (ORDER BY priority, expires_at NULLS LAST, id) - remaining AS before
    FROM credit_grants
    WHERE contact_id = :b_contact AND field = :b_field AND status = 'active' AND remaining > 0
      AND (expires_at IS NULL OR expires_at > :b_now)"""
_CONSUME = Prepared(
    text(f"""
WITH ordered AS (
    {ORDERED_SQL}
), take AS (
    SELECT id, LEAST(remaining, :b_amount - before) AS n FROM ordered WHERE before < :b_amount
), used AS (
    UPDATE credit_grants AS g SET remaining = g.remaining - take.n
    FROM take WHERE g.id = take.id
    RETURNING g.id, take.n
), moved AS (
    INSERT INTO grant_moves (grant_id, entry_id, kind, delta, created_at)
    SELECT id, :b_entry, :b_kind, -n, :b_now FROM used
)
SELECT COALESCE(SUM(n), 0) FROM used
""").bindparams(bindparam("b_now", type_=_g.c.created_at.type))  # noqa: S608 - constant SQL
)
_USABLE = (
    (_g.c.contact_id == bindparam("b_contact"))
    & (_g.c.field == bindparam("b_field"))
    & (_g.c.status == "active")
    & (_g.c.remaining > 0)
    & (_g.c.expires_at.is_(None) | (_g.c.expires_at > bindparam("b_now")))
)
_ORDER = (_g.c.priority, _g.c.expires_at.is_(None), _g.c.expires_at, _g.c.id)
_CANDIDATES = Prepared(select(_g.c.id, _g.c.remaining).where(_USABLE).order_by(*_ORDER))
_LOWER_GRANT = Prepared(
    update(_g)
    .where(_g.c.id == bindparam("b_id"))
    .values(remaining=_g.c.remaining - bindparam("b_take"))
)


def consume(
    tx: Tx, contact_id: int, field: str, amount: int, entry_id: int, kind: str = "use"
) -> int:
    """Take up to ``amount`` units from the contact's grants in consumption order, recording a
    move per grant used, tied to ``entry_id``; returns how much was taken (less when the
    unexpired grants hold less: the caller refuses the change then)."""
    params = {"b_contact": contact_id, "b_field": field, "b_now": tx.now}
    if tx.is_postgres:
        return int(
            _CONSUME.scalar(
                tx.conn, params | {"b_amount": amount, "b_entry": entry_id, "b_kind": kind}
            )
        )
    left = amount
    moves = []
    for grant_id, remaining in _CANDIDATES.all(tx.conn, params):
        take = min(left, int(remaining))
        _LOWER_GRANT.execute(tx.conn, {"b_id": grant_id, "b_take": take})
        moves.append(
            {"grant_id": grant_id, "entry_id": entry_id, "kind": kind, "delta": -take}
            | {"created_at": tx.now}
        )
        left -= take
        if not left:
            break
    if moves:
        _INSERT_MOVE.executemany(tx.conn, moves)
    return amount - left


def usable(
    conn: Connection, contact_id: int, field: str, now: datetime, exclude: Sequence[int] = ()
) -> int:
    """What the contact can spend from ``field`` now (its active, unexpired grants), leaving
    out the grants ``exclude`` names."""
    from sqlalchemy import func

    query = select(func.coalesce(func.sum(_g.c.remaining), 0)).where(_USABLE)
    if exclude:
        query = query.where(_g.c.id.not_in(list(exclude)))
    return int(
        conn.execute(query, {"b_contact": contact_id, "b_field": field, "b_now": now}).scalar_one()
    )


def take_from(tx: Tx, grant_id: int, amount: int, entry_id: int, kind: str) -> None:
    """Lower one named grant by ``amount`` (the caller checked it holds that much)."""
    _LOWER_GRANT.execute(tx.conn, {"b_id": grant_id, "b_take": amount})
    _INSERT_MOVE.execute(
        tx.conn,
        {"grant_id": grant_id, "entry_id": entry_id, "kind": kind, "delta": -amount}
        | {"created_at": tx.now},
    )


def give_back(tx: Tx, grant_id: int, amount: int, entry_id: int) -> None:
    """Raise one grant by ``amount`` (a reversed debit restoring what it consumed)."""
    _LOWER_GRANT.execute(tx.conn, {"b_id": grant_id, "b_take": -amount})
    _INSERT_MOVE.execute(
        tx.conn,
        {"grant_id": grant_id, "entry_id": entry_id, "kind": "restore", "delta": amount}
        | {"created_at": tx.now},
    )


def moves_of(conn: Connection, entry_id: int) -> list[tuple[int, int]]:
    """(grant id, delta) of every move an entry made, in order."""
    rows = conn.execute(
        select(_m.c.grant_id, _m.c.delta).where(_m.c.entry_id == entry_id).order_by(_m.c.id)
    )
    return [(int(g), int(d)) for g, d in rows]


def load(conn: Connection, grant_ids: list[int]) -> list[Any]:
    """The grant rows with these ids, in id order."""
    return list(conn.execute(select(_g).where(_g.c.id.in_(grant_ids)).order_by(_g.c.id)).all())


def listing(
    conn: Connection, contact_id: int, field: str | None = None, *, include_spent: bool = False
) -> list[Grant]:
    """The contact's grants, newest first: pending and those with something left (all of them,
    spent and expired included, with ``include_spent``)."""
    query = select(_g).where(_g.c.contact_id == contact_id)
    if field is not None:
        query = query.where(_g.c.field == field)
    if not include_spent:
        query = query.where((_g.c.remaining > 0) & (_g.c.status != "expired"))
    return [_grant(r) for r in conn.execute(query.order_by(_g.c.id.desc()))]


def _grant(row: Any) -> Grant:
    return Grant(
        id=int(row.id),
        field=row.field,
        source=row.source,
        category=row.category,
        priority=int(row.priority),
        amount=int(row.amount),
        remaining=int(row.remaining),
        status=row.status,
        starts_at=None if row.starts_at is None else from_db_time(row.starts_at),
        expires_at=None if row.expires_at is None else from_db_time(row.expires_at),
        reason=row.reason,
        created_at=from_db_time(row.created_at),
    )


def expiring(conn: Connection, contact_id: int, field: str, now: datetime, until: datetime) -> int:
    """Units of active grants that expire after ``now`` and by ``until``."""
    from sqlalchemy import func

    query = select(func.coalesce(func.sum(_g.c.remaining), 0)).where(
        (_g.c.contact_id == contact_id)
        & (_g.c.field == field)
        & (_g.c.status == "active")
        & (_g.c.remaining > 0)
        & (_g.c.expires_at > now)
        & (_g.c.expires_at <= until)
    )
    return int(conn.execute(query).scalar_one())


def held(
    conn: Connection, contact_id: int, field: str, source: str, now: datetime
) -> list[tuple[int, int]]:
    """(id, remaining) of the contact's active unexpired grants of ``source``, in consumption
    order."""
    query = (
        select(_g.c.id, _g.c.remaining).where(_USABLE & (_g.c.source == source)).order_by(*_ORDER)
    )
    rows = conn.execute(query, {"b_contact": contact_id, "b_field": field, "b_now": now})
    return [(int(i), int(n)) for i, n in rows]


def record_move(tx: Tx, grant_id: int, delta: int, entry_id: int, kind: str) -> None:
    """A move that does not change ``remaining`` itself (a pending grant entering the balance
    already holds its amount)."""
    _INSERT_MOVE.execute(
        tx.conn,
        {"grant_id": grant_id, "entry_id": entry_id, "kind": kind, "delta": delta}
        | {"created_at": tx.now},
    )
