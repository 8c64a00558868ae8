"""Grants migration 0007: every credit belongs to a grant; loyalty points move onto grants.

Revision ID: 0007
Revises: 0008

Creates ``credit_grants``, ``grant_moves`` and ``grant_alerts`` (a frozen copy of those tables of
``shortcodes.store.schema`` at this revision; migrations never import the live schema), then:

- every existing balance becomes one *opening* grant (source ``opening``, paid, no expiry) whose
  move has no ledger entry: the balance's entries are already in the ledger, nothing is written
  twice, and ``verify`` counts the opening move as the grant's start;
- every loyalty lot with points left becomes a grant of the ``Points`` field (source
  ``loyalty``, promotional): a pending lot a pending grant (it starts when the lot would have
  become available), an available lot an active grant, added to the ``Points`` balance by one
  ledger entry per contact (operation ``migration:0007:loyalty``);
- the per-contact loyalty totals keep only what grants cannot say (lifetime points and stage)
  in ``loyalty_stages``; ``loyalty_lots``, ``loyalty_moves`` and ``loyalty_accounts`` go.

There is no downgrade: lots moved onto grants are not rebuilt.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from alembic import op
from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

revision = "0007"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
BigId = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")
LOYALTY_FIELD = "Points"
OPERATION_KEY = "migration:0007:loyalty"
BOUNDARY_KEY = "migration:0007"


def _meta() -> MetaData:
    meta = MetaData(naming_convention=NAMING)
    for name in ("contacts", "operations", "actionset_runs", "ledger_entries"):
        Table(name, meta, Column("id", BigId if name != "contacts" else Integer, primary_key=True))
    return meta


def _grant_tables(meta: MetaData) -> list[Table]:
    grants = Table(
        "credit_grants",
        meta,
        Column("id", BigId, primary_key=True),
        Column("contact_id", ForeignKey("contacts.id"), nullable=False),
        Column("field", String(64), nullable=False),
        Column("source", String(20), nullable=False),
        Column("category", String(20), nullable=False),
        Column("priority", Integer, nullable=False),
        Column("amount", BigInteger, nullable=False),
        Column("remaining", BigInteger, nullable=False),
        Column("status", String(10), nullable=False),
        Column("starts_at", DateTime, nullable=True),
        Column("expires_at", DateTime, nullable=True),
        Column("operation_id", ForeignKey("operations.id"), nullable=True),
        Column("run_id", ForeignKey("actionset_runs.id"), nullable=True),
        Column("reason", String(500), nullable=False),
        Column("created_at", DateTime, nullable=False),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_in_range"),
        CheckConstraint("category IN ('paid', 'promotional')", name="category_known"),
        CheckConstraint("status IN ('pending', 'active', 'expired')", name="status_known"),
        Index(None, "contact_id", "field", "status"),
        Index(None, "status", "expires_at"),
        Index(None, "status", "starts_at"),
        Index(None, "operation_id"),
    )
    moves = Table(
        "grant_moves",
        meta,
        Column("id", BigId, primary_key=True),
        Column("grant_id", ForeignKey("credit_grants.id"), nullable=False),
        Column("entry_id", ForeignKey("ledger_entries.id"), nullable=True),
        Column("kind", String(10), nullable=False),
        Column("delta", BigInteger, nullable=False),
        Column("created_at", DateTime, nullable=False),
        CheckConstraint("delta <> 0", name="delta_nonzero"),
        CheckConstraint(
            "kind IN ('grant', 'use', 'expire', 'refund', 'restore', 'opening')",
            name="kind_known",
        ),
        Index(None, "grant_id", "id"),
        Index(None, "entry_id"),
    )
    alerts = Table(
        "grant_alerts",
        meta,
        Column("grant_id", ForeignKey("credit_grants.id"), primary_key=True),
        Column("rule", String(100), primary_key=True),
        Column("created_at", DateTime, nullable=False),
    )
    return [grants, moves, alerts]


def _stages(meta: MetaData) -> Table:
    return Table(
        "loyalty_stages",
        meta,
        Column("contact_id", ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
        Column("lifetime", BigInteger, nullable=False),
        Column("stage", String(60), nullable=False),
        Column("updated_at", DateTime, nullable=False),
        CheckConstraint("lifetime >= 0", name="nonnegative"),
    )


def upgrade() -> None:
    """Create the grant tables, open a grant per balance, move loyalty lots onto grants."""
    conn = op.get_bind()
    meta = _meta()
    grants, moves, alerts = _grant_tables(meta)
    stages = _stages(meta)
    for table in (grants, moves, alerts, stages):
        table.create(conn)
    reflected = MetaData()
    accounts = Table("credit_accounts", reflected, autoload_with=conn)
    now = datetime.now(UTC).replace(tzinfo=None)
    _mark_boundary(conn, reflected, now)
    _open_grants(conn, accounts, grants, moves, now)
    _move_loyalty(conn, reflected, accounts, grants, moves, stages, now)
    for name in ("loyalty_moves", "loyalty_lots", "loyalty_accounts"):
        op.drop_table(name)


def _mark_boundary(conn: Connection, reflected: MetaData, now: datetime) -> None:
    """Record the last entry written before grants existed (operation ``migration:0007``):
    ``verify`` asks every later entry to be matched by grant moves, not the earlier ones."""
    entries = Table("ledger_entries", reflected, autoload_with=conn)
    last = conn.execute(select(func.max(entries.c.id))).scalar()
    if last is None:
        return
    operations = Table("operations", reflected, autoload_with=conn)
    conn.execute(
        insert(operations).values(
            key=BOUNDARY_KEY, kind="migration", contact_id=None, fingerprint="0007",
            result={"last_entry": int(last)}, actor_kind="system", actor_id="migration 0007",
            created_at=now,
        )
    )  # fmt: skip


def _open_grants(
    conn: Connection, accounts: Table, grants: Table, moves: Table, now: datetime
) -> None:
    """One opening grant per positive balance, in one INSERT ... SELECT each (any size)."""
    positive = accounts.c.balance > 0
    conn.execute(
        insert(grants).from_select(
            [
                "contact_id", "field", "source", "category", "priority", "amount", "remaining",
                "status", "reason", "created_at",
            ],
            select(
                accounts.c.contact_id, accounts.c.field, _text("opening"), _text("paid"),
                _number(1), accounts.c.balance, accounts.c.balance, _text("active"),
                _text("opening balance (migration 0007)"), _time(now),
            ).where(positive),
        )
    )  # fmt: skip
    conn.execute(
        insert(moves).from_select(
            ["grant_id", "kind", "delta", "created_at"],
            select(grants.c.id, _text("opening"), grants.c.amount, _time(now)).where(
                grants.c.source == "opening"
            ),
        )
    )


def _move_loyalty(
    conn: Connection,
    reflected: MetaData,
    accounts: Table,
    grants: Table,
    moves: Table,
    stages: Table,
    now: datetime,
) -> None:
    lots = Table("loyalty_lots", reflected, autoload_with=conn)
    totals = Table("loyalty_accounts", reflected, autoload_with=conn)
    conn.execute(
        insert(stages).from_select(
            ["contact_id", "lifetime", "stage", "updated_at"],
            select(totals.c.contact_id, totals.c.lifetime, totals.c.stage, totals.c.updated_at),
        )
    )
    rows = conn.execute(
        select(lots)
        .where((lots.c.remaining > 0) & (lots.c.status != "expired"))
        .order_by(lots.c.id)
    ).all()
    if not rows:
        return
    operations = Table("operations", reflected, autoload_with=conn)
    entries = Table("ledger_entries", reflected, autoload_with=conn)
    op_id = conn.execute(
        insert(operations)
        .values(
            key=OPERATION_KEY, kind="migration", contact_id=None, fingerprint="0007",
            result={}, actor_kind="system", actor_id="migration 0007", created_at=now,
        )
        .returning(operations.c.id)
    ).scalar_one()  # fmt: skip
    available: dict[int, list[tuple[int, Any]]] = {}
    for lot in rows:
        active = lot.status == "available"
        grant_id = conn.execute(
            insert(grants)
            .values(
                contact_id=lot.contact_id, field=LOYALTY_FIELD, source="loyalty",
                category="promotional", priority=0, amount=lot.remaining,
                remaining=lot.remaining, status="active" if active else "pending",
                starts_at=lot.available_at, expires_at=lot.expires_at,
                reason=lot.reason or "loyalty points", created_at=lot.earned_at,
            )
            .returning(grants.c.id)
        ).scalar_one()  # fmt: skip
        if active:
            available.setdefault(lot.contact_id, []).append((int(grant_id), lot.remaining))
    for contact_id, held in sorted(available.items()):
        total = sum(int(n) for _, n in held)
        conn.execute(
            insert(accounts).values(
                contact_id=contact_id, field=LOYALTY_FIELD, balance=total, updated_at=now
            )
        )
        entry_id = conn.execute(
            insert(entries)
            .values(
                contact_id=contact_id, field=LOYALTY_FIELD, delta=total, balance_after=total,
                reason="loyalty points (migration 0007)", actor_kind="system",
                actor_id="migration 0007", idempotency_key=f"{OPERATION_KEY}:{contact_id}",
                operation_id=op_id, created_at=now,
            )
            .returning(entries.c.id)
        ).scalar_one()  # fmt: skip
        conn.execute(
            insert(moves),
            [
                {
                    "grant_id": g,
                    "entry_id": entry_id,
                    "kind": "grant",
                    "delta": n,
                    "created_at": now,
                }
                for g, n in held
            ],
        )


def _text(value: str) -> Any:
    return literal(value, String())


def _number(value: int) -> Any:
    return literal(value, Integer())


def _time(value: datetime) -> Any:
    return literal(value, DateTime())


def downgrade() -> None:
    """Refused: loyalty lots cannot be rebuilt from grants without losing their history."""
    raise NotImplementedError("migration 0007 cannot be downgraded (loyalty lots moved to grants)")
