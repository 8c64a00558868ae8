"""Store schema: every table, on one ``MetaData``: contacts, tags, credit accounts, the ledger,
runs, events, outbox, automations and loyalty.

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
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
    text,
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
    # What a refund clawback took below zero (migration 0011, policy ``clawback = "below_zero"``)
    # and the next credit settles: the balance is what the active grants hold minus the debt,
    # so it is below zero only by a recorded debt, never by an overdraft.
    Column("debt", BigInteger, nullable=False, server_default=text("0")),
    CheckConstraint("debt >= 0", name="debt_nonnegative"),
    CheckConstraint("balance + debt >= 0", name="balance_covered"),
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

#: A debt grows only by part of a negative entry and shrinks only by part of a positive one.
DEBT_DELTA_RULE = (
    "(delta > 0 AND debt_delta <= 0 AND debt_delta >= -delta)"
    " OR (delta < 0 AND debt_delta >= 0 AND debt_delta <= -delta)"
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
    # How the entry changed the account's debt (migration 0011): a refund clawback below zero
    # adds to it (a part of a negative delta), a credit settles it (a part of a positive one);
    # so delta == the entry's grant moves - debt_delta, which ``verify`` checks.
    Column("debt_delta", BigInteger, nullable=False, server_default=text("0")),
    CheckConstraint("delta <> 0", name="delta_nonzero"),
    CheckConstraint(DEBT_DELTA_RULE, name="debt_delta_in_range"),
    # No orphan entries: each belongs to exactly one ledger operation or one actionset run.
    CheckConstraint(
        "(operation_id IS NULL) <> (run_id IS NULL)", name="belongs_to_operation_or_run"
    ),
    Index(None, "contact_id", "field", "id"),
    Index(None, "contact_id", "id"),
)

# -- credit grants (created by migration 0007) -------------------------------------------------
# Every credit belongs to a grant; ``credit_accounts.balance`` is the sum of ``remaining`` over
# the contact's *active* grants of the field. A grant is ``pending`` until ``starts_at`` (not in
# the balance yet), ``active``, then ``expired`` (what was left left the balance as a ledger
# entry). ``grant_moves`` records every change of a grant's ``remaining`` and the ledger entry it
# belongs to: a debit's moves are the grants it consumed; ``verify`` checks that they add up.
credit_grants = Table(
    "credit_grants",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("contact_id", ForeignKey("contacts.id"), nullable=False),
    Column("field", String(64), nullable=False),
    Column("source", String(20), nullable=False),
    Column("category", String(20), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("remaining", BigInteger, nullable=False),
    Column("status", String(10), nullable=False),
    Column("starts_at", DateTime, nullable=True),
    Column("expires_at", DateTime, nullable=True),
    # The operation or run that created it (a refund by grant finds a purchase's grants here).
    Column("operation_id", ForeignKey("operations.id"), nullable=True),
    Column("run_id", ForeignKey("actionset_runs.id"), nullable=True),
    Column("reason", String(500), nullable=False),
    Column("created_at", DateTime, nullable=False),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_in_range"),
    CheckConstraint("category IN ('paid', 'promotional')", name="category_known"),
    CheckConstraint("status IN ('pending', 'active', 'expired')", name="status_known"),
    Index(None, "contact_id", "field", "status"),
    Index(None, "status", "expires_at"),
    Index(None, "status", "starts_at"),
    Index(None, "operation_id"),
)

grant_moves = Table(
    "grant_moves",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("grant_id", ForeignKey("credit_grants.id"), nullable=False),
    # NULL only for the opening grant migration 0007 made from a balance (no entry of its own).
    Column("entry_id", ForeignKey("ledger_entries.id"), nullable=True),
    Column("kind", String(10), nullable=False),
    Column("delta", BigInteger, nullable=False),
    Column("created_at", DateTime, nullable=False),
    CheckConstraint("delta <> 0", name="delta_nonzero"),
    CheckConstraint(
        "kind IN ('grant', 'use', 'expire', 'refund', 'restore', 'opening', 'settle')",
        name="kind_known",
    ),
    Index(None, "grant_id", "id"),
    Index(None, "entry_id"),
)

# One row per (grant, rule) a ``credits_expiring`` rule was told about: the worker's alert pass
# records each grant's ``credits_expiring`` event once per rule, whatever it is killed by.
grant_alerts = Table(
    "grant_alerts",
    metadata,
    Column("grant_id", ForeignKey("credit_grants.id"), primary_key=True),
    Column("rule", String(100), primary_key=True),
    Column("created_at", DateTime, nullable=False),
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


# -- automations and loyalty (created by migration 0002) ---------------------------------------
# Lease expiry is wall-clock seconds (Float): a lease is about whether a *process* is alive, not
# about the site's (movable) business clock.
# - auto_event_marks: store events the dispatcher has turned into rule runs (same transaction).
# - auto_dispatch: the scan floor below which every event is known to be dispatched.
# - auto_runs: one run of one rule for one contact, unique per dedupe_key (rule + event); data
#   keeps the trigger's data and a snapshot of the rule's steps.
# - auto_steps: one row per step of a run, unique per key; executed when due, marked done in the
#   transaction that performed it.
# - auto_rule_state: the contacts a field_above rule has fired for (it fires once each).
# - auto_leases: the SQLite worker lease. auto_deliveries: every outbox delivery attempt.
# - loyalty_stages: lifetime points and stage; loyalty_referrals: referrals made and approved.

auto_event_marks = Table(
    "auto_event_marks",
    metadata,
    Column("event_id", BigId, primary_key=True, autoincrement=False),
    Column("runs", Integer, nullable=False),
    Column("marked_at", Float, nullable=False),
)

auto_dispatch = Table(
    "auto_dispatch",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("floor", BigInteger, nullable=False),
    Column("candidate", BigInteger, nullable=False),
    Column("candidate_at", Float, nullable=False),
)

auto_runs = Table(
    "auto_runs",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("rule", String(100), nullable=False),
    Column("contact_id", ForeignKey(contacts.c.id, ondelete="CASCADE"), nullable=False),
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

auto_steps = Table(
    "auto_steps",
    metadata,
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

auto_rule_state = Table(
    "auto_rule_state",
    metadata,
    Column("rule", String(100), primary_key=True),
    Column("contact_id", ForeignKey(contacts.c.id, ondelete="CASCADE"), primary_key=True),
    Column("above", Boolean, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

auto_leases = Table(
    "auto_leases",
    metadata,
    Column("name", String(60), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires_at", Float, nullable=False),
)

auto_deliveries = Table(
    "auto_deliveries",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("outbox_id", ForeignKey(outbox.c.id, ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("detail", Text, nullable=False),
    Column("worker", String(120), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Index(None, "outbox_id", "id"),
)

# Drip sequences (created by migration 0010): one row per member and drip rule, and one per
# item released to them. ``drip_releases`` is keyed by (rule, contact, item), so an item is
# released once whatever runs the worker or replays an event; ``drip_states`` keeps the position:
# active time banked (microseconds) up to ``since``, whether access held then, and when the
# worker must look next (``next_at``; NULL while paused or finished).
drip_states = Table(
    "drip_states",
    metadata,
    Column("rule", String(100), primary_key=True),
    Column("contact_id", ForeignKey(contacts.c.id, ondelete="CASCADE"), primary_key=True),
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
)

drip_releases = Table(
    "drip_releases",
    metadata,
    Column("rule", String(100), primary_key=True),
    Column("contact_id", ForeignKey(contacts.c.id, ondelete="CASCADE"), primary_key=True),
    Column("item", String(100), primary_key=True),
    Column("released_at", DateTime, nullable=False),
    Column("active_us", BigInteger, nullable=False),
)

# Loyalty points are grants of the ``Points`` credit field (migration 0007); what grants cannot
# say, the lifetime points that set the stage, is kept per contact here.
loyalty_stages = Table(
    "loyalty_stages",
    metadata,
    Column("contact_id", ForeignKey(contacts.c.id, ondelete="CASCADE"), primary_key=True),
    Column("lifetime", BigInteger, nullable=False),
    Column("stage", String(60), nullable=False),
    Column("updated_at", DateTime, nullable=False),
    # Lifetime points from before grants existed, that no grant move records (migration 0009):
    # lifetime = baseline + every loyalty point that entered the balance since.
    Column("baseline", BigInteger, nullable=False, server_default="0"),
    CheckConstraint("lifetime >= 0", name="nonnegative"),
)

loyalty_referrals = Table(
    "loyalty_referrals",
    metadata,
    Column("referred_id", ForeignKey(contacts.c.id, ondelete="CASCADE"), primary_key=True),
    Column("referrer_id", ForeignKey(contacts.c.id, ondelete="CASCADE"), nullable=False),
    # Made, then approved (migration 0009): approved_at stays empty until the approval.
    Column("made_at", DateTime, nullable=True),
    Column("approved_at", DateTime, nullable=True),
    CheckConstraint("referred_id <> referrer_id", name="not_self"),
)


# -- payments through Stripe (created by migration 0006) ---------------------------------------
# - stripe_customers: the Stripe customer of each contact (recorded when it first buys).
# - stripe_payments: one row per fulfilled payment, unique per Checkout Session or invoice
#   (``ref``), so a second event for the same invoice finds it and adds nothing; ``refunded``
#   is the cumulative amount refunded so far (minor units), ``reversed`` the credits taken back.
# - stripe_subscriptions: each subscription's last known status and the ``created`` time of the
#   event that set it, so an older event arriving late cannot undo a newer one.
# - stripe_events: every verified event received, with its outcome (applied, ignored, deferred,
#   failed), for the admin's payment-health view and for reconcile.
stripe_customers = Table(
    "stripe_customers",
    metadata,
    Column("contact_id", ForeignKey(contacts.c.id, ondelete="CASCADE"), primary_key=True),
    Column("customer_id", String(255), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
)

stripe_payments = Table(
    "stripe_payments",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("ref", String(255), nullable=False, unique=True),
    Column("contact_id", ForeignKey(contacts.c.id), nullable=False),
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
)

stripe_subscriptions = Table(
    "stripe_subscriptions",
    metadata,
    Column("subscription_id", String(255), primary_key=True),
    Column("contact_id", ForeignKey(contacts.c.id), nullable=False),
    Column("product", String(100), nullable=False),
    Column("status", String(30), nullable=False),
    Column("event_created", BigInteger, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

stripe_events = Table(
    "stripe_events",
    metadata,
    Column("event_id", String(255), primary_key=True),
    Column("type", String(100), nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("message", Text, nullable=False, server_default=""),
    Column("received_at", DateTime, nullable=False),
    Index(None, "outcome", "received_at"),
    Index(None, "received_at"),
)


# -- accounts and the admin console (created by migration 0008) ---------------------------------
# - sessions: one row per logged-in browser. The cookie carries a random token; the row is keyed
#   by its SHA-256, so a copy of the table logs nobody in. Deleting the row ends the session
#   (logout, password change, "log out everywhere"); one primary-key read per request checks it.
# - signups: sign-ups waiting for their emailed verification link; the contact is created only
#   when the link is followed, so an unverified address never becomes an account.
# - mail_requests: emails the sign-up and reset forms sent, counted per address and per email to
#   rate-limit them (nobody can use the forms to flood an inbox).
# - audit_log: what admins did in the console that is not a ledger entry (tags, locks, sessions),
#   with the admin as actor.
sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("contact_id", ForeignKey(contacts.c.id, ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Index(None, "contact_id"),
    Index(None, "expires_at"),
)

signups = Table(
    "signups",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("email", String(320), nullable=False),
    Column("name", String(200), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Index(None, "email"),
    Index(None, "created_at"),
)

mail_requests = Table(
    "mail_requests",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("email", String(320), nullable=False),
    Column("address", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Index(None, "email", "created_at"),
    Index(None, "address", "created_at"),
    Index(None, "created_at"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("actor_kind", String(20), nullable=False),
    Column("actor_id", String(200), nullable=False),
    Column("action", String(60), nullable=False),
    Column("contact_id", ForeignKey(contacts.c.id, ondelete="SET NULL"), nullable=True),
    Column("detail", Json, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Index(None, "contact_id", "id"),
)
