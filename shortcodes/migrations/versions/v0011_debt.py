"""Debt migration 0011: a refund clawback may take a balance below zero, as a recorded debt.

Revision ID: 0011
Revises: 0010

- ``credit_accounts`` gets ``debt`` (0 for every existing balance); ``CHECK (balance >= 0)``
  becomes ``CHECK (debt >= 0)`` and ``CHECK (balance + debt >= 0)``: a balance is below zero
  only by its debt.
- ``ledger_entries`` gets ``debt_delta`` (0 for every existing entry); ``CHECK (balance_after
  >= 0)`` becomes the rule that a debt grows only by part of a negative entry and shrinks only
  by part of a positive one.
- ``grant_moves`` may be of kind ``settle`` (a credit paying a debt).

On SQLite the three tables are rebuilt in batch mode (copied, dropped, renamed) from frozen
copies of their definitions at 0007 (batch mode does not reflect CHECK constraints); the store's
upgrade runs it with foreign keys off (``ledger_entries`` is referenced) and checks them after.
On PostgreSQL the columns are added and the constraints swapped in place.
Existing rows satisfy the new constraints, so nothing else changes and ``verify`` agrees.
There is no downgrade: a debt could not be stored by the previous version.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None

DEBT_DELTA_RULE = (
    "(delta > 0 AND debt_delta <= 0 AND debt_delta >= -delta)"
    " OR (delta < 0 AND debt_delta >= 0 AND debt_delta <= -delta)"
)
OLD_KINDS = "kind IN ('grant', 'use', 'expire', 'refund', 'restore', 'opening')"
NEW_KINDS = "kind IN ('grant', 'use', 'expire', 'refund', 'restore', 'opening', 'settle')"
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _tables_at_0007() -> dict[str, sa.Table]:
    """The three tables as revisions 0001 and 0007 built them (SQLite's batch mode copies from
    these: it does not reflect CHECK constraints, which a rebuild must keep)."""
    meta = sa.MetaData()
    for name in ("contacts", "operations", "actionset_runs", "credit_grants"):
        sa.Table(name, meta, sa.Column("id", BigId, primary_key=True))
    accounts = sa.Table(
        "credit_accounts",
        meta,
        sa.Column("contact_id", sa.Integer, nullable=False),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("balance", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("contact_id", "field", name="pk_credit_accounts"),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name="fk_credit_accounts_contact_id_contacts",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("balance >= 0", name="ck_credit_accounts_balance_nonnegative"),
    )  # fmt: skip
    entries = sa.Table(
        "ledger_entries",
        meta,
        sa.Column("id", BigId, primary_key=True),
        sa.Column("contact_id", sa.Integer, nullable=False),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("delta", sa.BigInteger, nullable=False),
        sa.Column("balance_after", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("actor_kind", sa.String(20), nullable=False),
        sa.Column("actor_id", sa.String(200), nullable=False),
        sa.Column("idempotency_key", sa.String(220), nullable=False),
        sa.Column("operation_id", BigId, nullable=True),
        sa.Column("run_id", BigId, nullable=True),
        sa.Column("reverses_id", BigId, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_entries"),
        sa.UniqueConstraint("idempotency_key", name="uq_ledger_entries_idempotency_key"),
        sa.UniqueConstraint("reverses_id", name="uq_ledger_entries_reverses_id"),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name="fk_ledger_entries_contact_id_contacts"
        ),
        sa.ForeignKeyConstraint(
            ["operation_id"], ["operations.id"], name="fk_ledger_entries_operation_id_operations"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["actionset_runs.id"], name="fk_ledger_entries_run_id_actionset_runs"
        ),
        sa.ForeignKeyConstraint(
            ["reverses_id"], ["ledger_entries.id"],
            name="fk_ledger_entries_reverses_id_ledger_entries",
        ),
        sa.CheckConstraint("delta <> 0", name="ck_ledger_entries_delta_nonzero"),
        sa.CheckConstraint(
            "balance_after >= 0", name="ck_ledger_entries_balance_after_nonnegative"
        ),
        sa.CheckConstraint(
            "(operation_id IS NULL) <> (run_id IS NULL)",
            name="ck_ledger_entries_belongs_to_operation_or_run",
        ),
        sa.Index("ix_ledger_entries_contact_id_field_id", "contact_id", "field", "id"),
        sa.Index("ix_ledger_entries_contact_id_id", "contact_id", "id"),
    )  # fmt: skip
    moves = sa.Table(
        "grant_moves",
        meta,
        sa.Column("id", BigId, primary_key=True),
        sa.Column("grant_id", BigId, nullable=False),
        sa.Column("entry_id", BigId, nullable=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("delta", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_grant_moves"),
        sa.ForeignKeyConstraint(
            ["grant_id"], ["credit_grants.id"], name="fk_grant_moves_grant_id_credit_grants"
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["ledger_entries.id"], name="fk_grant_moves_entry_id_ledger_entries"
        ),
        sa.CheckConstraint("delta <> 0", name="ck_grant_moves_delta_nonzero"),
        sa.CheckConstraint(OLD_KINDS, name="ck_grant_moves_kind_known"),
        sa.Index("ix_grant_moves_grant_id_id", "grant_id", "id"),
        sa.Index("ix_grant_moves_entry_id", "entry_id"),
    )
    return {"credit_accounts": accounts, "ledger_entries": entries, "grant_moves": moves}


def upgrade() -> None:
    """Add the debt columns and swap the CHECK constraints (see the module docstring)."""
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite()
        return
    for table, column in (("credit_accounts", "debt"), ("ledger_entries", "debt_delta")):
        op.add_column(
            table, sa.Column(column, sa.BigInteger, nullable=False, server_default=sa.text("0"))
        )
    # Revision 0001 named its constraints twice over (the naming convention prefixed names that
    # were already full); a database made from the live schema has the short names.
    for table, old in (
        ("credit_accounts", "balance_nonnegative"),
        ("ledger_entries", "balance_after_nonnegative"),
        ("grant_moves", "kind_known"),
    ):
        for name in (f"ck_{table}_{old}", f"ck_{table}_ck_{table}_{old}"):
            op.execute(f'ALTER TABLE {table} DROP CONSTRAINT IF EXISTS "{name}"')
    for table, name, rule in _NEW_CHECKS:
        op.create_check_constraint(op.f(name), table, rule)


_NEW_CHECKS = (
    ("credit_accounts", "ck_credit_accounts_debt_nonnegative", "debt >= 0"),
    ("credit_accounts", "ck_credit_accounts_balance_covered", "balance + debt >= 0"),
    ("ledger_entries", "ck_ledger_entries_debt_delta_in_range", DEBT_DELTA_RULE),
    ("grant_moves", "ck_grant_moves_kind_known", NEW_KINDS),
)


def _rebuild_sqlite() -> None:
    old = _tables_at_0007()
    dropped = {
        "credit_accounts": "ck_credit_accounts_balance_nonnegative",
        "ledger_entries": "ck_ledger_entries_balance_after_nonnegative",
        "grant_moves": "ck_grant_moves_kind_known",
    }
    added = {"credit_accounts": "debt", "ledger_entries": "debt_delta"}
    for table, check in dropped.items():
        with op.batch_alter_table(table, copy_from=old[table], recreate="always") as batch:
            if table in added:
                batch.add_column(
                    sa.Column(
                        added[table], sa.BigInteger, nullable=False, server_default=sa.text("0")
                    )
                )
            batch.drop_constraint(op.f(check), type_="check")
            for owner, name, rule in _NEW_CHECKS:
                if owner == table:
                    batch.create_check_constraint(op.f(name), rule)
