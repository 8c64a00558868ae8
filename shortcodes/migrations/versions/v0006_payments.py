"""Payments migration 0006: the ``stripe_*`` tables (customers, payments, subscriptions, events).

Revision ID: 0006
Revises: 0003

A frozen copy of the ``stripe_*`` tables of ``shortcodes.store.schema`` at this revision
(migrations never import the live schema). Issues 13 and 15 add 0004 and 0005 in parallel; the
merge re-chains ``down_revision`` after the last of them.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)

revision = "0006"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
BigId = BigInteger().with_variant(Integer(), "sqlite")


def _tables() -> list[Table]:
    meta = MetaData(naming_convention=NAMING)
    Table("contacts", meta, Column("id", Integer, primary_key=True))
    return [
        Table(
            "stripe_customers",
            meta,
            Column("contact_id", ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
            Column("customer_id", String(255), nullable=False, unique=True),
            Column("created_at", DateTime, nullable=False),
        ),
        Table(
            "stripe_payments",
            meta,
            Column("id", BigId, primary_key=True),
            Column("ref", String(255), nullable=False, unique=True),
            Column("contact_id", ForeignKey("contacts.id"), nullable=False),
            Column("product", String(100), nullable=False),
            Column("charge", String(255), nullable=True, index=True),
            Column("payment_intent", String(255), nullable=True, index=True),
            Column("subscription", String(255), nullable=True),
            Column("amount", BigInteger, nullable=False),
            Column("currency", String(3), nullable=False),
            Column("credits", BigInteger, nullable=False),
            Column("field", String(64), nullable=False),
            Column("refunded", BigInteger, nullable=False, server_default="0"),
            Column("reversed", BigInteger, nullable=False, server_default="0"),
            Column("disputed", Boolean, nullable=False, server_default=false()),
            Column("created_at", DateTime, nullable=False),
        ),
        Table(
            "stripe_subscriptions",
            meta,
            Column("subscription_id", String(255), primary_key=True),
            Column("contact_id", ForeignKey("contacts.id"), nullable=False),
            Column("product", String(100), nullable=False),
            Column("status", String(30), nullable=False),
            Column("event_created", BigInteger, nullable=False),
            Column("updated_at", DateTime, nullable=False),
        ),
        Table(
            "stripe_events",
            meta,
            Column("event_id", String(255), primary_key=True),
            Column("type", String(100), nullable=False),
            Column("created", BigInteger, nullable=False),
            Column("outcome", String(20), nullable=False),
            Column("message", Text, nullable=False, server_default=""),
            Column("received_at", DateTime, nullable=False),
            Index(None, "outcome", "received_at"),
            Index(None, "received_at"),
        ),
    ]


def upgrade() -> None:
    """Create the tables and their indexes."""
    bind = op.get_bind()
    for table in _tables():
        table.create(bind)


def downgrade() -> None:
    """Drop them."""
    bind = op.get_bind()
    for table in reversed(_tables()):
        table.drop(bind)
