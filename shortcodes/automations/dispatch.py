"""Automations events: turn recorded store events into rule runs, each event exactly once.

The store records events in the transaction of the change that caused them (``tag_applied``,
``balance_changed``, ``field_set``, ``payment_succeeded``, ``webhook``...); loyalty adds
``points_changed``, ``stage_changed`` and ``referral_approved``, and :func:`record_login` adds
``login``. :func:`dispatch` reads events not yet marked, starts the runs of the rules they
trigger, and marks them, in one transaction: an event is dispatched once, or not yet.

Events get their ids when inserted but become visible when their transaction commits, so on
PostgreSQL a lower id can appear after a higher one. Unmarked events are therefore looked for
above a *floor*, not a cursor: the floor only moves to a candidate computed at least
:data:`FLOOR_LAG` seconds earlier with nothing unmarked below it, which assumes no transaction
that records an event stays open that long (store transactions last milliseconds). Between
full scans from the floor, a dispatcher scans only above the highest id it has seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, exists, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row

from shortcodes.automations import executor, release, sync
from shortcodes.automations.rules import AutomationConfig, Rule
from shortcodes.membership.credit_policy import CreditPolicy
from shortcodes.store import schema as db
from shortcodes.store.events import record_event
from shortcodes.store.fastpath import insert_rows
from shortcodes.store.session import Tx

FLOOR_LAG = 60.0
FULL_SCAN_EVERY = 5.0
_NAME = "events"
_PAYMENT_KINDS = ("payment_succeeded", "payment_failed", "refunded")

#: Event kinds whose changed value a ``field_above`` rule watches, and how to read it.
_VALUE_KINDS = ("balance_changed", "field_set", "points_changed")

#: Trigger kind -> the event kinds that can fire it.
_EVENT_KINDS: dict[str, tuple[str, ...]] = {
    "field_above": _VALUE_KINDS,
    "balance_below": ("balance_changed",),
}


def record_login(tx: Tx, contact_id: int) -> None:
    """Record a ``login`` event (the host calls this in the login transaction)."""
    record_event(tx, "login", contact_id, {})


@dataclass
class Dispatcher:
    """Dispatch state of one process: the highest id seen and when it last scanned fully."""

    config: AutomationConfig
    seen: int = 0
    last_full: float = field(default=0.0)
    clock: Callable[[], float] = time.time

    def kinds(self) -> list[str]:
        """The event kinds some rule listens to, or some ``[[sync]]`` peer is sent (and the
        tag changes that pause and resume drips, when the site has one)."""
        found: set[str] = set(self.config.sync.kinds())
        for rule in self.config.rules.values():
            found.update(_EVENT_KINDS.get(rule.trigger.kind, (rule.trigger.kind,)))
            if rule.drip is not None:
                found.update(release.ACCESS_EVENTS)
        return sorted(found)

    def dispatch(self, tx: Tx, limit: int = 2000) -> int:
        """Dispatch up to ``limit`` unmarked events in ``tx``; the number handled.

        On PostgreSQL the dispatch row is locked with SKIP LOCKED: while one worker dispatches,
        the others go on with due steps instead of waiting.
        """
        kinds = self.kinds()
        if not kinds:
            return 0
        state = _state(tx)
        if state is None:
            return 0
        now = self.clock()
        full = now - self.last_full >= FULL_SCAN_EVERY
        low = int(state.floor) if full else max(int(state.floor), self.seen)
        rows = _unmarked(tx, kinds, low, limit)
        starts: list[executor.RunStart] = []
        owners: list[int] = []  # the index in ``rows`` of the event behind each start
        for n, event in enumerate(rows):
            for start in self.starts(tx, event):
                starts.append(start)
                owners.append(n)
            self.seen = max(self.seen, int(event.id))
            release.settle_events(tx, self.config, event)
        runs = [0] * len(rows)
        for n, started in zip(owners, executor.start_runs(tx, self.config, starts), strict=True):
            runs[n] += started
        _mark(tx, [(int(event.id), count) for event, count in zip(rows, runs, strict=True)], now)
        sync.queue_outbound(tx, self.config.sync, rows)
        if full:
            self.last_full = now
            if len(rows) < limit:
                _move_floor(tx, state, kinds, now)
        return len(rows)

    def starts(self, tx: Tx, event: Row[Any]) -> list[executor.RunStart]:
        """The runs ``event`` triggers (one per matching rule; replays are skipped later). A
        matching drip rule starts the contact's drip here (once: see ``release.start``)."""
        if event.contact_id is None:
            return []
        trigger = {"event": event.kind, "event_id": int(event.id), **dict(event.data)}
        cause = event.data.get("cause")
        cause = cause if isinstance(cause, dict) else {}
        prior = tuple(str(name) for name in cause.get("chain", ()))
        matched = [
            rule
            for rule in self.config.rules.values()
            if (rule.retrigger or cause.get("rule") != rule.name) and _matches(tx, rule, event)
        ]
        for rule in matched:
            if rule.drip is not None:
                release.start(tx, self.config, rule, int(event.contact_id), event.created_at)
        return [
            executor.RunStart(
                rule,
                event.contact_id,
                _dedupe_key(rule, event),
                trigger,
                int(event.id),
                (*prior, rule.name),
            )
            for rule in matched
            if rule.drip is None or rule.steps
        ]


