"""Refund clawback below zero (issue 15, item 3's last policy): a debt on the account that the
next credit settles, on SQLite and PostgreSQL. Every store here must verify when the test ends
(balance == active grants - debt; each entry == its grant moves - its debt change)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from shortcodes.context import Context
from shortcodes.environment import Environment
from shortcodes.errors import ConfigError, InsufficientCredits, RefundError, StoreError
from shortcodes.membership.actionsets import SiteActions
from shortcodes.membership.config import parse_config
from shortcodes.store import Store, expiry
from shortcodes.store import schema as db
from shortcodes.store.batches import Move, MoveBatch
from shortcodes.store.grants import GrantSpec
from shortcodes.store.session import SYSTEM
from tests.store.conftest import Cli
from tests.support.backends import verified_store
from tests.support.clock import MovableClock

DEBT_TOML = """\
[credits]
fields = ["_Credits", "Cash", "Bonus"]

[credits.policy._Credits]
clawback = "{policy}"

[credits.policy.Cash]
decimals = 2
clawback = "below_zero"
"""


def site_with(policy: str) -> SiteActions:
    return parse_config(DEBT_TOML.replace("{policy}", policy), "site.toml").actions


@pytest.fixture(scope="module")
def site_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The below-zero site as a file for the CLI (the ``cli`` fixture reads it)."""
    path = tmp_path_factory.mktemp("debt-site") / "site.toml"
    path.write_text(DEBT_TOML.replace("{policy}", "below_zero"), encoding="utf-8")
    return path


@pytest.fixture
def dstore(db_url: str, clock: MovableClock) -> Iterator[Store]:
    """A store whose fields may go below zero by a refund; it must verify at the end."""
    yield from verified_store(db_url, site_with("below_zero"), clock)


def account(store: Store, contact: int, field: str = "_Credits") -> tuple[int, int]:
    """(balance, debt) as the account row holds them."""
    a = db.credit_accounts
    with store.engine.connect() as conn:
        row = conn.execute(
            select(a.c.balance, a.c.debt).where((a.c.contact_id == contact) & (a.c.field == field))
        ).one()
    return int(row.balance), int(row.debt)


def moves_of_grant(store: Store, grant_id: int) -> list[tuple[str, int]]:
    m = db.grant_moves
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(m.c.kind, m.c.delta).where(m.c.grant_id == grant_id).order_by(m.c.id)
        )
        return [(k, int(d)) for k, d in rows]


def partly_spent_purchase(store: Store) -> int:
    """Ann: 20 older credits, a purchase of 100 (``stripe:cs_1``), 110 spent (the 20, then 90
    of the purchase), then 5 more: the purchase has 10 left and the rest of the balance 5."""
    ann = store.add_contact("ann@example.com")
    store.credit(ann, 20, reason="older")
    store.credit(ann, 100, key="stripe:cs_1", reason="bundle", grant=GrantSpec("purchase"))
    store.debit(ann, 110, reason="courses")
    store.credit(ann, 5, reason="later")
    assert store.balance(ann) == 15
    return ann


# -- refunds of a partly spent purchase under each policy ---------------------------------------


@pytest.mark.parametrize(
    ("policy", "answer", "after"),
    [
        # (from its grant, from other grants, below zero, kept spent), (balance, debt)
        ("grant", (10, 0, 0, 90), (5, 0)),
        ("balance", (10, 5, 0, 85), (0, 0)),
        ("below_zero", (10, 5, 85, 0), (-85, 85)),
    ],
)
def test_a_refund_of_a_partly_spent_purchase_under_each_clawback_policy(
    db_url: str,
    clock: MovableClock,
    policy: str,
    answer: tuple[int, int, int, int],
    after: tuple[int, int],
) -> None:
    for store in verified_store(db_url, site_with(policy), clock):
        ann = partly_spent_purchase(store)
        done = store.refund_grant("stripe:cs_1", ann, 100, key="refund-1", reason="refund")
        assert (done.from_grants, done.from_balance, done.below_zero, done.kept) == answer
        assert (done.policy, done.wanted, done.balance) == (policy, 100, after[0])
        assert account(store, ann) == after
        left = [g.remaining for g in store.grants(ann, include_spent=True)]
        assert left == [after[0] if policy == "grant" else 0, 0, 0]  # later, bundle, older
        entry = store.history(ann).entries[0]
        assert (entry.delta, entry.balance_after) == (-sum(answer[:3]), after[0])
        assert store.verify().ok


