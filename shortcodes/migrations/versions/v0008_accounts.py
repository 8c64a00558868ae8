"""Accounts migration 0008: ``sessions``, ``signups``, ``mail_requests`` and ``audit_log``.

Revision ID: 0008
Revises: 0006

A frozen copy of those tables of ``shortcodes.store.schema`` at this revision (migrations never
import the live schema).
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
)
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
BigId = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")


def _tables() -> list[Table]:
    meta = MetaData(naming_convention=NAMING)
    Table("contacts", meta, Column("id", Integer, primary_key=True))
    return [
        Table(
            "sessions",
            meta,
            Column("id", String(64), primary_key=True),
            Column("contact_id", ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
            Column("created_at", DateTime, nullable=False),
            Column("expires_at", DateTime, nullable=False),
            Index(None, "contact_id"),
            Index(None, "expires_at"),
        ),
        Table(
            "signups",
            meta,
            Column("id", BigId, primary_key=True),
            Column("email", String(320), nullable=False),
            Column("name", String(200), nullable=False),
            Column("password_hash", String(255), nullable=False),
            Column("created_at", DateTime, nullable=False),
            Index(None, "email"),
            Index(None, "created_at"),
        ),
        Table(
            "mail_requests",
            meta,
            Column("id", BigId, primary_key=True),
            Column("kind", String(20), nullable=False),
            Column("email", String(320), nullable=False),
            Column("address", String(64), nullable=False),
            Column("created_at", DateTime, nullable=False),
            Index(None, "email", "created_at"),
            Index(None, "address", "created_at"),
            Index(None, "created_at"),
        ),
        Table(
            "audit_log",
            meta,
            Column("id", BigId, primary_key=True),
            Column("actor_kind", String(20), nullable=False),
            Column("actor_id", String(200), nullable=False),
            Column("action", String(60), nullable=False),
            Column("contact_id", ForeignKey("contacts.id", ondelete="SET NULL"), nullable=True),
            Column("detail", Json, nullable=False),
            Column("created_at", DateTime, nullable=False),
            Index(None, "contact_id", "id"),
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
