"""Store login throttle: a bounded number of password guesses per account and per address.

Every login attempt is first *claimed*: a row in ``login_attempts`` committed before anything is
counted. The attempt then counts the rows of the window that share its email or its address,
its own included, and goes on to check the password only while every limit still holds. A refused
attempt deletes its row (so hammering a locked account does not extend the lock), a successful one
deletes its row and the earlier failures of the same email from the same address, and a failed one
keeps its row: that row *is* the failure record.

Claiming before counting makes the limits exact under any concurrency, on every worker sharing the
database: an attempt sees every attempt that counted before it (their rows were committed first
and failed ones are never deleted), so the k-th attempt to pass the count sees at least k rows.

Three limits, each over the last :attr:`LoginPolicy.window`:

* ``per_account_address``: failures for one email from one address. The usual lock; the owner
  mistyping from home is never locked out by a stranger elsewhere.
* ``per_address``: failures from one address, whatever the email (credential stuffing).
* ``per_account``: failures for one email from anywhere (a guessing botnet). Higher than the first,
  since anyone can spend it on a victim's email; reaching it locks that account for the window.

A locked attempt never checks the password, so the right password does not reveal itself while
locked, and unknown emails are counted exactly like known ones (the answer says nothing about which
emails have accounts).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, or_, select
from sqlalchemy.engine import Connection

from shortcodes.context import Contact
from shortcodes.store import schema
from shortcodes.store.session import Tx, run_read, to_db_time

if TYPE_CHECKING:
    from shortcodes.store.store import Store

_attempts = schema.login_attempts
MAX_EMAIL = 320
MAX_ADDRESS = 64


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """How many failed logins a window allows (see the module docstring for the three limits)."""

    per_account_address: int = 5
    per_address: int = 20
    per_account: int = 50
    window: timedelta = timedelta(minutes=15)

    def __post_init__(self) -> None:
        for name in ("per_account_address", "per_address", "per_account"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        if self.window <= timedelta(0):
            raise ValueError(f"window must be positive, got {self.window}")


@dataclass(frozen=True, slots=True)
class Locked:
    """A refused attempt: which limit was reached and when trying again can succeed."""

    limit: str
    retry_after: timedelta

    @property
    def seconds(self) -> int:
        """Whole seconds to wait, rounded up (at least 1): the ``Retry-After`` header."""
        return max(1, math.ceil(self.retry_after.total_seconds()))

    @property
    def minutes(self) -> int:
        """Whole minutes to wait, rounded up (at least 1), for the visitor's message."""
        return math.ceil(self.seconds / 60)


@dataclass(frozen=True, slots=True)
class _Seen:
    attempt_id: int
    at: datetime
    same_email: bool
    same_address: bool


#: Each limit of :class:`LoginPolicy` and the earlier attempts it counts.
_LIMITS: tuple[tuple[str, Callable[[_Seen], bool]], ...] = (
    ("per_account_address", lambda s: s.same_email and s.same_address),
    ("per_address", lambda s: s.same_address),
    ("per_account", lambda s: s.same_email),
)


class LoginThrottle:
    """Password checks of a store, limited by a :class:`LoginPolicy`."""

    def __init__(self, store: Store, policy: LoginPolicy) -> None:
        self.store = store
        self.policy = policy

    def check_password(self, email: str, password: str, address: str) -> Contact | Locked | None:
        """:meth:`Store.check_password` from ``address`` unless a limit is reached: the contact on
        success, None on a wrong password or unknown email, :class:`Locked` when refused unchecked."""
        key, where = normalize_email(email), address[:MAX_ADDRESS]
        store, window = self.store, self.policy.window
        now = to_db_time(store.clock())
        attempt_id = store.run_in_transaction(lambda tx: _claim(tx, key, where, now, window))
        seen = run_read(store.engine, lambda conn: _seen(conn, key, where, now - window))
        locked = self._locked(attempt_id, seen, now)
        if locked is not None:
            store.run_in_transaction(lambda tx: _forget(tx, attempt_id))
            return locked
        # A crash from here on leaves the row: it then counts as a failure, which is the safe side.
        contact = store.check_password(email, password)
        if contact is not None:
            store.run_in_transaction(lambda tx: _forget(tx, attempt_id, key, where))
        return contact

    def clear(self, email: str) -> int:
        """Forget every recorded failure of ``email`` (an operator lifting a lock); how many."""
        key = normalize_email(email)
        query = delete(_attempts).where(_attempts.c.email == key)
        return self.store.run_in_transaction(lambda tx: tx.conn.execute(query).rowcount)

    def _locked(self, attempt_id: int, seen: Sequence[_Seen], now: datetime) -> Locked | None:
        others = [s for s in seen if s.attempt_id != attempt_id]
        waits = []
        for name, matches in _LIMITS:
            limit: int = getattr(self.policy, name)
            times = sorted(s.at for s in others if matches(s))
            if len(times) >= limit:
                # Open again once fewer than `limit` of them are inside the window.
                waits.append(Locked(name, times[len(times) - limit] + self.policy.window - now))
        return max(waits, key=lambda w: w.retry_after, default=None)


def normalize_email(email: str) -> str:
    """The form attempts are counted under: as the login form compares emails."""
    return email.strip().lower()[:MAX_EMAIL]


def _claim(tx: Tx, email: str, address: str, now: datetime, window: timedelta) -> int:
    # Rows older than any window are dead weight: drop them while we are here (indexed).
    tx.conn.execute(delete(_attempts).where(_attempts.c.attempted_at < now - window))
    values = {"email": email, "address": address, "attempted_at": now}
    return int(
        tx.conn.execute(insert(_attempts).values(values).returning(_attempts.c.id)).scalar_one()
    )


def _seen(conn: Connection, email: str, address: str, since: datetime) -> list[_Seen]:
    a = _attempts
    query = select(a.c.id, a.c.attempted_at, a.c.email == email, a.c.address == address).where(
        a.c.attempted_at > since, or_(a.c.email == email, a.c.address == address)
    )
    return [_Seen(int(i), at, bool(e), bool(d)) for i, at, e, d in conn.execute(query)]


def _forget(tx: Tx, attempt_id: int, email: str | None = None, address: str = "") -> None:
    a = _attempts
    tx.conn.execute(delete(a).where(a.c.id == attempt_id))
    if email is not None:  # a success: the same person's earlier typos from here are forgiven
        tx.conn.execute(delete(a).where(a.c.email == email, a.c.address == address))