def test_a_replayed_refund_below_zero_answers_what_the_first_run_did(dstore: Store) -> None:
    ann = partly_spent_purchase(dstore)
    first = dstore.refund_grant("stripe:cs_1", ann, 100, key="refund-1")
    again = dstore.refund_grant("stripe:cs_1", ann, 100, key="refund-1")
    assert again == first
    assert (again.from_grants, again.from_balance, again.below_zero) == (10, 5, 85)
    assert account(dstore, ann) == (-85, 85)


def test_a_refund_below_zero_on_a_decimal_field_owes_exact_units(dstore: Store) -> None:
    ann = dstore.add_contact("ann@example.com")
    dstore.credit(ann, "1.00", "Cash", key="stripe:cs_2", grant=GrantSpec("purchase"))
    dstore.debit(ann, "0.75", "Cash")
    done = dstore.refund_grant("stripe:cs_2", ann, "1.00", "Cash", key="refund-2")
    assert (done.from_grants, done.from_balance, done.below_zero) == (25, 0, 75)
    assert account(dstore, ann, "Cash") == (-75, 75)
    assert dstore.amount(ann, "Cash") == Decimal("-0.75")


# -- settling the debt -----------------------------------------------------------------------------


def test_the_next_purchases_settle_the_debt_first_from_their_own_grant(dstore: Store) -> None:
    ann = partly_spent_purchase(dstore)
    dstore.refund_grant("stripe:cs_1", ann, 100, key="refund-1")
    dstore.credit(ann, 50, key="stripe:cs_3", grant=GrantSpec("purchase"))
    assert account(dstore, ann) == (-35, 35)
    partly = dstore.grants(ann, include_spent=True)[0]
    assert (partly.amount, partly.remaining) == (50, 0)
    assert moves_of_grant(dstore, partly.id) == [("grant", 50), ("settle", -50)]
    dstore.credit(ann, 100, key="stripe:cs_4", grant=GrantSpec("purchase"))
    assert account(dstore, ann) == (65, 0)
    settled = dstore.grants(ann, include_spent=True)[0]
    assert (settled.amount, settled.remaining) == (100, 65)
    assert moves_of_grant(dstore, settled.id) == [("grant", 100), ("settle", -35)]
    dstore.debit(ann, 65)
    assert account(dstore, ann) == (0, 0)
    assert dstore.verify().ok


def test_a_contact_in_debt_cannot_spend_until_the_debt_is_settled(dstore: Store) -> None:
    ann = partly_spent_purchase(dstore)
    dstore.refund_grant("stripe:cs_1", ann, 100, key="refund-1")
    with pytest.raises(InsufficientCredits) as caught:
        dstore.debit(ann, 1)
    assert (caught.value.needed, caught.value.balance) == (1, -85)
    assert account(dstore, ann) == (-85, 85)
    dstore.credit(ann, 86)
    dstore.debit(ann, 1)
    assert account(dstore, ann) == (0, 0)


def test_a_reversed_debit_and_a_transfer_in_settle_the_debt_too(dstore: Store) -> None:
    ann = dstore.add_contact("ann@example.com")
    dstore.credit(ann, 30, reason="older")
    spent = dstore.debit(ann, 10, reason="course").entry_ids
    dstore.credit(ann, 5, "Bonus")
    dstore.credit(ann, 40, key="stripe:cs_1", grant=GrantSpec("purchase"))
    dstore.debit(ann, 60)  # 20 of "older", 40 of the purchase
    dstore.refund_grant("stripe:cs_1", ann, 40, key="refund-1")
    assert account(dstore, ann) == (-40, 40)
    dstore.refund(spent)  # the 10 the course used come back and settle 10 of the debt
    assert account(dstore, ann) == (-30, 30)
    dstore.transfer(ann, 5, "Bonus", "_Credits")
    assert account(dstore, ann) == (-25, 25)
    assert dstore.verify().ok


