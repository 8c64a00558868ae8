"""Loyalty migration 0009: a referral is *made*, then *approved*.

Revision ID: 0009
Revises: 0007

``loyalty_referrals`` gains ``made_at``, and ``approved_at`` may be empty (a referral made and
not approved yet). Referrals recorded before this revision were approved outright: their
``made_at`` is their approval time.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``made_at`` (filled from ``approved_at``) and let ``approved_at`` be empty."""
    with op.batch_alter_table("loyalty_referrals") as batch:
        batch.add_column(sa.Column("made_at", sa.DateTime(), nullable=True))
        batch.alter_column("approved_at", existing_type=sa.DateTime(), nullable=True)
    op.execute("UPDATE loyalty_referrals SET made_at = approved_at WHERE made_at IS NULL")


def downgrade() -> None:
    """Drop referrals not approved yet and ``made_at``; ``approved_at`` is required again."""
    op.execute("DELETE FROM loyalty_referrals WHERE approved_at IS NULL")
    with op.batch_alter_table("loyalty_referrals") as batch:
        batch.alter_column("approved_at", existing_type=sa.DateTime(), nullable=False)
        batch.drop_column("made_at")
