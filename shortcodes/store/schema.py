"""Store schema: the tables of contacts, tags, credit accounts, the ledger, runs, events and outbox.

SQLAlchemy Core tables (no ORM: the ledger's hot path is a handful of guarded statements and Core
keeps them explicit). The Alembic migrations in ``shortcodes.migrations`` create exactly these
tables; ``tests/store/test_migrations.py`` checks the two never drift apart.

All times are stored as naive UTC on both databases, so comparisons such as ``expires_at > now``
mean the same on SQLite (text) and PostgreSQL (``timestamp``).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
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
    Text,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB

#: Constraint names are fixed so migrations and error handling can refer to them.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids for the
# append-only tables that grow without bound.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")

contacts = Table(
    "contacts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("name", String(200), nullable=False, server_default=""),
    Column("password_hash", String(255), nullable=True),
    Column("fields", Json, nullable=False),
    Column("created_at", DateTime, nullable=False),
)

tags = Table(
    "tags",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    # Tag names are unique case-insensitively: the casefolded name carries the constraint.
    Column("name_key", String(200), nullable=False, unique=True),
    Column("category", String(100), nullable=False, server_default=""),
    Column("created_at", DateTime, nullable=False),
)

contact_tags = Table(
    "contact_tags",
    metadata,
    Column("contact_id", ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
    Column("applied_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=True),
    Column("source", String(200), nullable=False, server_default=""),
    Index(None, "expires_at"),
)

credit_accounts = Table(
    "credit_accounts",
    metadata,
    Column("contact_id", ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
    Column("field", String(64), primary_key=True),
    Column("balance", BigInteger, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    CheckConstraint("balance >= 0", name="balance_nonnegative"),
)

operations = Table(
    "operations",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("key", String(200), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("contact_id", ForeignKey("contacts.id"), nullable=True),
    Column("fingerprint", String(64), nullable=False),
    Column("result", Json, nullable=False),
    Column("actor_kind", String(20), nullable=False),
    Column("actor_id", String(200), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

actionset_runs = Table(
    "actionset_runs",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("action", String(100), nullable=False),
    Column("contact_id", ForeignKey("contacts.id"), nullable=False),
    Column("params", Json, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("message", Text, nullable=False),
    Column("result", Json, nullable=False),
    Column("actor_kind", String(20), nullable=False),
    Column("actor_id", String(200), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Index(None, "contact_id", "id"),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("contact_id", ForeignKey("contacts.id"), nullable=False),
    Column("field", String(64), nullable=False),
    Column("delta", BigInteger, nullable=False),
    Column("balance_after", BigInteger, nullable=False),
    Column("reason", String(500), nullable=False),
    Column("actor_kind", String(20), nullable=False),
    Column("actor_id", String(200), nullable=False),
    # The operation's key plus the entry's position in it: an operation's entries can never be
    # written twice, even by a code path that forgot to check the operations table.
    Column("idempotency_key", String(220), nullable=False, unique=True),
    Column("operation_id", ForeignKey("operations.id"), nullable=True),
    Column("run_id", ForeignKey("actionset_runs.id"), nullable=True),
    # A refund reverses exactly the entries it names, each at most once.
    Column("reverses_id", ForeignKey("ledger_entries.id"), nullable=True, unique=True),
    Column("created_at", DateTime, nullable=False),
    CheckConstraint("delta <> 0", name="delta_nonzero"),
    CheckConstraint("balance_after >= 0", name="balance_after_nonnegative"),
    # No orphan entries: each belongs to exactly one ledger operation or one actionset run.
    CheckConstraint(
        "(operation_id IS NULL) <> (run_id IS NULL)", name="belongs_to_operation_or_run"
    ),
    Index(None, "contact_id", "field", "id"),
    Index(None, "contact_id", "id"),
)

events = Table(
    "events",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("contact_id", ForeignKey("contacts.id"), nullable=True),
    Column("run_id", ForeignKey("actionset_runs.id"), nullable=True),
    Column("data", Json, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Index(None, "kind", "id"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("contact_id", ForeignKey("contacts.id"), nullable=True),
    Column("run_id", ForeignKey("actionset_runs.id"), nullable=True),
    # One message per producing step: a replay can never queue it twice.
    Column("dedupe_key", String(220), nullable=False, unique=True),
    Column("payload", Json, nullable=False),
    Column("status", String(20), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("sent_at", DateTime, nullable=True),
    Column("created_at", DateTime, nullable=False),
    CheckConstraint("kind IN ('email', 'webhook')", name="kind_known"),
    Index(None, "status", "next_attempt_at"),
)

# Login attempts in the throttle's window (see throttle.py): claimed before the password is
# checked, kept (and marked failed) when it is wrong. Emails are stored as typed (normalized), not as contact ids, so
# unknown emails are counted exactly like known ones.
login_attempts = Table(
    "login_attempts",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("email", String(320), nullable=False),
    Column("address", String(64), nullable=False),
    Column("attempted_at", DateTime, nullable=False),
    # False while the password is being checked; True once it proved wrong.
    Column("failed", Boolean, nullable=False, server_default=false()),
    Index(None, "email", "attempted_at"),
    Index(None, "address", "attempted_at"),
    Index(None, "attempted_at"),
)
