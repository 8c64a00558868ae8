"""Credit grants on both databases: consumption order, expiry and start by the worker, rollover,
refunds by grant, decimals, parallel debits, and verify knowing all of it."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from shortcodes.context import Context
from shortcodes.environment import Environment
from shortcodes.errors import ConfigError, InsufficientCredits, InvalidInput
from shortcodes.membership.actionsets import SiteActions
from shortcodes.membership.config import parse_config
from shortcodes.store import Store, expiry
from shortcodes.store import grants as grant_store
from shortcodes.store import schema as db
from shortcodes.store.grants import GrantSpec
from tests.support.backends import verified_store
from tests.support.clock import MovableClock

GRANTS_TOML = """\
[credits]
fields = ["_Credits", "Cash"]

[credits.policy._Credits]
expires = { subscription = "60d", promotion = "30d" }
rollover_cap = 100
clawback = "grant"

[credits.policy.Cash]
decimals = 2
promotional_first = false
clawback = "balance"
"""


@pytest.fixture(scope="module")
def grant_site() -> SiteActions:
    """A site whose fields declare policies (expiry by source, rollover, decimals, clawback)."""
    return parse_config(GRANTS_TOML, "site.toml").actions


@pytest.fixture
def gstore(db_url: str, grant_site: SiteActions, clock: MovableClock) -> Iterator[Store]:
    """A store on the grants site; its ledger (grants included) must verify at the end."""
    yield from verified_store(db_url, grant_site, clock)


def left(store: Store, contact: int, field: str = "_Credits") -> list[tuple[str, int]]:
    """(reason, remaining) of every grant of the field, oldest first."""
    found = store.grants(contact, field, include_spent=True)
    return [(g.reason, g.remaining) for g in reversed(found)]


def run(store: Store, work: Any) -> Any:
    return store.run_in_transaction(work)


# -- consumption order ---------------------------------------------------------------------------


def test_debits_take_promotional_then_soonest_expiring_then_oldest_grants(
    gstore: Store, clock: MovableClock
) -> None:
    ann = gstore.add_contact("ann@example.com")
    now = clock()
    gstore.credit(ann, 10, reason="paid, never expires")
    gstore.credit(ann, 10, reason="paid, 5 days", grant=GrantSpec(expires_at=now + timedelta(5)))
    gstore.credit(ann, 10, reason="paid, 2 days", grant=GrantSpec(expires_at=now + timedelta(2)))
    gstore.credit(ann, 10, reason="promo", grant=GrantSpec("promotion"))  # 30d by policy
    gstore.debit(ann, 25, reason="course")
    assert left(gstore, ann) == [
        ("paid, never expires", 10),
        ("paid, 5 days", 5),
        ("paid, 2 days", 0),
        ("promo", 0),
    ]


def test_a_debit_records_which_grants_it_used(gstore: Store, clock: MovableClock) -> None:
    ann = gstore.add_contact("ann@example.com")
    first = gstore.credit(ann, 4, reason="a").entry_ids[0]
    gstore.credit(ann, 4, reason="b")
    debit = gstore.debit(ann, 6, reason="course").entry_ids[0]
    with gstore.engine.connect() as conn:
        m, g = db.grant_moves, db.credit_grants
        rows = conn.execute(
            select(g.c.reason, m.c.delta, m.c.kind)
            .join(g, g.c.id == m.c.grant_id)
            .where(m.c.entry_id == debit)
            .order_by(m.c.id)
        ).all()
    assert [tuple(r) for r in rows] == [("a", -4, "use"), ("b", -2, "use")]
    assert first < debit


def test_expired_grants_are_never_consumed_even_before_the_worker_expires_them(
    gstore: Store, clock: MovableClock
) -> None:
    ann = gstore.add_contact("ann@example.com")
    gstore.credit(ann, 10, grant=GrantSpec(expires_at=clock() + timedelta(days=1)))
    clock.advance(days=2)
    with pytest.raises(InsufficientCredits, match="You need 5 credits; you have 0"):
        gstore.debit(ann, 5)
    assert gstore.balance(ann) == 10  # the worker has not written the expiry yet


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    grants=st.lists(
        st.tuples(
            st.integers(1, 20),
            st.sampled_from(["paid", "promotional"]),
            st.one_of(st.none(), st.integers(1, 10)),
        ),
        min_size=1,
        max_size=6,
    ),
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("debit"), st.integers(1, 25)),
            st.tuples(st.just("days"), st.integers(1, 4)),
        ),
        max_size=8,
    ),
)
def test_any_grants_and_debits_keep_balance_equal_to_the_grants_and_consume_nothing_expired(
    gstore: Store, clock: MovableClock, grants: list[Any], steps: list[Any]
) -> None:
    contact = gstore.add_contact(f"p{next(_EXAMPLES)}@example.com")
    start = clock()
    for amount, category, days in grants:
        expires = None if days is None else start + timedelta(days=days)
        gstore.credit(contact, amount, grant=GrantSpec("admin", category, expires_at=expires))
    for kind, n in steps:
        if kind == "days":
            clock.advance(days=n)
            continue
        before = _grant_rows(gstore, contact)
        try:
            entry = gstore.debit(contact, n).entry_ids[0]
        except InsufficientCredits:
            assert _grant_rows(gstore, contact) == before
            continue
        now = clock().replace(tzinfo=None)
        used = _used_by(gstore, entry)
        assert sum(used.values()) == n
        for grant_id, taken in used.items():
            row = before[grant_id]
            assert row.expires_at is None or row.expires_at > now, "consumed after expiry"
            # Promotional credit goes first: no paid grant is used while a usable promotional
            # grant keeps something.
            if row.category == "paid":
                assert not _usable_left(gstore, contact, "promotional", now)
            assert taken <= row.remaining
    run(gstore, lambda tx: expiry.expire_due(tx, 1000))
    report = gstore.verify()
    assert report.ok, report.problems
    active = sum(r.remaining for r in _grant_rows(gstore, contact).values() if r.status == "active")
    assert gstore.balance(contact) == active


_EXAMPLES = itertools.count()


def _grant_rows(store: Store, contact: int) -> dict[int, Any]:
    g = db.credit_grants
    with store.engine.connect() as conn:
        return {r.id: r for r in conn.execute(select(g).where(g.c.contact_id == contact))}


def _used_by(store: Store, entry: int) -> dict[int, int]:
    m = db.grant_moves
    with store.engine.connect() as conn:
        rows = conn.execute(select(m.c.grant_id, m.c.delta).where(m.c.entry_id == entry))
        return {int(g): -int(d) for g, d in rows}


def _usable_left(store: Store, contact: int, category: str, now: Any) -> int:
    return sum(
        r.remaining
        for r in _grant_rows(store, contact).values()
        if r.category == category
        and r.status == "active"
        and (r.expires_at is None or r.expires_at > now)
    )


# -- the worker: expiry and start ------------------------------------------------------------------


def test_the_worker_expires_what_is_left_as_a_ledger_entry_once(
    gstore: Store, clock: MovableClock
) -> None:
    ann = gstore.add_contact("ann@example.com")
    gstore.credit(ann, 30, reason="monthly", grant=GrantSpec("subscription"))  # 60 days
    gstore.credit(ann, 5, reason="kept")
    gstore.debit(ann, 10)
    clock.advance(days=59)
    assert run(gstore, lambda tx: expiry.expire_due(tx)) == 0
    clock.advance(days=2)
    assert run(gstore, lambda tx: expiry.expire_due(tx)) == 1
    assert run(gstore, lambda tx: expiry.expire_due(tx)) == 0
    assert gstore.balance(ann) == 5
    newest = gstore.history(ann).entries[0]
    assert (newest.delta, newest.balance_after, newest.actor_id) == (-20, 5, "grant worker")
    assert newest.reason.startswith("expired: grant 1 (monthly) expired 2026-03-02 12:00:00")
    assert left(gstore, ann) == [("monthly", 0), ("kept", 5)]


def test_an_expiry_pass_killed_midway_expires_nothing_and_the_next_pass_does_it_all(
    gstore: Store, clock: MovableClock
) -> None:
    ids = [gstore.add_contact(f"c{n}@example.com") for n in range(3)]
    for contact in ids:
        gstore.credit(contact, 7, grant=GrantSpec(expires_at=clock() + timedelta(days=1)))
    clock.advance(days=2)
    calls: list[int] = []

    def crash_after_first(tx: Any, contact_id: int, field: str) -> None:
        calls.append(contact_id)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        run(gstore, lambda tx: expiry.expire_due(tx, 100, crash_after_first))
    assert [gstore.balance(c) for c in ids] == [7, 7, 7]
    assert run(gstore, lambda tx: expiry.expire_due(tx)) == 3
    assert [gstore.balance(c) for c in ids] == [0, 0, 0]


def test_a_grant_that_starts_later_is_pending_until_the_worker_starts_it(
    gstore: Store, clock: MovableClock
) -> None:
    ann = gstore.add_contact("ann@example.com")
    result = gstore.credit(ann, 12, grant=GrantSpec(starts_at=clock() + timedelta(days=14)))
    assert (result.entry_ids, gstore.balance(ann)) == ((), 0)
    assert [g.status for g in gstore.grants(ann)] == ["pending"]
    clock.advance(days=14)
    assert run(gstore, lambda tx: expiry.start_due(tx)) == 1
    assert (gstore.balance(ann), [g.status for g in gstore.grants(ann)]) == (12, ["active"])


def test_subscription_credit_rolls_over_up_to_the_cap(gstore: Store) -> None:
    ann = gstore.add_contact("ann@example.com")
    for month in range(3):
        gstore.credit(ann, 60, reason=f"month {month}", grant=GrantSpec("subscription"))
    # Before month 1's 60 arrive the 60 held are under the cap; before month 2's, 120 are held
    # and 20 of month 0 (expiring first) expire.
    assert gstore.balance(ann) == 160
    assert left(gstore, ann) == [("month 0", 40), ("month 1", 60), ("month 2", 60)]
    capped = gstore.history(ann).entries[1]
    assert (capped.delta, capped.reason) == (-20, "rollover cap 100: unused credit expired")


# -- refunds ---------------------------------------------------------------------------------------


def test_refunding_a_reversed_debit_restores_the_grants_it_used(gstore: Store) -> None:
    ann = gstore.add_contact("ann@example.com")
    gstore.credit(ann, 10, reason="a")
    spent = gstore.debit(ann, 6).entry_ids
    gstore.refund(spent)
    assert left(gstore, ann) == [("a", 10)]


def test_a_refund_by_grant_under_the_grant_policy_keeps_spent_credits_spent(
    gstore: Store,
) -> None:
    ann = gstore.add_contact("ann@example.com")
    gstore.credit(ann, 50, reason="other")
    gstore.credit(ann, 100, key="stripe:cs_1", reason="bundle", grant=GrantSpec("purchase"))
    gstore.debit(ann, 120)  # all of "other" (older) and 70 of the bundle
    done = gstore.refund_grant("stripe:cs_1", ann, 100, key="refund-1")
    assert (done.from_grants, done.from_balance, done.kept, done.policy) == (30, 0, 70, "grant")
    assert gstore.balance(ann) == 0


def test_a_refund_by_grant_under_the_balance_policy_takes_the_spent_part_from_other_grants(
    gstore: Store,
) -> None:
    ann = gstore.add_contact("ann@example.com")
    gstore.credit(ann, "1.00", "Cash", key="stripe:cs_2", grant=GrantSpec("purchase"))
    gstore.debit(ann, "0.75", "Cash")
    gstore.credit(ann, "2.00", "Cash", reason="later")
    done = gstore.refund_grant("stripe:cs_2", ann, "0.50", "Cash", key="refund-2")
    assert (done.from_grants, done.from_balance, done.kept) == (25, 25, 0)
    assert gstore.amount(ann, "Cash") == Decimal("1.75")
    again = gstore.refund_grant("stripe:cs_2", ann, "0.50", "Cash", key="refund-2")
    assert (again.taken, gstore.amount(ann, "Cash")) == (50, Decimal("1.75"))


# -- decimals --------------------------------------------------------------------------------------


def test_decimal_credits_are_exact_units_in_the_ledger_and_exact_decimals_on_pages(
    gstore: Store,
) -> None:
    ann = gstore.add_contact("ann@example.com")
    gstore.credit(ann, "2.5", "Cash")
    gstore.credit(ann, Decimal("0.1"), "Cash")
    gstore.credit(ann, "0.2", "Cash")
    assert (gstore.balance(ann, "Cash"), gstore.amount(ann, "Cash")) == (280, Decimal("2.80"))
    gstore.debit(ann, "0.30", "Cash")
    contact = gstore.get_contact(ann)
    assert contact.field("Cash") == Decimal("2.50")
    env = Environment()
    page = env.compile(
        "[credit_balance field=Cash] [memb_if condition=\"credits('Cash') >= 2.50\"]yes[else]no[/memb_if]"
        " [memb_if condition=\"credits('Cash') > 2.5\"]more[else]not more[/memb_if]"
    )
    assert page.render(Context(contact=contact)) == "2.50 yes not more"


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("2.555", "an amount is a number with at most 2 decimals above 0, got '2.555'"),
        ("0", "an amount is a number with at most 2 decimals above 0, got '0'"),
        ("-1", "an amount is a number with at most 2 decimals above 0, got '-1'"),
        ("1e3", "an amount is a number with at most 2 decimals above 0, got '1e3'"),
        ("nan", "an amount is a number with at most 2 decimals above 0, got 'nan'"),
    ],
)
def test_bad_decimal_amounts_are_refused_with_the_rule_and_write_nothing(
    gstore: Store, amount: str, message: str
) -> None:
    ann = gstore.add_contact("ann@example.com")
    with pytest.raises(InvalidInput) as caught:
        gstore.credit(ann, amount, "Cash")
    assert str(caught.value) == message
    assert gstore.grants(ann) == []


def test_a_whole_number_field_refuses_a_fraction(gstore: Store) -> None:
    ann = gstore.add_contact("ann@example.com")
    with pytest.raises(InvalidInput, match="whole number"):
        gstore.credit(ann, "2.5")


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("decimals = 7", "decimals: must be a whole number from 0 to 6, got 7"),
        ('clawback = "debt"', "clawback: must be one of 'grant', 'balance'"),
        ('expires = { gift = "3d" }', "expires.gift: unknown key 'gift'"),
        ('expires = { promotion = "soon" }', "expires.promotion:"),
        (
            "rollover_cap = 1.005\ndecimals = 2",
            "rollover_cap: an amount is a number with at most 2",
        ),
        ("colour = 1", "unknown key 'colour'"),
    ],
)
def test_bad_policies_are_config_errors_with_file_line_and_key(policy: str, message: str) -> None:
    text = f'[credits]\nfields = ["_Credits"]\n\n[credits.policy._Credits]\n{policy}\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "site.toml")
    assert "site.toml:5:" in str(caught.value)
    assert message in str(caught.value)


def test_a_policy_for_an_undeclared_field_is_a_config_error() -> None:
    text = '[credits]\nfields = ["_Credits"]\n\n[credits.policy.Gold]\ndecimals = 2\n'
    with pytest.raises(ConfigError, match=r"site.toml:4:.*Gold"):
        parse_config(text, "site.toml")


# -- concurrency -----------------------------------------------------------------------------------


def test_200_parallel_debits_across_many_grants_never_overdraw_or_use_a_grant_twice(
    gstore: Store,
) -> None:
    ann = gstore.add_contact("ann@example.com")
    for n in range(50):
        gstore.credit(ann, 3, reason=f"grant {n}")
    outcomes: list[str] = []
    lock = threading.Lock()

    def buy(n: int) -> None:
        try:
            gstore.debit(ann, 1, key=f"parallel-{n}")
            result = "ok"
        except InsufficientCredits:
            result = "refused"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=buy, args=(n,)) for n in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (outcomes.count("ok"), outcomes.count("refused")) == (150, 50)
    assert gstore.balance(ann) == 0
    m = db.grant_moves
    with gstore.engine.connect() as conn:
        uses = conn.execute(
            select(m.c.grant_id, m.c.delta).where(m.c.kind == "use").order_by(m.c.grant_id)
        ).all()
    per_grant: dict[int, int] = {}
    for grant_id, delta in uses:
        per_grant[grant_id] = per_grant.get(grant_id, 0) - delta
    assert sorted(set(per_grant.values())) == [3]
    assert len(per_grant) == 50
    assert len(uses) == 150  # one use per debit of 1: no grant was taken twice for one credit


# -- verify ----------------------------------------------------------------------------------------


def test_verify_finds_a_grant_that_disagrees_with_its_balance_and_moves(gstore: Store) -> None:
    ann = gstore.add_contact("ann@example.com")
    gstore.credit(ann, 10)
    with gstore.engine.begin() as conn:
        conn.execute(update(db.credit_grants).values(remaining=9))
    messages = sorted(p.message for p in gstore.verify().problems)
    assert messages == [
        "balance is 10 but its active grants hold 9",
        "grant 1 (active) has 9 left but its moves add up to 10",
    ]
    with gstore.engine.begin() as conn:
        conn.execute(update(db.credit_grants).values(remaining=10))


def test_verify_finds_an_entry_its_grant_moves_do_not_add_up_to(gstore: Store) -> None:
    ann = gstore.add_contact("ann@example.com")
    entry = gstore.credit(ann, 10).entry_ids[0]
    with gstore.engine.begin() as conn:
        conn.execute(update(db.grant_moves).values(delta=8))
    messages = [p.message for p in gstore.verify().problems]
    assert messages == [
        "grant 1 (active) has 10 left but its moves add up to 8",
        f"entry {entry} moved the balance by 10 but its grants by 8",
    ]
    with gstore.engine.begin() as conn:
        conn.execute(update(db.grant_moves).values(delta=10))


def test_expiring_amounts_of_a_field(gstore: Store, clock: MovableClock) -> None:
    ann = gstore.add_contact("ann@example.com")
    gstore.credit(ann, 4, grant=GrantSpec(expires_at=clock() + timedelta(days=3)))
    gstore.credit(ann, 6, grant=GrantSpec(expires_at=clock() + timedelta(days=20)))
    gstore.credit(ann, 8)
    with gstore.engine.connect() as conn:
        now = clock().replace(tzinfo=None)
        soon = grant_store.expiring(conn, ann, "_Credits", now, now + timedelta(days=7))
    assert soon == 4
