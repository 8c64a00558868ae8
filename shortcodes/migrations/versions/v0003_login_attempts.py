"""Login throttle migration 0003: the ``login_attempts`` table.

Revision ID: 0003
Revises: 0002

A frozen copy of ``shortcodes.store.schema.login_attempts`` at this revision (migrations never
import the live schema).
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    false,
)

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}
BigId = BigInteger().with_variant(Integer(), "sqlite")


def _table() -> Table:
    return Table(
        "login_attempts",
        MetaData(naming_convention=NAMING),
        Column("id", BigId, primary_key=True),
        Column("email", String(320), nullable=False),
        Column("address", String(64), nullable=False),
        Column("attempted_at", DateTime, nullable=False),
        Column("failed", Boolean, nullable=False, server_default=false()),
        Index(None, "email", "attempted_at"),
        Index(None, "address", "attempted_at"),
        Index(None, "attempted_at"),
    )


def upgrade() -> None:
    """Create the table and its indexes."""
    _table().create(op.get_bind())


def downgrade() -> None:
    """Drop it."""
    _table().drop(op.get_bind())