def test_reversing_a_credit_that_settled_a_debt_owes_it_again(dstore: Store) -> None:
    ann = partly_spent_purchase(dstore)
    dstore.refund_grant("stripe:cs_1", ann, 100, key="refund-1")
    settling = dstore.credit(ann, 90, reason="by mistake").entry_ids
    assert account(dstore, ann) == (5, 0)
    reversal = dstore.refund(settling)
    assert account(dstore, ann) == (-85, 85)
    entry = dstore.history(ann).entries[0]
    assert (entry.id, entry.delta, entry.debt_delta) == (reversal.entry_ids[0], -90, 85)
    assert dstore.verify().ok


def test_a_refund_that_went_below_zero_cannot_be_reversed_and_nothing_is_written(
    dstore: Store,
) -> None:
    ann = partly_spent_purchase(dstore)
    done = dstore.refund_grant("stripe:cs_1", ann, 100, key="refund-1")
    assert done.entry_id is not None
    with pytest.raises(RefundError, match=r"took a balance below zero and cannot be reversed"):
        dstore.refund([done.entry_id])
    assert account(dstore, ann) == (-85, 85)
    assert len(dstore.history(ann).entries) == 5


def test_the_worker_starts_a_pending_grant_into_a_debt_and_expires_a_stale_one(
    dstore: Store, clock: MovableClock
) -> None:
    ann = dstore.add_contact("ann@example.com")
    soon = clock() + timedelta(days=10)
    # Spent last (priority 5) and expiring in 10 days: still active when the refund comes.
    dstore.credit(ann, 30, reason="stale", grant=GrantSpec(expires_at=soon, priority=5))
    dstore.credit(ann, 100, key="stripe:cs_1", grant=GrantSpec("purchase"))
    dstore.debit(ann, 100)
    dstore.credit(ann, 20, reason="later", grant=GrantSpec(starts_at=clock() + timedelta(days=20)))
    clock.advance(days=11)
    done = dstore.refund_grant("stripe:cs_1", ann, 100, key="refund-1")
    # The stale grant has expired (not yet by the worker): the refund takes nothing from it.
    assert (done.from_grants, done.from_balance, done.below_zero) == (0, 0, 100)
    assert account(dstore, ann) == (-70, 100)
    with pytest.raises(InsufficientCredits):
        dstore.debit(ann, 10)  # the balance does not cover it (nor do usable grants)
    assert dstore.run_in_transaction(lambda tx: expiry.expire_due(tx)) == 1
    assert account(dstore, ann) == (-100, 100)
    clock.advance(days=10)
    assert dstore.run_in_transaction(lambda tx: expiry.start_due(tx)) == 1
    assert account(dstore, ann) == (-80, 80)
    assert dstore.verify().ok


def test_ledger_grants_says_what_a_contact_owes_and_verify_passes(dstore: Store, cli: Cli) -> None:
    ann = partly_spent_purchase(dstore)
    dstore.refund_grant("stripe:cs_1", ann, 100, key="refund-1")
    code, out, _ = cli("ledger", "grants", "ann@example.com", "--field", "_credits")
    assert (code, out) == (
        0,
        "no grants\n_Credits owes 85: a refund took it below zero; the next credit settles it\n",
    )
    assert dstore.debts(ann) == {"_Credits": 85}
    assert cli("ledger", "verify")[:2] == (0, "checked 1 balances and 5 entries: ok\n")


# -- batches ------------------------------------------------------------------------------------


def test_a_batch_refuses_to_credit_an_account_in_debt_and_the_one_step_credit_settles(
    dstore: Store,
) -> None:
    ann = partly_spent_purchase(dstore)
    bob = dstore.add_contact("bob@example.com")
    dstore.refund_grant("stripe:cs_1", ann, 100, key="refund-1")

    def batch(tx: Any) -> tuple[int, list[int]]:
        moves = MoveBatch(tx, [ann, bob])
        with pytest.raises(StoreError, match="_Credits of contact 1 is in debt"):
            moves.stage(Move("rule:ann", ann, "_Credits", 10, "bonus", SYSTEM))
        after = moves.stage(Move("rule:bob", bob, "_Credits", 10, "bonus", SYSTEM))
        moves.write()
        return after, [m.delta for m, _ in moves.moves]

    assert dstore.run_in_transaction(batch) == (10, [])
    assert account(dstore, ann) == (-85, 85)
    dstore.credit(ann, 10, key="rule:ann", reason="bonus")  # the step's one-step path
    assert account(dstore, ann) == (-75, 75)
    assert account(dstore, bob) == (10, 0)


