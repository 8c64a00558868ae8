"""Login throttle on both databases: exact limits per account+address, address and account, locks
that lift with the window, no password check while locked, and exactness under parallel guesses."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select, update

from shortcodes.context import Contact
from shortcodes.store import Store
from shortcodes.store import schema as db
from shortcodes.store.session import to_db_time
from shortcodes.store.throttle import Locked, LoginPolicy, LoginThrottle
from tests.support.clock import MovableClock

HOME, CAFE = "203.0.113.7", "198.51.100.9"
EMAIL, PASSWORD = "ann@example.com", "right horse battery"


@pytest.fixture
def throttle(store: Store) -> LoginThrottle:
    """The default policy (5 / 20 / 50 failures in 15 minutes) on a store holding Ann."""
    store.add_contact(EMAIL, "Ann", password=PASSWORD)
    return store.login_throttle()


def fail(throttle: LoginThrottle, times: int, email: str = EMAIL, address: str = HOME) -> None:
    """``times`` wrong passwords, each answered "no" (not locked)."""
    for _ in range(times):
        assert throttle.check_password(email, "wrong", address) is None


def attempts_stored(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(db.login_attempts)).scalar_one())


def test_five_failures_lock_the_account_from_that_address_even_for_the_right_password(
    throttle: LoginThrottle, clock: MovableClock
) -> None:
    for _ in range(5):
        fail(throttle, 1)
        clock.advance(minutes=1)
    answer = throttle.check_password(EMAIL, PASSWORD, HOME)
    assert answer == Locked("per_account_address", timedelta(minutes=10))
    assert isinstance(answer, Locked)
    assert answer.minutes == 10


def test_the_lock_lifts_when_the_oldest_failure_leaves_the_window(
    throttle: LoginThrottle, clock: MovableClock
) -> None:
    fail(throttle, 1)
    clock.advance(minutes=5)
    fail(throttle, 4)
    clock.advance(minutes=9, seconds=59)
    assert isinstance(throttle.check_password(EMAIL, PASSWORD, HOME), Locked)
    clock.advance(seconds=2)  # the first failure is now older than 15 minutes: four remain
    answer = throttle.check_password(EMAIL, PASSWORD, HOME)
    assert isinstance(answer, Contact)
    assert answer.email == EMAIL


def test_a_strangers_failures_elsewhere_do_not_lock_the_owner_out(throttle: LoginThrottle) -> None:
    fail(throttle, 5, address=CAFE)
    assert isinstance(throttle.check_password(EMAIL, "wrong", CAFE), Locked)
    assert isinstance(throttle.check_password(EMAIL, PASSWORD, HOME), Contact)


def test_a_success_forgives_the_earlier_failures_from_the_same_address(
    store: Store, throttle: LoginThrottle
) -> None:
    fail(throttle, 4)
    assert isinstance(throttle.check_password(EMAIL, PASSWORD, HOME), Contact)
    assert attempts_stored(store) == 0
    fail(throttle, 5)  # a fresh allowance
    assert isinstance(throttle.check_password(EMAIL, PASSWORD, HOME), Locked)


def test_one_address_trying_many_emails_is_stopped_at_the_per_address_limit(
    throttle: LoginThrottle,
) -> None:
    for n in range(20):
        fail(throttle, 1, email=f"guess{n}@example.com")
    answer = throttle.check_password(EMAIL, PASSWORD, HOME)
    assert isinstance(answer, Locked)
    assert answer.limit == "per_address"
    assert isinstance(throttle.check_password(EMAIL, PASSWORD, CAFE), Contact)


def test_one_email_guessed_from_many_addresses_is_stopped_at_the_per_account_limit(
    store: Store,
) -> None:
    store.add_contact(EMAIL, "Ann", password=PASSWORD)
    throttle = store.login_throttle(LoginPolicy(per_account=6))
    for n in range(6):
        fail(throttle, 1, address=f"192.0.2.{n}")
    answer = throttle.check_password(EMAIL, PASSWORD, "192.0.2.200")
    assert isinstance(answer, Locked)
    assert answer.limit == "per_account"


def test_unknown_emails_are_counted_and_answered_like_known_ones(throttle: LoginThrottle) -> None:
    fail(throttle, 5, email="nobody@example.com")
    fail(throttle, 5)
    known = throttle.check_password(EMAIL, "wrong", HOME)
    unknown = throttle.check_password("nobody@example.com", "wrong", HOME)
    assert known == unknown == Locked("per_account_address", timedelta(minutes=15))


def test_emails_are_counted_as_the_login_form_compares_them(throttle: LoginThrottle) -> None:
    fail(throttle, 3, email=" Ann@Example.COM ")
    fail(throttle, 2)
    assert isinstance(throttle.check_password(EMAIL, PASSWORD, HOME), Locked)


def test_parallel_guesses_get_exactly_the_allowed_number_of_password_checks(
    store: Store, throttle: LoginThrottle
) -> None:
    barrier = threading.Barrier(8)
    answers: list[Contact | Locked | None] = []
    lock = threading.Lock()

    def guess() -> None:
        barrier.wait()
        for _ in range(3):
            answer = throttle.check_password(EMAIL, "wrong", HOME)
            with lock:
                answers.append(answer)

    threads = [threading.Thread(target=guess) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    checked = sum(answer is None for answer in answers)
    assert checked <= 5
    # Whatever the interleaving, the allowance is 5 checks: the rest of it is still there.
    while (answer := throttle.check_password(EMAIL, "wrong", HOME)) is None:
        checked += 1
    assert isinstance(answer, Locked)
    assert checked == 5
    assert attempts_stored(store) == 5  # refused attempts leave no row


def test_an_operator_can_lift_a_lock(throttle: LoginThrottle) -> None:
    fail(throttle, 5)
    assert throttle.clear(" ANN@example.com") == 5
    assert isinstance(throttle.check_password(EMAIL, PASSWORD, HOME), Contact)


def test_attempts_older_than_the_window_are_pruned(
    store: Store, throttle: LoginThrottle, clock: MovableClock
) -> None:
    fail(throttle, 5, email="old@example.com")
    assert attempts_stored(store) == 5
    clock.advance(minutes=16)  # out of the window, but kept while another clock may lag
    fail(throttle, 1)
    assert attempts_stored(store) == 6
    clock.advance(minutes=16)
    fail(throttle, 1)
    assert attempts_stored(store) == 2


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"per_account_address": 0}, "per_account_address must be a whole number >= 1"),
        ({"per_address": -3}, "per_address must be"),
        ({"per_account": True}, "per_account must be"),
        ({"per_account": 2.5}, "per_account must be"),
        ({"window": timedelta(0)}, "window must be positive"),
        ({"window": timedelta(days=31)}, "at most 30 days"),
    ],
)
def test_a_bad_policy_is_refused_with_the_limit_named(
    changes: dict[str, object], words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        LoginPolicy(**changes)  # type: ignore[arg-type]


def in_flight(store: Store, count: int, email: str = EMAIL, address: str = HOME) -> None:
    """``count`` attempts whose passwords are being checked right now (claimed, not settled)."""
    now = to_db_time(store.clock())
    rows = [{"email": email, "address": address, "attempted_at": now, "failed": False}] * count
    with store.engine.begin() as conn:
        conn.execute(insert(db.login_attempts), rows)


def test_a_burst_still_in_flight_refuses_for_seconds_not_the_window(
    store: Store, throttle: LoginThrottle
) -> None:
    in_flight(store, 5)
    assert throttle.check_password(EMAIL, PASSWORD, HOME) == Locked(
        "per_account_address", timedelta(seconds=2)
    )
    with store.engine.begin() as conn:  # they all turn out wrong
        conn.execute(update(db.login_attempts).values(failed=True))
    assert throttle.check_password(EMAIL, PASSWORD, HOME) == Locked(
        "per_account_address", timedelta(minutes=15)
    )


def test_a_success_leaves_attempts_in_flight_to_settle_themselves(
    store: Store, throttle: LoginThrottle
) -> None:
    fail(throttle, 2)
    in_flight(store, 1)
    assert isinstance(throttle.check_password(EMAIL, PASSWORD, HOME), Contact)
    assert attempts_stored(store) == 1  # the two failures are forgiven, the pending one is not


@pytest.mark.parametrize(
    ("first", "same", "other"),
    [
        ("2001:db8:0:7::1", "2001:db8:0:7:ffff::99", "2001:db8:0:8::1"),  # a /64 is one visitor
        ("::ffff:203.0.113.7", "203.0.113.7", "203.0.113.8"),  # IPv4-mapped is IPv4
        (" 203.0.113.7", "203.0.113.7", "unknown"),
    ],
)
def test_addresses_are_counted_by_visitor(
    throttle: LoginThrottle, first: str, same: str, other: str
) -> None:
    fail(throttle, 5, address=first)
    assert isinstance(throttle.check_password(EMAIL, PASSWORD, same), Locked)
    assert isinstance(throttle.check_password(EMAIL, PASSWORD, other), Contact)
