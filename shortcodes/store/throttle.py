"""Store login throttle: a bounded number of password guesses per account and per address.

Every login attempt is first *claimed*: a pending row in ``login_attempts`` committed before
anything is counted. The attempt then counts the rows of the window that share its email or its
address (pending ones too) and goes on to check the password only while every limit still holds.
A refused attempt deletes its row (so hammering a locked account does not extend the lock), a
successful one deletes its row and the earlier failures of the same email from the same address,
and a failed one marks its row failed: that row *is* the failure record.

Claiming before counting makes the limits hold under any concurrency, on every worker sharing the
database: an attempt sees every attempt that passed the count before it (their rows were committed
first and are never deleted unless the password was right), so no more than the limit of wrong
passwords are ever checked in a window. A burst of parallel attempts can be refused by rows still
in flight; it is told to wait :data:`BURST_WAIT`, not the window, since those rows settle at once.

Three limits, each over the last :attr:`LoginPolicy.window`; addresses are counted by
:func:`address_key` (an IPv6 /64 is one address):

* ``per_account_address``: failures for one email from one address. The usual lock; the owner
  mistyping from home is never locked out by a stranger elsewhere.
* ``per_address``: failures from one address, whatever the email (credential stuffing).
* ``per_account``: failures for one email from anywhere (a guessing botnet). Higher than the first,
  since anyone can spend it on a victim's email; reaching it locks that account for the window.

**Known devices.** The per-address limit exists against credential stuffing, but everyone behind
one NAT or proxy shares an address, so twenty wrong guesses by anyone there would lock every
account out from it. A browser that has logged into an account before carries a signed,
long-lived device cookie naming that account (the host sets it on each successful login); an
attempt from such a browser passes ``known_device=True`` and is not held by ``per_address``.
It is still held by the two per-account limits, so the cookie buys no extra guesses at the
account it names, and a stolen cookie only helps someone who also has the password.

A locked attempt never checks the password, so the right password does not reveal itself while
locked, and unknown emails are counted exactly like known ones (the answer says nothing about which
emails have accounts).
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from shortcodes.context import Contact
from shortcodes.membership.vocabulary import canonical_email
from shortcodes.store import schema
from shortcodes.store.session import Tx, run_read, to_db_time

if TYPE_CHECKING:
    from shortcodes.store.facade import Store

_attempts = schema.login_attempts
MAX_EMAIL = 320
MAX_ADDRESS = 64
#: The longest window a policy may have (a longer one is a typo, and overflows date arithmetic).
MAX_WINDOW = timedelta(days=30)
#: What a visitor refused by a burst of attempts still in flight is told to wait.
BURST_WAIT = timedelta(seconds=2)


def whole_limit(value: object) -> int:
    """``value`` as a limit of failures: a whole number >= 1 (ValueError saying so otherwise)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"must be a whole number >= 1, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """How many failed logins a window allows (see the module docstring for the three limits)."""

    per_account_address: int = 5
    per_address: int = 20
    per_account: int = 50
    window: timedelta = timedelta(minutes=15)

    def __post_init__(self) -> None:
        for name in ("per_account_address", "per_address", "per_account"):
            try:
                whole_limit(getattr(self, name))
            except ValueError as exc:
                raise ValueError(f"{name} {exc}") from None
        if not timedelta(0) < self.window <= MAX_WINDOW:
            raise ValueError(f"window must be positive and at most 30 days, got {self.window}")


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
    failed: bool
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

    def check_password(
        self, email: str, password: str, address: str, *, known_device: bool = False
    ) -> Contact | Locked | None:
        """:meth:`Store.check_password` from ``address`` unless a limit is reached: the contact
        on success, None on a wrong password or unknown email, :class:`Locked` when refused
        unchecked. ``known_device``: the browser logged into this account before, so the
        per-address limit does not hold it (see the module docstring)."""
        key, where = email_key(email), address_key(address)
        store, window = self.store, self.policy.window
        now = to_db_time(store.clock())
        attempt_id = store.run_in_transaction(lambda tx: _claim(tx, key, where, now, window))
        seen = run_read(store.engine, lambda conn: _seen(conn, key, where, now - window))
        locked = self._locked(attempt_id, seen, now, known_device)
        if locked is not None:
            store.run_in_transaction(lambda tx: _forget(tx, attempt_id))
            return locked
        # A crash from here on leaves the row pending: it counts like a failure (the safe side).
        contact = store.check_password(email, password)
        if contact is None:
            store.run_in_transaction(lambda tx: _settle(tx, attempt_id))
        else:
            store.run_in_transaction(lambda tx: _forget(tx, attempt_id, key, where))
        return contact

    def clear(self, email: str) -> int:
        """Forget every recorded attempt of ``email`` (an operator lifting a lock); how many."""
        return self.store.run_in_transaction(lambda tx: forget(tx, email=email))

    def recent_failures(self, limit: int = 200) -> list[tuple[str, str, int]]:
        """(email, address, failures) inside the window, most failures first (the admin's view
        of who is locked out or being guessed at)."""
        a = _attempts
        since = to_db_time(self.store.clock()) - self.policy.window
        count = func.count().label("n")
        query = (
            select(a.c.email, a.c.address, count)
            .where(a.c.attempted_at > since, a.c.failed)
            .group_by(a.c.email, a.c.address)
            .order_by(count.desc(), a.c.email)
            .limit(limit)
        )
        rows = run_read(self.store.engine, lambda conn: conn.execute(query).all())
        return [(str(e), str(d), int(n)) for e, d, n in rows]

    def clear_address(self, address: str) -> int:
        """Forget every recorded attempt from ``address`` (an admin lifting its lock); how many."""
        return self.store.run_in_transaction(lambda tx: forget(tx, address=address))

    def _locked(
        self, attempt_id: int, seen: Sequence[_Seen], now: datetime, known_device: bool
    ) -> Locked | None:
        others = [s for s in seen if s.attempt_id != attempt_id]
        waits = []
        for name, matches in _LIMITS:
            if known_device and name == "per_address":
                continue
            limit: int = getattr(self.policy, name)
            counted = [s for s in others if matches(s)]
            if len(counted) < limit:
                continue
            failed = sorted(s.at for s in counted if s.failed)
            if len(failed) >= limit:
                # Open again once fewer than `limit` failures are inside the window.
                waits.append(Locked(name, failed[len(failed) - limit] + self.policy.window - now))
            else:  # attempts still in flight tipped it: they settle within a second
                waits.append(Locked(name, BURST_WAIT))
        return max(waits, key=lambda w: w.retry_after, default=None)


def forget(tx: Tx, *, email: str | None = None, address: str | None = None) -> int:
    """Delete the recorded attempts of ``email`` or from ``address`` in ``tx``; how many."""
    if email is not None:
        where = _attempts.c.email == email_key(email)
    else:
        where = _attempts.c.address == address_key(address or "")
    return int(tx.conn.execute(delete(_attempts).where(where)).rowcount)


def email_key(email: str) -> str:
    """The form attempts are counted under: the email as the login compares it
    (:func:`~shortcodes.membership.vocabulary.canonical_email`), cut to the column's length. Never
    raises: garbage typed into the form is counted like any other guess."""
    return canonical_email(email)[:MAX_EMAIL]


def address_key(address: str) -> str:
    """The form an address is counted under. An IPv6 visitor usually holds a whole /64, so the
    /64 is the address; an IPv4-mapped IPv6 address is its IPv4 address."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return address.strip()[:MAX_ADDRESS]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _claim(tx: Tx, email: str, address: str, now: datetime, window: timedelta) -> int:
    # Rows older than any window are dead weight: drop them while we are here (indexed). Twice
    # the window, so a worker whose clock runs ahead never prunes rows the others still count.
    tx.conn.execute(delete(_attempts).where(_attempts.c.attempted_at < now - 2 * window))
    values = {"email": email, "address": address, "attempted_at": now, "failed": False}
    return int(
        tx.conn.execute(insert(_attempts).values(values).returning(_attempts.c.id)).scalar_one()
    )


def _seen(conn: Connection, email: str, address: str, since: datetime) -> list[_Seen]:
    a = _attempts
    query = select(
        a.c.id, a.c.attempted_at, a.c.failed, a.c.email == email, a.c.address == address
    ).where(a.c.attempted_at > since, or_(a.c.email == email, a.c.address == address))
    return [_Seen(int(i), at, bool(f), bool(e), bool(d)) for i, at, f, e, d in conn.execute(query)]


def _settle(tx: Tx, attempt_id: int) -> None:
    tx.conn.execute(update(_attempts).where(_attempts.c.id == attempt_id).values(failed=True))


def _forget(tx: Tx, attempt_id: int, email: str | None = None, address: str = "") -> None:
    a = _attempts
    tx.conn.execute(delete(a).where(a.c.id == attempt_id))
    if email is not None:
        # A success: the same person's earlier typos from here are forgiven. Attempts still in
        # flight are left to settle themselves.
        tx.conn.execute(delete(a).where(a.c.email == email, a.c.address == address, a.c.failed))