def _dedupe_key(rule: Rule, event: Row[Any]) -> str:
    """One run per rule and event; for payments, per rule and payment.

    A payment provider that retries with a new event id still names the same payment, so a
    monthly-credits rule deposits once per charge however often the charge is reported.
    """
    payment = event.data.get("payment_id")
    if event.kind in _PAYMENT_KINDS and isinstance(payment, str) and payment:
        return f"{rule.name}:{event.kind}:{payment}"
    return f"{rule.name}:event:{event.id}"


def _state(tx: Tx) -> Any:
    """The dispatch row, locked; None when another worker holds it (PostgreSQL)."""
    t = db.auto_dispatch
    if tx.conn.execute(select(t.c.name).where(t.c.name == _NAME)).first() is None:
        dialect_insert = postgresql.insert if tx.is_postgres else sqlite.insert
        row = {"name": _NAME, "floor": 0, "candidate": 0, "candidate_at": 0.0}
        tx.conn.execute(dialect_insert(t).values(**row).on_conflict_do_nothing())
    query = select(t).where(t.c.name == _NAME)
    if tx.is_postgres:
        query = query.with_for_update(skip_locked=True)
    return tx.conn.execute(query).first()


def _unmarked(tx: Tx, kinds: list[str], low: int, limit: int) -> list[Any]:
    e, m = db.events, db.auto_event_marks
    marked = exists().where(m.c.event_id == e.c.id)
    query = (
        select(e.c.id, e.c.kind, e.c.contact_id, e.c.data, e.c.created_at)
        .where(and_(e.c.id > low, e.c.kind.in_(kinds), ~marked))
        .order_by(e.c.id)
        .limit(limit)
    )
    return list(tx.conn.execute(query))


def _mark(tx: Tx, marks: list[tuple[int, int]], now: float) -> None:
    """Mark events (id, runs started) as dispatched, in one statement."""
    rows = [{"event_id": e, "runs": n, "marked_at": now} for e, n in marks]
    insert_rows(tx.conn, db.auto_event_marks, rows)


def _move_floor(tx: Tx, state: Any, kinds: list[str], now: float) -> None:
    """Promote a candidate old enough, then take a new candidate (see the module docstring)."""
    t = db.auto_dispatch
    values: dict[str, Any] = {}
    if now - float(state.candidate_at) >= FLOOR_LAG:
        floor = int(state.floor)
        if int(state.candidate) > floor and not _unmarked(tx, kinds, floor, 1):
            floor = int(state.candidate)
        top = tx.conn.execute(select(func.max(db.events.c.id))).scalar() or 0
        values = {"floor": floor, "candidate": max(int(top), floor), "candidate_at": now}
    if values:
        tx.conn.execute(update(t).where(t.c.name == _NAME).values(**values))


