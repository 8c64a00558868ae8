"""Loyalty migration 0009: a referral is *made*, then *approved*; lifetime points keep their past.

Revision ID: 0009
Revises: 0007

- ``loyalty_referrals`` gains ``made_at``, and ``approved_at`` may be empty (a referral made and
  not approved yet). Referrals recorded before this revision were approved outright: their
  ``made_at`` is their approval time.
- ``loyalty_stages`` gains ``baseline``: the lifetime points no grant move records (migration
  0007 moved only the loyalty lots with points left onto grants, while the stored lifetime
  counted every lot), so lifetime = baseline + the loyalty points that entered the balance, and
  a stage reached before the upgrade never falls back.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

#: What the loyalty grants of a stage row's contact put into the balance.
_ENTERED = """(SELECT COALESCE(SUM(m.delta), 0) FROM grant_moves m
    JOIN credit_grants g ON g.id = m.grant_id
    WHERE g.contact_id = loyalty_stages.contact_id AND g.field = 'Points'
      AND g.source = 'loyalty' AND m.kind = 'grant')"""


def upgrade() -> None:
    """Add ``made_at`` (filled from ``approved_at``), let ``approved_at`` be empty, and add
    ``baseline`` (the stored lifetime less what the grants record)."""
    with op.batch_alter_table("loyalty_referrals") as batch:
        batch.add_column(sa.Column("made_at", sa.DateTime(), nullable=True))
        batch.alter_column("approved_at", existing_type=sa.DateTime(), nullable=True)
    op.execute("UPDATE loyalty_referrals SET made_at = approved_at WHERE made_at IS NULL")
    with op.batch_alter_table("loyalty_stages") as batch:
        batch.add_column(sa.Column("baseline", sa.BigInteger(), nullable=False, server_default="0"))
    op.execute(
        f"UPDATE loyalty_stages SET baseline = CASE WHEN lifetime > {_ENTERED} "  # noqa: S608
        f"THEN lifetime - {_ENTERED} ELSE 0 END"
    )


def downgrade() -> None:
    """Drop ``baseline``, referrals not approved yet and ``made_at``."""
    with op.batch_alter_table("loyalty_stages") as batch:
        batch.drop_column("baseline")
    op.execute("DELETE FROM loyalty_referrals WHERE approved_at IS NULL")
    with op.batch_alter_table("loyalty_referrals") as batch:
        batch.alter_column("approved_at", existing_type=sa.DateTime(), nullable=False)
        batch.drop_column("made_at")
