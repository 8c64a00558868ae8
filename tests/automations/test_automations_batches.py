"""Set-based execution (issue 16): due steps, event dispatch and billing runs in batches.

A batch writes with a fixed number of statements whatever its size, and what it writes is
exactly what the one-step path writes (the same operations, entries, events and messages), so
replays, refunds and ``verify`` cannot tell them apart. Every case runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from shortcodes.automations import batch, billing_run, executor
from shortcodes.errors import IdempotencyConflict
from shortcodes.store import contacts, entries, ledger
from shortcodes.store import schema as db
from shortcodes.store.grants import GrantSpec
from shortcodes.store.idempotency import claim_many
from shortcodes.store.session import Actor, Tx
from tests.support.automations import Harness

DAY = timedelta(days=1)


@contextmanager
def counted_statements(harness: Harness) -> Iterator[list[str]]:
    """Every statement the store's engine sends while the block runs (executemany counts once)."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        verb = str(args[2]).split()[0].upper()
        if verb != "BEGIN":  # SQLite's BEGIN IMMEDIATE is a statement; PostgreSQL's is implicit
            seen.append(verb)

    event.listen(harness.store.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(harness.store.engine, "before_cursor_execute", record)


def start_monthly_runs(harness: Harness, contact_ids: list[int], period: str) -> None:
    """One monthly-credits run per contact (credit 50, then an email), its first step due."""
    rule = harness.config.rules["monthly-credits"]

    def work(tx: Tx) -> None:
        for contact_id in contact_ids:
            trigger = {"event": "payment_succeeded", "payment_id": f"{period}-{contact_id}"}
            key = f"test:{period}:{contact_id}"
            executor.start_run(tx, harness.config, rule, contact_id, key, trigger)

    harness.store.run_in_transaction(work)


def run_one_batch(harness: Harness, size: int) -> int:
    """Claim up to ``size`` due steps and execute them as one batch (one transaction)."""

    def work(tx: Tx) -> int:
        claimed = executor.claim_due(tx, size)
        return batch.execute_batch(tx, harness.config, claimed, "test-worker")

    return harness.store.run_in_transaction(work)


def statements_for(harness: Harness, contacts: list[int], period: str) -> list[str]:
    start_monthly_runs(harness, contacts, period)
    with counted_statements(harness) as seen:
        assert run_one_batch(harness, 1000) == 2 * len(contacts)
    return seen


def test_a_batch_of_60_runs_sends_as_many_statements_as_a_batch_of_3(harness: Harness) -> None:
    few = [harness.contact(f"few{n}@example.com") for n in range(3)]
    many = [harness.contact(f"many{n}@example.com") for n in range(60)]
    small = statements_for(harness, few, "small")
    large = statements_for(harness, many, "large")
    assert large == small
    # Claim: steps, runs. Round 1 (the credits): balances (what the grants hold is read for
    # debits only); the ledger (operations, entries, balances, grants, grant moves, operations'
    # results, events); steps done; next steps. Round 2 (the emails):
    # balances, emails, outbox, steps done, runs done. SQLite reads inserted ids back by key
    # (its driver sends a many-row INSERT ... RETURNING one row at a time).
    read_back = " SELECT" if harness.store.engine.dialect.name == "sqlite" else ""
    assert " ".join(small) == (
        "SELECT SELECT "
        f"SELECT INSERT{read_back} INSERT{read_back} INSERT INSERT{read_back} INSERT UPDATE "
        f"INSERT UPDATE INSERT{read_back} "
        "SELECT SELECT INSERT UPDATE UPDATE"
    )


def test_a_batched_credit_is_recorded_as_the_one_step_path_records_it(harness: Harness) -> None:
    ann = harness.contact("ann@example.com", credits=7)
    start_monthly_runs(harness, [ann], "jan")
    assert run_one_batch(harness, 10) == 2
    s = db.auto_steps
    with harness.store.engine.connect() as conn:
        step_id = conn.execute(select(s.c.id).where(s.c.kind == "credit")).scalar_one()
    # Replaying the operation through the ledger's own credit finds the batch's operation (same
    # key, same fingerprint) and answers with its stored result; nothing moves twice.
    actor = Actor("automation", "monthly-credits")

    def replay(tx: Tx) -> ledger.LedgerResult:
        key = f"auto:{step_id}"
        return ledger.credit(tx, ann, "_Credits", 50, key, "rule monthly-credits", actor)

    again = harness.store.run_in_transaction(replay)
    assert again.replayed is True
    assert dict(again.balances) == {"_Credits": 57}
    assert harness.store.balance(ann) == 57
    entry = harness.store.history(ann, limit=1).entries[0]
    assert again.entry_ids == (entry.id,)
    assert (entry.delta, entry.balance_after, entry.reason) == (50, 57, "rule monthly-credits")
    assert (entry.actor_kind, entry.actor_id) == ("automation", "monthly-credits")
    [mail] = harness.emails("monthly-credits")
    assert (mail["email"], mail["balances"], mail["rule"]) == (
        "ann@example.com",
        {"_Credits": 57},
        "monthly-credits",
    )
    assert harness.runs("monthly-credits")[0].status == "done"


def test_two_runs_of_one_contact_in_one_batch_chain_their_ledger_entries(
    harness: Harness,
) -> None:
    ann = harness.contact("ann@example.com", credits=3)
    start_monthly_runs(harness, [ann], "jan")
    start_monthly_runs(harness, [ann], "feb")
    assert run_one_batch(harness, 10) == 4
    entries = harness.store.history(ann, limit=10).entries
    assert [(e.delta, e.balance_after) for e in reversed(entries)] == [(3, 3), (50, 53), (50, 103)]
    assert harness.store.balance(ann) == 103
    assert harness.store.verify().ok
    b = db.events
    with harness.store.engine.connect() as conn:
        changes = [
            (r["delta"], r["balance"])
            for r in conn.execute(
                select(b.c.data).where(b.c.kind == "balance_changed").order_by(b.c.id)
            ).scalars()
        ]
    assert changes == [(3, 3), (50, 53), (50, 103)]


def test_a_refused_debit_runs_alone_and_the_batchs_other_debits_go_through(
    harness: Harness,
) -> None:
    poor = harness.contact("poor@example.com", credits=5)
    rich = [harness.contact(f"rich{n}@example.com", credits=10 + n) for n in range(4)]
    for who in (*rich[:2], poor, *rich[2:]):
        harness.event("webhook", who, {"name": "charge", "event_id": f"charge-{who}"})
    harness.drain()
    assert [harness.store.balance(c) for c in rich] == [0, 1, 2, 3]
    assert harness.store.balance(poor) == 5
    runs = {r.contact_id: r for r in harness.runs("charge")}
    assert runs[poor].status == "failed"
    assert runs[poor].message == "step 0 (debit) failed: You need 10 credits; you have 5"
    assert {runs[c].status for c in rich} == {"done"}


def test_one_payment_reported_twice_in_one_dispatch_batch_starts_one_run(
    harness: Harness,
) -> None:
    ann = harness.contact("ann@example.com")
    data = {"product": "monthly", "payment_id": "ch-9"}
    harness.event("payment_succeeded", ann, data)
    harness.event("payment_succeeded", ann, data)  # the provider's retry, new event
    harness.drain()
    assert len(harness.runs("monthly-credits")) == 1
    assert harness.store.balance(ann) == 50
    m, e = db.auto_event_marks, db.events
    query = (
        select(m.c.runs)
        .join(e, e.c.id == m.c.event_id)
        .where(e.c.kind == "payment_succeeded")
        .order_by(e.c.id)
    )
    with harness.store.engine.connect() as conn:
        assert list(conn.execute(query).scalars()) == [1, 0], "the second report started none"


def test_billing_a_period_again_bills_nobody_and_a_reused_key_is_refused(
    harness: Harness,
) -> None:
    ids = [harness.contact(f"s{n}@example.com") for n in range(5)]
    for contact_id in ids:
        harness.store.apply_tag(contact_id, "Subscriber")
    first = billing_run(harness.store, "monthly", "2026-01", "Subscriber", batch=2)
    assert (first.subscribers, first.billed, first.already) == (5, 5, 0)
    again = billing_run(harness.store, "monthly", "2026-01", "Subscriber", batch=2)
    assert (again.subscribers, again.billed, again.already) == (5, 0, 5)
    harness.drain()
    assert [harness.store.balance(c) for c in ids] == [50] * 5
    # The same key claimed for another product is refused, and the batch records nothing.
    key = f"billing:monthly:2026-01:{ids[0]}"
    other = {"product": "yearly", "period": "2026-01", "contact": ids[0]}
    actor = Actor("automation", "billing-run")
    fresh_key = (f"billing:monthly:2026-02:{ids[1]}", ids[1], {"x": 1})
    with pytest.raises(IdempotencyConflict, match="already used for a different operation"):
        harness.store.run_in_transaction(
            lambda tx: claim_many(tx, "billing", actor, [fresh_key, (key, ids[0], other)])
        )
    o = db.operations
    with harness.store.engine.connect() as conn:
        assert conn.execute(select(o.c.id).where(o.c.key == fresh_key[0])).first() is None


def give_mixed_grants(harness: Harness, contact_id: int) -> None:
    """Paid credit that never expires (6), promotional credit (3, 10 days), paid credit that
    expires soonest (4, 2 days): consumption order is promotional, then soonest expiry, then
    the rest."""
    now = harness.clock.now
    harness.store.credit(contact_id, 6, grant=GrantSpec("purchase"))
    harness.store.credit(contact_id, 3, grant=GrantSpec("promotion", expires_at=now + DAY * 10))
    harness.store.credit(contact_id, 4, grant=GrantSpec("admin", expires_at=now + DAY * 2))


def remaining_by_source(harness: Harness, contact_id: int) -> dict[str, int]:
    return {g.source: g.remaining for g in harness.store.grants(contact_id, include_spent=True)}


def start_charge_runs(harness: Harness, contact_ids: list[int]) -> None:
    """One ``charge`` run per contact (debit 10, then a tag), its first step due."""
    rule = harness.config.rules["charge"]

    def work(tx: Tx) -> None:
        for contact_id in contact_ids:
            trigger = {"event": "webhook", "name": "charge"}
            executor.start_run(tx, harness.config, rule, contact_id, f"c:{contact_id}", trigger)

    harness.store.run_in_transaction(work)


def test_a_batched_debit_consumes_grants_in_the_order_the_one_step_debit_does(
    harness: Harness,
) -> None:
    batched, alone = harness.contact("b@example.com"), harness.contact("a@example.com")
    for contact_id in (batched, alone):
        give_mixed_grants(harness, contact_id)
    start_charge_runs(harness, [batched])
    assert run_one_batch(harness, 10) == 2
    harness.store.debit(alone, 10)
    expected = {"purchase": 3, "promotion": 0, "admin": 0}
    assert remaining_by_source(harness, batched) == expected
    assert remaining_by_source(harness, alone) == expected
    assert harness.store.balance(batched) == harness.store.balance(alone) == 3
    assert harness.store.verify().ok


def test_a_batched_debit_that_only_expired_grants_could_cover_is_refused(
    harness: Harness,
) -> None:
    ann = harness.contact("ann@example.com")
    give_mixed_grants(harness, ann)  # 13 in all
    harness.clock.advance(days=3)  # the 4 expiring in 2 days are past due, not yet expired
    assert harness.store.balance(ann) == 13
    start_charge_runs(harness, [ann])
    assert run_one_batch(harness, 10) == 1  # refused in the batch, then alone
    [run] = harness.runs("charge")
    assert (run.status, run.message) == (
        "failed",
        "step 0 (debit) failed: You need 10 credits; you have 9",
    )
    assert harness.store.balance(ann) == 13
    assert remaining_by_source(harness, ann) == {"purchase": 6, "promotion": 3, "admin": 4}
    assert harness.store.verify().ok


def test_a_credit_and_a_debit_of_one_contact_in_one_batch_use_the_new_grant(
    harness: Harness,
) -> None:
    ann = harness.contact("ann@example.com")  # nothing but what the batch credits
    start_monthly_runs(harness, [ann], "jan")
    start_charge_runs(harness, [ann])
    assert run_one_batch(harness, 10) == 4
    [grant] = harness.store.grants(ann, include_spent=True)
    assert (grant.amount, grant.remaining, grant.source) == (50, 40, "admin")
    assert harness.store.balance(ann) == 40
    assert harness.store.verify().ok


def owe(harness: Harness, contact_id: int, units: int) -> None:
    """Put the contact's ``_Credits`` ``units`` below zero, as a refund clawback under
    ``clawback = "below_zero"`` writes it (one entry adding a debt, no grant to take from)."""
    actor = Actor("system", "test refund")

    def work(tx: Tx) -> None:
        contacts.lock_contact(tx, contact_id)

        def perform(op_id: int) -> ledger.LedgerResult:
            entry_id, after = entries.apply_delta(
                tx, contact_id, "_Credits", -units, f"op:owe:{contact_id}#1",
                reason="refund below zero", actor=actor, operation_id=op_id,
                moves=lambda _entry: None, debt=units,
            )  # fmt: skip
            return ledger.LedgerResult((entry_id,), {"_Credits": after})

        ledger.keyed(tx, f"owe:{contact_id}", "refund_grant", contact_id, {}, actor, perform)

    harness.store.run_in_transaction(work)


def test_a_batched_credit_to_an_account_in_debt_runs_alone_and_settles_the_debt_first(
    harness: Harness,
) -> None:
    ann = harness.contact("ann@example.com", credits=10)
    bob = harness.contact("bob@example.com")
    harness.store.debit(ann, 10)
    owe(harness, ann, 30)
    assert harness.store.balance(ann) == -30
    start_monthly_runs(harness, [ann, bob], "jan")
    assert run_one_batch(harness, 10) == 4  # bob's credit in the batch, ann's alone, 2 emails
    assert (harness.store.balance(ann), harness.store.debts(ann)) == (20, {})
    grant = harness.store.grants(ann, include_spent=True)[0]
    assert (grant.amount, grant.remaining) == (50, 20)
    assert harness.store.balance(bob) == 50
    assert {r.status for r in harness.runs("monthly-credits")} == {"done"}
    assert harness.store.verify().ok
