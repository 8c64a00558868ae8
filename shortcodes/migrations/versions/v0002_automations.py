"""Automations migration 0002: rule runs and steps, dispatch marks, leases, delivery log, loyalty.

Revision ID: 0002
Revises: 0001

The tables are a frozen copy of ``shortcodes.automations.schema`` at this revision (migrations
never import the live schema), built on a private MetaData and created on the migration's own
connection.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision: str | None = "0001"
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
NAMES = (
    "auto_event_marks",
    "auto_dispatch",
    "auto_runs",
    "auto_steps",
    "auto_rule_state",
    "auto_leases",
    "auto_deliveries",
    "loyalty_lots",
    "loyalty_accounts",
    "loyalty_moves",
    "loyalty_referrals",
)


def _tables() -> MetaData:
    md = MetaData(naming_convention=NAMING)
    # The store's tables these refer to, as stubs (only their key columns matter here).
    Table("contacts", md, Column("id", Integer, primary_key=True))
    Table("outbox", md, Column("id", BigId, primary_key=True))
    Table(
        "auto_event_marks",
        md,
        Column("event_id", BigId, primary_key=True, autoincrement=False),
        Column("runs", Integer, nullable=False),
        Column("marked_at", Float, nullable=False),
    )

    Table(
        "auto_dispatch",
        md,
        Column("name", String(40), primary_key=True),
        Column("floor", BigInteger, nullable=False),
        Column("candidate", BigInteger, nullable=False),
        Column("candidate_at", Float, nullable=False),
    )

    Table(
        "auto_runs",
        md,
        Column("id", BigId, primary_key=True),
        Column("rule", String(100), nullable=False),
        Column("contact_id", ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
        Column("event_id", BigInteger, nullable=True),
        Column("dedupe_key", String(250), nullable=False, unique=True),
        Column("status", String(20), nullable=False),
        Column("data", Json, nullable=False),
        Column("message", Text, nullable=False, server_default=""),
        Column("created_at", DateTime, nullable=False),
        Column("finished_at", DateTime, nullable=True),
        CheckConstraint("status IN ('running', 'done', 'failed', 'skipped')", name="status_known"),
        Index(None, "contact_id", "id"),
        Index(None, "rule", "id"),
    )

    Table(
        "auto_steps",
        md,
        Column("id", BigId, primary_key=True),
        Column("run_id", ForeignKey("auto_runs.id", ondelete="CASCADE"), nullable=False),
        Column("key", String(250), nullable=False, unique=True),
        Column("idx", Integer, nullable=False),
        Column("kind", String(40), nullable=False),
        Column("args", Json, nullable=False),
        Column("contact_id", Integer, nullable=False),
        Column("due_at", DateTime, nullable=False),
        Column("status", String(20), nullable=False),
        Column("result", Text, nullable=False, server_default=""),
        Column("done_at", DateTime, nullable=True),
        Column("worker", String(120), nullable=False, server_default=""),
        CheckConstraint("status IN ('pending', 'done', 'failed')", name="status_known"),
        Index(None, "status", "due_at"),
        Index(None, "run_id", "idx"),
    )

    Table(
        "auto_rule_state",
        md,
        Column("rule", String(100), primary_key=True),
        Column("contact_id", ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
        Column("above", Boolean, nullable=False),
        Column("updated_at", DateTime, nullable=False),
    )

    Table(
        "auto_leases",
        md,
        Column("name", String(60), primary_key=True),
        Column("holder", String(200), nullable=False),
        Column("expires_at", Float, nullable=False),
    )

    Table(
        "auto_deliveries",
        md,
        Column("id", BigId, primary_key=True),
        Column("outbox_id", ForeignKey("outbox.id", ondelete="CASCADE"), nullable=False),
        Column("attempt", Integer, nullable=False),
        Column("ok", Boolean, nullable=False),
        Column("detail", Text, nullable=False),
        Column("worker", String(120), nullable=False),
        Column("created_at", DateTime, nullable=False),
        Index(None, "outbox_id", "id"),
    )

    Table(
        "loyalty_lots",
        md,
        Column("id", BigId, primary_key=True),
        Column("contact_id", ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
        Column("key", String(250), nullable=False, unique=True),
        Column("points", BigInteger, nullable=False),
        Column("remaining", BigInteger, nullable=False),
        Column("status", String(20), nullable=False),
        Column("reason", String(300), nullable=False),
        Column("earned_at", DateTime, nullable=False),
        Column("available_at", DateTime, nullable=False),
        Column("expires_at", DateTime, nullable=False),
        CheckConstraint("points > 0", name="points_positive"),
        CheckConstraint("remaining >= 0 AND remaining <= points", name="remaining_in_range"),
        CheckConstraint("status IN ('pending', 'available', 'expired')", name="status_known"),
        Index(None, "contact_id", "status", "expires_at"),
        Index(None, "status", "available_at"),
        Index(None, "status", "expires_at"),
    )

    Table(
        "loyalty_accounts",
        md,
        Column("contact_id", ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
        Column("pending", BigInteger, nullable=False),
        Column("available", BigInteger, nullable=False),
        Column("lifetime", BigInteger, nullable=False),
        Column("stage", String(60), nullable=False),
        Column("updated_at", DateTime, nullable=False),
        CheckConstraint("pending >= 0 AND available >= 0 AND lifetime >= 0", name="nonnegative"),
    )

    Table(
        "loyalty_moves",
        md,
        Column("id", BigId, primary_key=True),
        Column("contact_id", ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
        Column("lot_id", ForeignKey("loyalty_lots.id", ondelete="CASCADE"), nullable=False),
        Column("kind", String(20), nullable=False),
        Column("delta", BigInteger, nullable=False),
        Column("key", String(260), nullable=False, unique=True),
        Column("created_at", DateTime, nullable=False),
        Index(None, "contact_id", "id"),
    )

    Table(
        "loyalty_referrals",
        md,
        Column("referred_id", ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
        Column("referrer_id", ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
        Column("approved_at", DateTime, nullable=False),
        CheckConstraint("referred_id <> referrer_id", name="not_self"),
    )

    return md


def upgrade() -> None:
    """Create the automations and loyalty tables."""
    md = _tables()
    md.create_all(op.get_bind(), tables=[md.tables[n] for n in NAMES])


def downgrade() -> None:
    """Drop them, dependents first."""
    md = _tables()
    md.drop_all(op.get_bind(), tables=[md.tables[n] for n in NAMES])
