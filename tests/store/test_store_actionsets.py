"""Running actionsets on both databases: messages, already owned, replays, outbox, faults."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import event, select

from shortcodes.errors import (
    IdempotencyConflict,
    InvalidInput,
    UnknownAction,
    UnknownContact,
    UnknownTag,
)
from shortcodes.membership.config import parse_config
from shortcodes.membership.steps import Step
from shortcodes.store import Actor, Store
from shortcodes.store import schema as db
from tests.support.clock import MovableClock
from tests.support.db import buyer, dump

REUSED = "this button (key 'nonce-1') was already used for another action"

VISITOR = Actor("visitor", "ann")


def outbox_rows(store: Store) -> list[Any]:
    """Every queued outgoing message."""
    with store.engine.connect() as conn:
        return list(conn.execute(select(db.outbox).order_by(db.outbox.c.id)))


def test_purchase_debits_applies_the_tag_and_says_what_is_left(store: Store) -> None:
    ann = buyer(store, credits=70)
    result = store.run_actionset("buy-course-b", ann, {"cost": "50"}, "nonce-1", VISITOR)
    assert (result.outcome, result.ok, result.replayed) == ("done", True, False)
    assert result.message == "Unlocked Course B — 20 credits left"
    contact = store.get_contact(ann)
    assert contact.has_tag("Owns Course B")
    assert contact.balance() == 20
    [email] = outbox_rows(store)
    assert (email.kind, email.status, email.run_id) == ("email", "pending", result.run_id)
    assert email.payload["template"] == "purchase"
    assert email.payload["email"] == "ann@example.com"
    assert email.payload["balances"] == {"_Credits": 20, "_Points": 0}


def test_a_receipt_shows_every_balance_after_the_run_the_untouched_fields_too(
    store: Store,
) -> None:
    ann = buyer(store, credits=100)
    store.credit(ann, 9, "_Points", key="points", reason="welcome points")
    store.run_actionset("buy-item", ann, {"cost": "50"}, "nonce-1", VISITOR)
    everything = store.run_actionset("everything", ann, {}, "nonce-2", VISITOR)
    receipt, welcome, hook = outbox_rows(store)
    assert receipt.payload["balances"] == {"_Credits": 50, "_Points": 9}
    assert (
        welcome.payload["balances"] == hook.payload["balances"] == {"_Credits": 20, "_Points": 14}
    )
    assert everything.balances == {"_Credits": 20, "_Points": 14}


def test_a_run_reads_only_the_balances_its_steps_did_not_move(store: Store) -> None:
    ann = buyer(store, credits=100)
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    def balance_reads() -> int:
        return sum("credit_accounts.field, credit_accounts.balance" in sql for sql in seen)

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        store.run_actionset("everything", ann, {}, "nonce-1", VISITOR)  # moves both fields
        assert balance_reads() == 0
        store.run_actionset("buy-item", ann, {"cost": "5"}, "nonce-2", VISITOR)  # moves one
        assert balance_reads() == 1
    finally:
        event.remove(store.engine, "before_cursor_execute", record)


def test_too_few_credits_is_a_refused_result_and_writes_nothing(store: Store) -> None:
    ann = buyer(store, credits=30)
    before = dump(store)
    result = store.run_actionset("buy-course-b", ann, {}, "nonce-1", VISITOR)
    assert (result.outcome, result.ok) == ("insufficient", False)
    assert result.message == "You need 50 credits; you have 30"
    assert dump(store) == before


def test_buying_what_the_contact_owns_debits_nothing(store: Store) -> None:
    ann = buyer(store, credits=100)
    store.apply_tag(ann, "Owns Course B")
    result = store.run_actionset("buy-course-b", ann, {}, "nonce-1", VISITOR)
    assert (result.outcome, result.ok) == ("owned", True)
    assert result.message == "You already own Course B"
    assert store.balance(ann) == 100
    assert outbox_rows(store) == []


def test_the_same_nonce_runs_once_and_answers_with_the_first_result(store: Store) -> None:
    ann = buyer(store, credits=200)
    first = store.run_actionset("buy-item", ann, {"cost": 50}, "nonce-1", VISITOR)
    again = store.run_actionset("buy-item", ann, {"cost": "50"}, "nonce-1", VISITOR)
    assert again.replayed
    assert (again.run_id, again.message, again.balances) == (
        first.run_id,
        first.message,
        first.balances,
    )
    assert store.balance(ann) == 150
    assert len(outbox_rows(store)) == 1


def test_the_same_nonce_with_other_parameters_or_contact_is_refused(store: Store) -> None:
    ann = buyer(store, credits=200)
    bob = buyer(store, "bob@example.com", credits=200)
    store.run_actionset("buy-item", ann, {"cost": 50}, "nonce-1", VISITOR)
    before = dump(store)
    with pytest.raises(IdempotencyConflict, match=re.escape(REUSED)):
        store.run_actionset("buy-item", ann, {"cost": 0}, "nonce-1", VISITOR)
    with pytest.raises(IdempotencyConflict, match=re.escape(REUSED)):
        store.run_actionset("buy-item", bob, {"cost": 50}, "nonce-1", VISITOR)
    with pytest.raises(IdempotencyConflict, match=re.escape(REUSED)):
        store.run_actionset("buy-course-b", ann, {"cost": 50}, "nonce-1", VISITOR)
    assert dump(store) == before


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"cost": "fifty"}, "whole number"),
        ({"cost": "-50"}, "whole number"),
        ({"cost": 12.5}, "whole number"),
        ({"price": "5"}, "no parameter 'price'"),
    ],
)
def test_bad_button_parameters_are_refused_and_nothing_is_written(
    store: Store, params: dict[str, Any], fragment: str
) -> None:
    ann = buyer(store, credits=100)
    before = dump(store)
    with pytest.raises(InvalidInput, match=fragment):
        store.run_actionset("buy-course-b", ann, params, "nonce-1", VISITOR)
    assert dump(store) == before


def test_unknown_action_contact_or_bound_tag_is_refused_and_nothing_is_written(
    store: Store,
) -> None:
    ann = buyer(store, credits=100)
    before = dump(store)
    with pytest.raises(UnknownAction, match="buy-nothing"):
        store.run_actionset("buy-nothing", ann, {}, "n1")
    with pytest.raises(UnknownContact, match=re.escape("no contact 'nobody@example.com'")):
        store.run_actionset("buy-course-b", "nobody@example.com", {}, "n2")
    with pytest.raises(UnknownTag, match="Owns Course Z"):
        store.run_actionset("buy-course-b", ann, {"tag": "Owns Course Z"}, "n3")
    assert dump(store) == before


def test_a_declared_tag_missing_from_the_database_fails_the_run_cleanly(db_url: str) -> None:
    site = parse_config(
        '[tags]\n"Gold" = "x"\n[actionsets.gold]\n'
        'steps = [{ do = "credit", amount = 5 }, { do = "apply_tag", tag = "Gold" }]\n'
    ).actions
    with Store.from_url(db_url, site=site) as store:  # sync_tags() deliberately not called
        ann = buyer(store)
        before = dump(store)
        with pytest.raises(UnknownTag, match="Gold"):
            store.run_actionset("gold", ann, {}, "n1")
        assert dump(store) == before


def test_every_step_kind_runs_in_one_transaction(store: Store, clock: MovableClock) -> None:
    ann = buyer(store, credits=100)
    store.apply_tag(ann, "Lock Course B")
    result = store.run_actionset("everything", ann, {}, "nonce-1", VISITOR)
    assert result.message == "Done Everything: 70 left after paying 30"
    assert result.redirect == "/thanks"
    contact = store.get_contact(ann)
    assert (contact.balance("_Credits"), contact.balance("_Points")) == (70, 5)
    assert contact.has_tag("Gold")
    assert contact.has_tag("Trial")
    assert not contact.has_tag("Lock Course B")
    assert contact.field("LastPurchase") == "everything"
    email, hook = outbox_rows(store)
    assert (email.kind, email.payload["subject"]) == ("email", "Welcome")
    assert (hook.kind, hook.payload["url"], hook.payload["event"]) == (
        "webhook",
        "https://crm.example.com/hook",
        "purchase",
    )
    clock.advance(days=15)
    assert not store.get_contact(ann).has_tag("Trial")


def test_runs_record_their_events_for_automations(store: Store) -> None:
    ann = buyer(store, credits=100)
    result = store.run_actionset("buy-course-b", ann, {}, "nonce-1", VISITOR)
    events = [
        e for e in store.events_after(0) if e.run_id == result.run_id or e.kind == "tag_applied"
    ]
    kinds = [e.kind for e in events]
    assert kinds == ["balance_changed", "tag_applied", "actionset_run"]
    assert events[-1].data == {"action": "buy-course-b", "run_id": result.run_id, "outcome": "done"}


class Injected(Exception):
    """The failure the fault-injection tests raise between two steps."""


EVERYTHING_STEPS = 9


@pytest.mark.parametrize("fail_at", range(EVERYTHING_STEPS + 1))
def test_a_failure_between_any_two_steps_writes_nothing(store: Store, fail_at: int) -> None:
    ann = buyer(store, credits=100)
    store.apply_tag(ann, "Lock Course B")
    before = dump(store)
    reached = []

    def hook(index: int, step: Step | None) -> None:
        reached.append(index)
        if index == fail_at:
            raise Injected(f"crash before step {index}")

    with pytest.raises(Injected):
        store.run_actionset("everything", ann, {}, "nonce-1", VISITOR, step_hook=hook)
    assert reached[-1] == fail_at
    assert dump(store) == before
    # The nonce was not used up by the failed run: the visitor's retry goes through once.
    assert store.run_actionset("everything", ann, {}, "nonce-1", VISITOR).outcome == "done"
    assert store.balance(ann) == 70


def test_requires_and_blocked_by_guard_a_lending_library_return(
    store: Store, clock: MovableClock
) -> None:
    ann = buyer(store, credits=1)
    before = dump(store)
    early = store.run_actionset("return-guide", ann, {}, "n1", VISITOR)
    assert (early.outcome, early.ok) == ("refused", False)
    assert early.message == "You can return The Guide once its lock ends"
    assert dump(store) == before
    assert store.run_actionset("borrow-guide", ann, {}, "n2", VISITOR).outcome == "done"
    assert store.run_actionset("return-guide", ann, {}, "n3", VISITOR).outcome == "refused"
    clock.advance(days=14)
    back = store.run_actionset("return-guide", ann, {}, "n4", VISITOR)
    assert (back.outcome, back.message) == ("done", "Returned The Guide: 1 credits")
    assert not store.get_contact(ann).has_tag("Borrowed Guide")
    assert store.run_actionset("return-guide", ann, {}, "n5", VISITOR).outcome == "refused"
    assert store.balance(ann) == 1


def test_a_replayed_nonce_answers_with_its_first_result_after_the_guard_has_closed(
    store: Store, clock: MovableClock
) -> None:
    ann = buyer(store, credits=5)
    assert store.run_actionset("borrow-guide", ann, {}, "n1", VISITOR).outcome == "done"
    clock.advance(days=14)
    first = store.run_actionset("return-guide", ann, {}, "n2", VISITOR)
    assert first.outcome == "done"
    # The return removed "Borrowed Guide", which return-guide requires: a new run is refused,
    # but the same click submitted again is the same run and answers as it did.
    again = store.run_actionset("return-guide", ann, {}, "n2", VISITOR)
    assert (again.outcome, again.replayed, again.message) == ("done", True, first.message)
    assert store.run_actionset("return-guide", ann, {}, "n3", VISITOR).outcome == "refused"
    assert store.balance(ann) == 5


def test_a_run_records_its_events_and_messages_in_step_order(store: Store) -> None:
    ann = buyer(store, credits=100)
    store.apply_tag(ann, "Lock Course B")
    before = store.events_after(0, limit=1000)[-1].id
    result = store.run_actionset("everything", ann, {}, "nonce-1", VISITOR)
    events = store.events_after(before)  # tag and field events carry no run id
    assert [(e.kind, e.data.get("field") or e.data.get("tag")) for e in events] == [
        ("balance_changed", "_Credits"),
        ("balance_changed", "_Points"),
        ("tag_applied", "Gold"),
        ("tag_applied", "Trial"),
        ("field_set", "LastPurchase"),
        ("tag_removed", "Lock Course B"),
        ("actionset_run", None),
    ]
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert [(m.kind, m.dedupe_key) for m in outbox_rows(store)] == [
        ("email", f"run:{result.run_id}#6"),
        ("webhook", f"run:{result.run_id}#7"),
    ]
