"""Store transactions: one unit of work per operation, retried when the database asks for it.

Every store operation is a function of a :class:`Tx` (a connection inside an open transaction
plus the time it runs at). :func:`run_write` opens the transaction, commits when the function
returns, rolls everything back when it raises, and retries the whole function on the transient
failures a correct program can still meet under concurrency: PostgreSQL serialization failures
and deadlocks, a SQLite lock that outlasted the busy timeout, and the race where two transactions
insert the same idempotency key (the retry then finds the first one's record).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from shortcodes.errors import RetryExhausted
from shortcodes.membership.credit_policy import DEFAULT_POLICY, CreditPolicy
from shortcodes.store.database import SQLITE_BEGIN, write_lock

T = TypeVar("T")

ActorKind = Literal["visitor", "admin", "automation", "webhook", "system"]
ACTOR_KINDS: frozenset[str] = frozenset({"visitor", "admin", "automation", "webhook", "system"})

#: A clock returns the current time as an aware UTC datetime; tests and the worker move it.
Clock = Callable[[], datetime]

#: Unique constraints whose violation means "a parallel transaction just inserted the same key":
#: the retry then finds that row and answers from it (replay, duplicate, existing tag).
_KEY_CONSTRAINTS = (
    "uq_operations_key",
    "uq_actionset_runs_idempotency_key",
    "uq_contacts_email",
    "uq_tags_name_key",
    # payments: a customer, payment, subscription or event log row recorded in parallel
    "pk_stripe_customers",
    "uq_stripe_customers_customer_id",
    "uq_stripe_payments_ref",
    "pk_stripe_subscriptions",
    "pk_stripe_events",
)
_KEY_COLUMNS = (
    "operations.key",
    "actionset_runs.idempotency_key",
    "contacts.email",
    "tags.name_key",
    "stripe_customers.contact_id",
    "stripe_customers.customer_id",
    "stripe_payments.ref",
    "stripe_subscriptions.subscription_id",
    "stripe_events.event_id",
)

MAX_ATTEMPTS = 12


def system_clock() -> datetime:
    """The real time, aware UTC."""
    return datetime.now(UTC)


def to_db_time(value: datetime) -> datetime:
    """Aware datetime to the naive UTC the schema stores (naive input is taken as UTC)."""
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def from_db_time(value: datetime) -> datetime:
    """Naive UTC from the database back to an aware UTC datetime."""
    return value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who causes a change: a visitor, an admin, an automation rule, a webhook, the system."""

    kind: ActorKind = "system"
    id: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ACTOR_KINDS:
            raise ValueError(f"actor kind must be one of {sorted(ACTOR_KINDS)}, got {self.kind!r}")


SYSTEM = Actor("system", "")


@dataclass(frozen=True, slots=True)
class Tx:
    """An open write transaction: the connection, the time it runs at, and the site's fields.

    ``now`` is naive UTC, read once per attempt so every row of one transaction agrees on it.
    """

    conn: Connection
    now: datetime
    credit_fields: frozenset[str]
    #: Per-field policies (decimals, expiry, rollover...); a field not named has the defaults.
    policies: Mapping[str, CreditPolicy] = field(default_factory=dict)

    def policy(self, credit_field: str) -> CreditPolicy:
        """The policy of ``credit_field`` (the defaults when the site declares none)."""
        return self.policies.get(credit_field, DEFAULT_POLICY)

    @property
    def is_postgres(self) -> bool:
        """True on PostgreSQL, where row locks (``FOR UPDATE``) are needed to serialize writers."""
        return self.conn.dialect.name == "postgresql"


def run_write(
    engine: Engine,
    clock: Clock,
    credit_fields: frozenset[str],
    work: Callable[[Tx], T],
    policies: Mapping[str, CreditPolicy] | None = None,
) -> T:
    """Run ``work`` in one write transaction, retrying transient failures; its result or error."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            with write_lock(engine), engine.connect() as conn, conn.begin():
                return work(Tx(conn, to_db_time(clock()), credit_fields, policies or {}))
        except DBAPIError as exc:
            if not _is_transient(exc):
                raise
            _backoff(attempt)
    raise RetryExhausted(f"the database stayed busy after {MAX_ATTEMPTS} attempts; try again")


def run_read(engine: Engine, work: Callable[[Connection], T], *, snapshot: bool = False) -> T:
    """Run ``work`` in a read transaction (deferred on SQLite, so it never waits on writers).

    ``snapshot`` makes every statement see the same instant on PostgreSQL too (REPEATABLE READ),
    for reads that compare several queries, such as ``verify``. SQLite's read is one already.
    """
    options: dict[str, Any] = {SQLITE_BEGIN: "DEFERRED"}
    if snapshot and engine.dialect.name == "postgresql":
        options["isolation_level"] = "REPEATABLE READ"
    with engine.connect() as conn:
        conn.execution_options(**options)
        with conn.begin():
            return work(conn)


def _is_transient(exc: DBAPIError) -> bool:
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate in ("40001", "40P01"):  # serialization_failure, deadlock_detected
        return True
    if isinstance(exc, IntegrityError):
        return _is_key_race(exc)
    if isinstance(exc, OperationalError):
        return "database is locked" in str(orig) or "database is busy" in str(orig)
    return False


def _is_key_race(exc: IntegrityError) -> bool:
    diag = getattr(exc.orig, "diag", None)
    if diag is not None and getattr(diag, "constraint_name", None) in _KEY_CONSTRAINTS:
        return True
    return any(f"UNIQUE constraint failed: {col}" in str(exc.orig) for col in _KEY_COLUMNS)


def _backoff(attempt: int) -> None:
    # Jittered exponential backoff, capped: contenders spread out instead of colliding again.
    time.sleep(min(0.5, 0.005 * 2**attempt) * random.uniform(0.5, 1.5))  # noqa: S311