def _matches(tx: Tx, rule: Rule, event: Row[Any]) -> bool:
    trigger, data = rule.trigger, event.data
    if trigger.kind == "field_above":
        return _crossed(tx, rule, event)
    if trigger.kind == "balance_below":
        return _fell_below(rule, event, tx.policy(str(data.get("field", ""))))
    if trigger.kind == "credits_expiring":
        return bool(event.kind == "credits_expiring" and data.get("rule") == rule.name)
    if event.kind != trigger.kind:
        return False
    checks = {"tag": "tag", "product": "product", "name": "name", "stage": "to", "item": "item"}
    for arg, key in checks.items():
        wanted = trigger.args.get(arg)
        if wanted is not None and str(data.get(key, "")).casefold() != str(wanted).casefold():
            return False
    return True


def _value(event: Row[Any], field_name: str) -> Any:
    data, wanted = event.data, field_name.casefold()
    if event.kind == "points_changed":
        return next((v for k, v in data.items() if k.casefold() == wanted), None)
    if str(data.get("field", "")).casefold() != wanted:
        return None
    return data.get("balance" if event.kind == "balance_changed" else "value")


def _crossed(tx: Tx, rule: Rule, event: Row[Any]) -> bool:
    """True the first time the contact's watched value is above the threshold (once ever).

    The rule is a milestone ("earned more than 200 points"): a value that falls back and rises
    again does not fire it a second time. ``auto_rule_state`` remembers who has passed.
    """
    value = _as_number(_value(event, str(rule.trigger.args["field"])))
    if value is None or value <= rule.trigger.args["value"]:
        return False
    t = db.auto_rule_state
    where = (t.c.rule == rule.name) & (t.c.contact_id == event.contact_id)
    if tx.conn.execute(select(t.c.above).where(where)).first() is not None:
        return False
    tx.conn.execute(
        insert(t).values(rule=rule.name, contact_id=event.contact_id, above=True, updated_at=tx.now)
    )
    return True


def _fell_below(rule: Rule, event: Row[Any], policy: CreditPolicy) -> bool:
    """True when this balance change took the field from at least the threshold to below it.

    Judged on the change itself (its ``balance_changed`` event, written in the change's own
    transaction, carries the delta and the balance after it), in exact units: a later change
    can never make an earlier one look like a crossing, and every crossing fires again.
    """
    data = event.data
    if str(data.get("field", "")).casefold() != str(rule.trigger.args["field"]).casefold():
        return False
    after, delta = data.get("balance"), data.get("delta")
    if not isinstance(after, int) or not isinstance(delta, int):
        return False
    threshold = Decimal(str(rule.trigger.args["value"])).scaleb(policy.decimals)
    return after - delta >= threshold > after


def record_expiring(tx: Tx, config: AutomationConfig, limit: int = 500) -> int:
    """For each ``credits_expiring(field, within)`` rule, record one ``credits_expiring`` event
    per grant of the field with credits left that expires within the window (data: ``rule``,
    ``field``, ``grant_id``, ``amount`` as people read it, ``expires_at``), once per grant and
    rule (``grant_alerts``); the dispatcher turns them into runs. Returns the events recorded."""
    g, a = db.credit_grants, db.grant_alerts
    recorded = 0
    for rule in config.rules_for("credits_expiring"):
        field_name, within = str(rule.trigger.args["field"]), rule.trigger.args["within"]
        told = select(a.c.grant_id).where((a.c.rule == rule.name) & (a.c.grant_id == g.c.id))
        due = tx.conn.execute(
            select(g.c.id, g.c.contact_id, g.c.field, g.c.remaining, g.c.expires_at)
            .where(
                (func.lower(g.c.field) == field_name.casefold())
                & (g.c.status == "active")
                & (g.c.remaining > 0)
                & (g.c.expires_at > tx.now)
                & (g.c.expires_at <= within.after(tx.now))
                & ~told.exists()
            )
            .order_by(g.c.expires_at, g.c.id)
            .limit(limit)
        ).all()
        for row in due:
            tx.conn.execute(insert(a).values(grant_id=row.id, rule=rule.name, created_at=tx.now))
            amount = tx.policy(row.field).show(int(row.remaining))
            data = {
                "rule": rule.name,
                "field": row.field,
                "grant_id": row.id,
                "amount": str(amount),
                "expires_at": row.expires_at.isoformat(sep=" ", timespec="seconds"),
            }
            record_event(tx, "credits_expiring", row.contact_id, data)
            recorded += 1
    return recorded


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None
