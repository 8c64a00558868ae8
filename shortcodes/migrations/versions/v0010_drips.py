"""Drip migration 0010: ``drip_states`` and ``drip_releases`` (per-member drip positions).

Revision ID: 0010
Revises: 0009 (loyalty referrals)

A frozen copy of those tables of ``shortcodes.store.schema`` at this revision (migrations never
import the live schema).
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
)

revision = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _tables() -> list[Table]:
    meta = MetaData(naming_convention=NAMING)
    Table("contacts", meta, Column("id", Integer, primary_key=True))
    return [
        Table(
            "drip_states",
            meta,
            Column("rule", String(100), primary_key=True),
            Column("contact_id", ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
            Column("started_at", DateTime, nullable=False),
            Column("since", DateTime, nullable=False),
            Column("active", Boolean, nullable=False),
            Column("active_us", BigInteger, nullable=False),
            Column("next_at", DateTime, nullable=True),
            Column("status", String(20), nullable=False),
            CheckConstraint("status IN ('running', 'paused', 'done')", name="status_known"),
            CheckConstraint("active_us >= 0", name="active_nonnegative"),
            Index(None, "next_at"),
            Index(None, "contact_id"),
        ),
        Table(
            "drip_releases",
            meta,
            Column("rule", String(100), primary_key=True),
            Column("contact_id", ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
            Column("item", String(100), primary_key=True),
            Column("released_at", DateTime, nullable=False),
            Column("active_us", BigInteger, nullable=False),
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
