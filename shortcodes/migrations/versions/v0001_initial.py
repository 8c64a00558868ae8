"""Store migration 0001: contacts, tags, credit accounts, ledger, runs, events and outbox.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of the column types of this revision (never import the live schema here).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    """Create every table of the first schema."""
    _contacts_and_tags()
    _ledger()
    _runs_events_outbox()


def _contacts_and_tags() -> None:
    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("fields", Json, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_contacts"),
        sa.UniqueConstraint("email", name="uq_contacts_email"),
    )
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("name_key", sa.String(200), nullable=False),
        sa.Column("category", sa.String(100), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tags"),
        sa.UniqueConstraint("name_key", name="uq_tags_name_key"),
    )
    op.create_table(
        "contact_tags",
        sa.Column("contact_id", sa.Integer, nullable=False),
        sa.Column("tag_id", sa.Integer, nullable=False),
        sa.Column("applied_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=True),
        sa.Column("source", sa.String(200), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("contact_id", "tag_id", name="pk_contact_tags"),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name="fk_contact_tags_contact_id_contacts",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tags.id"], name="fk_contact_tags_tag_id_tags", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_contact_tags_expires_at", "contact_tags", ["expires_at"])


def _ledger() -> None:
    op.create_table(
        "credit_accounts",
        sa.Column("contact_id", sa.Integer, nullable=False),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("balance", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("contact_id", "field", name="pk_credit_accounts"),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name="fk_credit_accounts_contact_id_contacts",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("balance >= 0", name="ck_credit_accounts_balance_nonnegative"),
    )
    op.create_table(
        "operations",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("contact_id", sa.Integer, nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("result", Json, nullable=False),
        sa.Column("actor_kind", sa.String(20), nullable=False),
        sa.Column("actor_id", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_operations"),
        sa.UniqueConstraint("key", name="uq_operations_key"),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name="fk_operations_contact_id_contacts"
        ),
    )
    _actionset_runs()
    _ledger_entries()


def _actionset_runs() -> None:
    op.create_table(
        "actionset_runs",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("contact_id", sa.Integer, nullable=False),
        sa.Column("params", Json, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("result", Json, nullable=False),
        sa.Column("actor_kind", sa.String(20), nullable=False),
        sa.Column("actor_id", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_actionset_runs"),
        sa.UniqueConstraint("idempotency_key", name="uq_actionset_runs_idempotency_key"),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name="fk_actionset_runs_contact_id_contacts"
        ),
    )
    op.create_index("ix_actionset_runs_contact_id_id", "actionset_runs", ["contact_id", "id"])


def _ledger_entries() -> None:
    op.create_table(
        "ledger_entries",
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
            ["reverses_id"],
            ["ledger_entries.id"],
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
    )
    op.create_index(
        "ix_ledger_entries_contact_id_field_id", "ledger_entries", ["contact_id", "field", "id"]
    )
    op.create_index("ix_ledger_entries_contact_id_id", "ledger_entries", ["contact_id", "id"])


def _runs_events_outbox() -> None:
    op.create_table(
        "events",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("contact_id", sa.Integer, nullable=True),
        sa.Column("run_id", BigId, nullable=True),
        sa.Column("data", Json, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name="fk_events_contact_id_contacts"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["actionset_runs.id"], name="fk_events_run_id_actionset_runs"
        ),
    )
    op.create_index("ix_events_kind_id", "events", ["kind", "id"])
    op.create_table(
        "outbox",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("contact_id", sa.Integer, nullable=True),
        sa.Column("run_id", BigId, nullable=True),
        sa.Column("dedupe_key", sa.String(220), nullable=False),
        sa.Column("payload", Json, nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("sent_at", sa.DateTime, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name="fk_outbox_contact_id_contacts"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["actionset_runs.id"], name="fk_outbox_run_id_actionset_runs"
        ),
        sa.CheckConstraint("kind IN ('email', 'webhook')", name="ck_outbox_kind_known"),
    )
    op.create_index("ix_outbox_status_next_attempt_at", "outbox", ["status", "next_attempt_at"])


def downgrade() -> None:
    """Drop every table, dependents first."""
    for table in (
        "outbox",
        "events",
        "ledger_entries",
        "actionset_runs",
        "operations",
        "credit_accounts",
        "contact_tags",
        "tags",
        "contacts",
    ):
        op.drop_table(table)
