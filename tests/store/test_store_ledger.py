"""Ledger operations on both databases: credit, debit, transfer, refund, keys, history, verify."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import IntegrityError

from shortcodes.errors import (
    IdempotencyConflict,
    InsufficientCredits,
    InvalidInput,
    RefundError,
    UnknownContact,
    UnknownField,
)
from shortcodes.store import Actor, Store
from shortcodes.store import ledger as ledger_ops
from shortcodes.store import schema as db
from tests.support.db import buyer, dump


def test_credit_then_debit_updates_balance_and_appends_entries(store: Store) -> None:
    ann = buyer(store)
    store.credit(ann, 70, reason="bundle")
    result = store.debit(ann, 50, reason="course")
    assert result.balances == {"_Credits": 20}
    assert store.balance(ann) == 20
    entries = store.history(ann).entries
    assert [(e.delta, e.balance_after, e.reason) for e in entries] == [
        (-50, 20, "course"),
        (70, 70, "bundle"),
    ]


def test_debit_below_zero_is_refused_with_clear_message_and_writes_nothing(store: Store) -> None:
    ann = buyer(store, credits=30)
    before = dump(store)
    with pytest.raises(InsufficientCredits, match=r"You need 50 credits; you have 30"):
        store.debit(ann, 50, key="too-much")
    assert dump(store) == before


def test_debit_from_a_field_never_credited_is_refused(store: Store) -> None:
    ann = buyer(store)
    with pytest.raises(InsufficientCredits, match="you have 0"):
        store.debit(ann, 1, field="_Points")


@pytest.mark.parametrize(
    "amount", [0, -5, 2.5, "50", True, None, 10**13], ids=lambda a: f"amount={a!r}"
)
def test_bad_amounts_are_refused_and_nothing_is_written(store: Store, amount: Any) -> None:
    ann = buyer(store, credits=100)
    before = dump(store)
    for operation in (store.credit, store.debit):
        with pytest.raises(InvalidInput, match="amount"):
            operation(ann, amount)
    assert dump(store) == before


def test_unknown_credit_field_is_refused_and_names_the_declared_ones(store: Store) -> None:
    ann = buyer(store)
    before = dump(store)
    with pytest.raises(UnknownField, match=r"'_Gold'.*_Credits, _Points"):
        store.credit(ann, 5, field="_Gold")
    assert dump(store) == before


def test_field_names_match_case_insensitively_and_store_the_declared_spelling(
    store: Store,
) -> None:
    ann = buyer(store)
    assert store.credit(ann, 5, field="_credits").balances == {"_Credits": 5}


def test_unknown_contact_is_refused(store: Store) -> None:
    with pytest.raises(UnknownContact) as info:
        store.credit("nobody@example.com", 5)
    assert str(info.value) == "no contact 'nobody@example.com'"
    with pytest.raises(UnknownContact) as info:
        store.credit(999, 5)
    assert str(info.value) == "no contact 999"


def test_same_key_and_parameters_returns_the_first_result_once(store: Store) -> None:
    ann = buyer(store)
    first = store.credit(ann, 50, key="webhook-evt-1", reason="bundle")
    again = store.credit(ann, 50, key="webhook-evt-1", reason="bundle")
    assert again.replayed
    assert not first.replayed
    assert again.entry_ids == first.entry_ids
    assert again.balances == {"_Credits": 50}
    assert store.balance(ann) == 50


def test_same_key_with_other_parameters_is_refused(store: Store) -> None:
    ann = buyer(store)
    store.credit(ann, 50, key="evt-2")
    before = dump(store)
    with pytest.raises(IdempotencyConflict, match="evt-2"):
        store.credit(ann, 60, key="evt-2")
    with pytest.raises(IdempotencyConflict) as info:
        store.debit(ann, 50, key="evt-2")
    assert str(info.value) == "idempotency key 'evt-2' was already used for a different operation"
    assert dump(store) == before


@pytest.mark.parametrize("key", ["", "   ", "x" * 201, "tab\there"])
def test_malformed_idempotency_keys_are_refused(store: Store, key: str) -> None:
    ann = buyer(store)
    with pytest.raises(InvalidInput, match="idempotency key"):
        store.credit(ann, 5, key=key)


def test_transfer_moves_between_fields_as_two_entries(store: Store) -> None:
    ann = buyer(store, credits=40)
    result = store.transfer(ann, 15, "_Credits", "_Points", key="t1")
    assert result.balances == {"_Credits": 25, "_Points": 15}
    assert len(result.entry_ids) == 2
    assert store.transfer(ann, 15, "_Credits", "_Points", key="t1").replayed


def test_transfer_beyond_the_balance_writes_neither_side(store: Store) -> None:
    ann = buyer(store, credits=10)
    before = dump(store)
    with pytest.raises(InsufficientCredits) as info:
        store.transfer(ann, 15, "_Credits", "_Points")
    assert str(info.value) == "You need 15 credits; you have 10"
    with pytest.raises(InvalidInput, match="two different fields"):
        store.transfer(ann, 5, "_Credits", "_credits")
    assert dump(store) == before


def test_refund_reverses_exactly_the_named_entries(store: Store) -> None:
    ann = buyer(store, credits=100)
    spent = store.debit(ann, 30, reason="course").entry_ids[0]
    store.debit(ann, 20, reason="other")
    result = store.refund([spent], key="refund-1", reason="refund course")
    assert store.balance(ann) == 80
    newest = store.history(ann, limit=1).entries[0]
    assert (newest.id, newest.delta, newest.reverses_id) == (result.entry_ids[0], 30, spent)


def test_an_entry_is_refunded_at_most_once(store: Store) -> None:
    ann = buyer(store, credits=100)
    spent = store.debit(ann, 30).entry_ids[0]
    refund = store.refund([spent], key="r1")
    assert store.refund([spent], key="r1").replayed  # the same request again: replay
    before = dump(store)
    with pytest.raises(RefundError, match="already refunded"):
        store.refund([spent], key="r2")
    with pytest.raises(RefundError, match="themselves refunds"):
        store.refund([refund.entry_ids[0]], key="r3")
    with pytest.raises(RefundError, match="no ledger entries"):
        store.refund([spent, 9999], key="r4")
    with pytest.raises(InvalidInput) as info:
        store.refund([], key="r5")
    assert str(info.value) == "a refund must name at least one entry"
    assert dump(store) == before


def test_refunding_credits_already_spent_is_refused(store: Store) -> None:
    ann = buyer(store)
    bundle = store.credit(ann, 50).entry_ids[0]
    store.debit(ann, 40)
    with pytest.raises(InsufficientCredits, match="You need 50 credits; you have 10"):
        store.refund([bundle])


def test_history_pages_cover_every_entry_once_newest_first(store: Store) -> None:
    ann = buyer(store)
    for n in range(1, 8):
        store.credit(ann, n, field="_Credits" if n % 2 else "_Points")
    seen, cursor = [], None
    while True:
        page = store.history(ann, limit=3, after=cursor)
        seen += [e.id for e in page.entries]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True)
    assert len(seen) == len(set(seen)) == 7
    points = store.history(ann, field="_points", limit=10).entries
    assert [e.delta for e in points] == [6, 4, 2]


@pytest.mark.parametrize(
    ("limit", "after", "message"),
    [
        (0, None, "limit must be a whole number from 1 to 500, got 0"),
        (501, None, "limit must be a whole number from 1 to 500, got 501"),
        (5, "abc", "not a history cursor: 'abc'"),
        (5, "-1", "not a history cursor: '-1'"),
    ],
)
def test_history_refuses_bad_limits_and_cursors(
    store: Store, limit: int, after: str, message: str
) -> None:
    ann = buyer(store)
    with pytest.raises(InvalidInput) as info:
        store.history(ann, limit=limit, after=after)
    assert str(info.value) == message


def test_database_refuses_a_negative_balance_even_without_the_guard(store: Store) -> None:
    ann = buyer(store, credits=10)
    accounts = db.credit_accounts
    with pytest.raises(IntegrityError), store.engine.begin() as conn:
        conn.execute(update(accounts).values(balance=accounts.c.balance - 11))
    assert store.balance(ann) == 10


def test_verify_reports_a_tampered_balance_and_a_tampered_entry(store: Store) -> None:
    ann = buyer(store, credits=10)
    store.debit(ann, 4)
    assert store.verify().ok
    with store.engine.begin() as conn:
        conn.execute(update(db.credit_accounts).values(balance=999))
        conn.execute(text("UPDATE ledger_entries SET balance_after = 7 WHERE delta = -4"))
    report = store.verify()
    messages = [p.message for p in report.problems]
    assert "balance is 999 but its entries add up to 6" in messages
    assert any("says the balance became 7; replay gives 6" in m for m in messages)
    with store.engine.begin() as conn:  # put it back so the fixture's final verify passes
        conn.execute(update(db.credit_accounts).values(balance=6))
        conn.execute(text("UPDATE ledger_entries SET balance_after = 6 WHERE delta = -4"))


def test_a_failure_between_two_operations_of_one_transaction_writes_nothing(store: Store) -> None:
    ann = buyer(store, credits=50)
    before = dump(store)

    def half_done(tx: Any) -> None:
        ledger_ops.debit(tx, ann, "_Credits", 20, "k-half", "first half", Actor("admin", "test"))
        raise RuntimeError("crash between the two halves")

    with pytest.raises(RuntimeError):
        store.run_in_transaction(half_done)
    assert dump(store) == before


def test_balance_changes_record_events_in_the_same_transaction(store: Store) -> None:
    ann = buyer(store, credits=10)
    with pytest.raises(InsufficientCredits):
        store.debit(ann, 11)
    kinds = [(e.kind, e.data.get("delta")) for e in store.events_after(0)]
    assert kinds == [("contact_created", None), ("balance_changed", 10)]


def test_the_fast_path_raises_sqlalchemy_errors_so_retries_and_handlers_see_them(
    store: Store,
) -> None:
    from shortcodes.store.fastpath import Prepared

    ann = buyer(store, credits=5)
    lower = Prepared(update(db.credit_accounts).values(balance=db.credit_accounts.c.balance - 6))
    with pytest.raises(IntegrityError), store.engine.begin() as conn:
        lower.execute(conn, {})
    assert store.balance(ann) == 5