# -- concurrency --------------------------------------------------------------------------------


def test_50_parallel_refunds_below_zero_and_credits_end_exact_and_verify(dstore: Store) -> None:
    ann = dstore.add_contact("ann@example.com")
    for n in range(25):
        dstore.credit(ann, 2, key=f"stripe:p{n}", grant=GrantSpec("purchase"))
    dstore.debit(ann, 50)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            if n % 2:
                dstore.refund_grant(f"stripe:p{n // 2}", ann, 2, key=f"refund-{n}")
            else:
                dstore.credit(ann, 1, key=f"credit-{n}")
        except BaseException as exc:  # any failure fails the test below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # 25 refunds of 2 spent credits owe 50; 25 credits of 1 settle 25 of it, in any order.
    assert account(dstore, ann) == (-25, 25)
    assert sum(g.remaining for g in dstore.grants(ann, include_spent=True)) == 0
    report = dstore.verify()
    assert report.ok, report.problems


# -- verify and the database's own guard --------------------------------------------------------


def test_verify_finds_a_debt_that_its_entries_do_not_explain(dstore: Store) -> None:
    ann = partly_spent_purchase(dstore)
    dstore.refund_grant("stripe:cs_1", ann, 100, key="refund-1")
    a = db.credit_accounts
    with dstore.engine.begin() as conn:
        conn.execute(a.update().values(debt=80, balance=-80))
    messages = sorted(p.message for p in dstore.verify().problems)
    assert messages == [
        "balance is -80 but its entries add up to -85",
        "debt is 80 but its entries add up to 85",
    ]
    with dstore.engine.begin() as conn:
        conn.execute(a.update().values(debt=85, balance=-85))


def test_the_database_refuses_a_negative_balance_without_a_debt(dstore: Store) -> None:
    ann = dstore.add_contact("ann@example.com")
    a = db.credit_accounts
    row = {"contact_id": ann, "field": "_Credits", "updated_at": dstore.clock()}
    with pytest.raises(IntegrityError), dstore.engine.begin() as conn:
        conn.execute(insert(a).values(row | {"balance": -1, "debt": 0}))
    with pytest.raises(IntegrityError), dstore.engine.begin() as conn:
        conn.execute(insert(a).values(row | {"balance": 0, "debt": -1}))


# -- pages --------------------------------------------------------------------------------------


def test_pages_show_and_compare_a_negative_balance_as_an_exact_decimal(dstore: Store) -> None:
    ann = dstore.add_contact("ann@example.com")
    dstore.credit(ann, "1.00", "Cash", key="stripe:cs_2", grant=GrantSpec("purchase"))
    dstore.debit(ann, "0.75", "Cash")
    dstore.refund_grant("stripe:cs_2", ann, "1.00", "Cash", key="refund-2")
    contact = dstore.get_contact(ann)
    assert contact.field("Cash") == Decimal("-0.75")
    page = Environment().compile(
        "[credit_balance field=Cash]"
        " [memb_if condition=\"credits('Cash') < 0\"]owes[else]ok[/memb_if]"
        " [memb_if condition=\"credits('Cash') == -0.750\"]exact[else]inexact[/memb_if]"
        " [memb_if condition=\"credits('Cash') >= -0.74\"]above[else]below[/memb_if]"
        ' [memb_if value1="{{credits.Cash}}" test="lt" value2="-0.7"]lt[else]ge[/memb_if]'
    )
    assert page.render(Context(contact=contact)) == "-0.75 owes exact below lt"


# -- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('clawback = "below zero"', "clawback: must be one of 'grant', 'balance', 'below_zero'"),
        ("clawback = true", "clawback: must be one of 'grant', 'balance', 'below_zero'"),
        ("below_zero = true", "unknown key 'below_zero'"),
    ],
)
def test_a_malformed_clawback_is_a_config_error_at_its_line_and_column(
    line: str, message: str
) -> None:
    text = f'[credits]\nfields = ["_Credits"]\n\n[credits.policy._Credits]\ndecimals = 0\n{line}\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "site.toml")
    assert str(caught.value).startswith("site.toml:6:")
    assert message in str(caught.value)
