"""Automations schema: rule runs and their steps, dispatch marks, worker leases, delivery log, loyalty.

SQLAlchemy Core tables on their own ``MetaData`` (same naming convention as the store's), created
by migration ``0002``. Business times are naive UTC like the store's; lease expiry is wall-clock
seconds (``Float``) because a lease is about whether a *process* is alive, not about the site's
(movable) business clock.

- ``auto_event_marks``: one row per store event the dispatcher has turned into rule runs; written
  in the same transaction as the runs, so an event is dispatched exactly once.
- ``auto_dispatch``: the scan floor below which every event is known to be dispatched.
- ``auto_runs``: one run of one rule for one contact, unique per ``dedupe_key`` (rule + event).
  ``data`` keeps the trigger's data and a snapshot of the rule's steps.
- ``auto_steps``: one row per step of a run, unique per ``key``; the worker executes a pending
  row whose ``due_at`` has come and marks it done in the transaction that performed it.
- ``auto_rule_state``: the contacts a ``field_above`` rule has fired for (it fires once each).
- ``auto_leases``: the SQLite worker lease.
- ``auto_deliveries``: every outbox delivery attempt (the delivery log).
- ``loyalty_*``: points lots, per-contact totals and stage, point moves, approved referrals.
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
)
from sqlalchemy.dialects.postgresql import JSONB

from shortcodes.store import schema as db
from shortcodes.store.schema import NAMING

metadata = MetaData(naming_convention=NAMING)

BigId = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")

event_marks = Table(
    "auto_event_marks",
    metadata,
    Column("event_id", BigId, primary_key=True, autoincrement=False),
    Column("runs", Integer, nullable=False),
    Column("marked_at", Float, nullable=False),
)

dispatch = Table(
    "auto_dispatch",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("floor", BigInteger, nullable=False),
    Column("candidate", BigInteger, nullable=False),
    Column("candidate_at", Float, nullable=False),
)

runs = Table(
    "auto_runs",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("rule", String(100), nullable=False),
    Column("contact_id", ForeignKey(db.contacts.c.id, ondelete="CASCADE"), nullable=False),
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

steps = Table(
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

rule_state = Table(
    "auto_rule_state",
    metadata,
    Column("rule", String(100), primary_key=True),
    Column("contact_id", ForeignKey(db.contacts.c.id, ondelete="CASCADE"), primary_key=True),
    Column("above", Boolean, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

leases = Table(
    "auto_leases",
    metadata,
    Column("name", String(60), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires_at", Float, nullable=False),
)

deliveries = Table(
    "auto_deliveries",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("outbox_id", ForeignKey(db.outbox.c.id, ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("detail", Text, nullable=False),
    Column("worker", String(120), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Index(None, "outbox_id", "id"),
)

lots = Table(
    "loyalty_lots",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("contact_id", ForeignKey(db.contacts.c.id, ondelete="CASCADE"), nullable=False),
    Column("key", String(250), nullable=False, unique=True),
    Column("points", BigInteger, nullable=False),
    Column("remaining", BigInteger, nullable=False),
    Column("status", String(20), nullable=False),
    Column("reason", String(300), nullable=False),
    Column("earned_at", DateTime, nullable=False),
    Column("available_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    CheckConstraint("points > 0", name="points_positive"),
    CheckConstraint("remaining >= 0 AND remaining <= points", name="remaining_in_range"),
    CheckConstraint("status IN ('pending', 'available', 'expired')", name="status_known"),
    Index(None, "contact_id", "status", "expires_at"),
    Index(None, "status", "available_at"),
    Index(None, "status", "expires_at"),
)

accounts = Table(
    "loyalty_accounts",
    metadata,
    Column("contact_id", ForeignKey(db.contacts.c.id, ondelete="CASCADE"), primary_key=True),
    Column("pending", BigInteger, nullable=False),
    Column("available", BigInteger, nullable=False),
    Column("lifetime", BigInteger, nullable=False),
    Column("stage", String(60), nullable=False),
    Column("updated_at", DateTime, nullable=False),
    CheckConstraint("pending >= 0 AND available >= 0 AND lifetime >= 0", name="nonnegative"),
)

moves = Table(
    "loyalty_moves",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("contact_id", ForeignKey(db.contacts.c.id, ondelete="CASCADE"), nullable=False),
    Column("lot_id", ForeignKey("loyalty_lots.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("delta", BigInteger, nullable=False),
    Column("key", String(260), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
    Index(None, "contact_id", "id"),
)

referrals = Table(
    "loyalty_referrals",
    metadata,
    Column("referred_id", ForeignKey(db.contacts.c.id, ondelete="CASCADE"), primary_key=True),
    Column("referrer_id", ForeignKey(db.contacts.c.id, ondelete="CASCADE"), nullable=False),
    Column("approved_at", DateTime, nullable=False),
    CheckConstraint("referred_id <> referrer_id", name="not_self"),
)
