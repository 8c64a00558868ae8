"""Automations dry run: what a rule would do for a contact, computed by the real engine, rolled back.

:func:`preview` opens one transaction, starts the rule's run as if its trigger had fired, executes
every step with the clock moved to each step's due time (waits and ``remove_tag_after`` included),
collects the ledger entries, tag changes, field changes, points and outbox messages the steps
recorded, and then rolls the transaction back. The figures are therefore exactly what the worker
would produce, and nothing is written (PostgreSQL sequences may still advance: they never roll
back, but no row is left behind).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from shortcodes.automations import executor
from shortcodes.automations.rules import AutomationConfig, Rule
from shortcodes.errors import UnknownAction
from shortcodes.store import Store, contacts
from shortcodes.store import schema as db
from shortcodes.store.database import SQLITE_BEGIN
from shortcodes.store.session import Tx, to_db_time

#: Steps simulated at most per contact (a guard against a rule that schedules without end).
MAX_STEPS = 200


@dataclass(frozen=True, slots=True)
class TimelineItem:
    """One executed step: when (and how long after the trigger), what, and its effects."""

    at: datetime
    offset: timedelta
    idx: int
    kind: str
    status: str
    effects: tuple[str, ...]


@dataclass
class Preview:
    """A rule's dry run for one contact."""

    rule: str
    email: str
    branch: str
    items: list[TimelineItem] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The human-readable timeline."""
        head = f"rule {self.rule} for {self.email}: "
        if not self.items:
            return [
                head
                + (
                    "conditions not met; nothing would happen"
                    if self.branch == "otherwise"
                    else "no steps"
                )
            ]
        out = [
            head
            + (
                "conditions hold"
                if self.branch == "steps"
                else "conditions not met: the 'otherwise' steps"
            )
        ]
        for item in self.items:
            when = item.at.strftime("%Y-%m-%d %H:%M")
            status = "" if item.status == "done" else f" [{item.status}]"
            out.append(f"  {_offset(item.offset):>8}  {when}  step {item.idx} {item.kind}{status}")
            out.extend(f"{'':>30}{effect}" for effect in item.effects)
        return out


def _offset(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"+{seconds // size}{unit}"
    return f"+{seconds}s"


def preview(store: Store, config: AutomationConfig, rule_name: str, contact: int | str) -> Preview:
    """Dry-run ``rule_name`` for ``contact`` (see the module docstring)."""
    rule = config.rules.get(rule_name)
    if rule is None:
        known = ", ".join(config.rules) or "none"
        raise UnknownAction(f"no rule {rule_name!r} in {config.file} (rules: {known})")
    start = to_db_time(store.clock())
    with store.engine.connect() as conn:
        conn.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
        trans = conn.begin()
        try:
            tx = Tx(conn, start, store.credit_fields)
            return _simulate(tx, config, rule, contact)
        finally:
            trans.rollback()


def preview_all(store: Store, config: AutomationConfig, rule_name: str) -> Iterator[Preview]:
    """The dry run for every contact, by id."""
    with store.engine.connect() as conn:
        ids = list(conn.execute(select(db.contacts.c.id).order_by(db.contacts.c.id)).scalars())
    for contact_id in ids:
        yield preview(store, config, rule_name, contact_id)


def _simulate(tx: Tx, config: AutomationConfig, rule: Rule, contact: int | str) -> Preview:
    contact_id = contacts.resolve_contact(tx.conn, contact)
    email = tx.conn.execute(
        select(db.contacts.c.email).where(db.contacts.c.id == contact_id)
    ).scalar_one()
    trigger = {"event": rule.trigger.kind, "preview": True, **dict(rule.trigger.args)}
    run_id = executor.start_run(tx, config, rule, contact_id, f"preview:{rule.name}", trigger)
    assert run_id is not None  # the rolled-back transaction cannot hold an earlier preview
    branch = tx.conn.execute(
        select(db.auto_runs.c.data).where(db.auto_runs.c.id == run_id)
    ).scalar_one()["branch"]
    result = Preview(rule.name, email, branch)
    marks = _Marks.take(tx)
    for _ in range(MAX_STEPS):
        step = _next_step(tx, run_id)
        if step is None:
            break
        at_tx = Tx(tx.conn, max(tx.now, step.due_at), tx.credit_fields)
        executor.execute(at_tx, config, step, "preview", limit=1)  # one step: its own effects
        result.items.extend(_items(at_tx, run_id, marks, tx.now, step.id))
        marks = _Marks.take(tx)
    return result


def _next_step(tx: Tx, run_id: int) -> executor.StepRow | None:
    t = db.auto_steps
    row = tx.conn.execute(
        executor.step_query()
        .where((t.c.run_id == run_id) & (t.c.status == "pending"))
        .order_by(t.c.due_at, t.c.id)
        .limit(1)
    ).first()
    return None if row is None else executor.StepRow.from_row(row)


@dataclass(frozen=True, slots=True)
class _Marks:
    """The highest event, outbox and step ids before a step ran."""

    event: int
    outbox: int
    step: int

    @classmethod
    def take(cls, tx: Tx) -> _Marks:
        def top(column: Any) -> int:
            return int(tx.conn.execute(select(func.coalesce(func.max(column), 0))).scalar_one())

        return cls(top(db.events.c.id), top(db.outbox.c.id), top(db.auto_steps.c.id))


def _items(
    tx: Tx, run_id: int, marks: _Marks, start: datetime, first_id: int
) -> list[TimelineItem]:
    """The steps of the run finished since ``marks``, with the effects recorded meanwhile."""
    t = db.auto_steps
    row = tx.conn.execute(
        select(t.c.idx, t.c.kind, t.c.status, t.c.result).where(t.c.id == first_id)
    ).one()
    effects = tuple(_effects(tx, marks))
    if row.status == "failed":
        effects = (f"fails: {row.result}",)
    return [TimelineItem(tx.now, tx.now - start, row.idx, row.kind, row.status, effects)]


def _effects(tx: Tx, marks: _Marks) -> list[str]:
    out = []
    e = db.events
    for row in tx.conn.execute(
        select(e.c.kind, e.c.data).where(e.c.id > marks.event).order_by(e.c.id)
    ):
        text = _describe(row.kind, row.data)
        if text:
            out.append(text)
    o = db.outbox
    for row in tx.conn.execute(
        select(o.c.kind, o.c.payload).where(o.c.id > marks.outbox).order_by(o.c.id)
    ):
        if row.kind == "email":
            balances = ", ".join(f"{k} {v}" for k, v in row.payload.get("balances", {}).items())
            out.append(
                f"email '{row.payload.get('template')}' to {row.payload.get('email')} (balances: {balances})"
            )
        else:
            out.append(f"webhook {row.payload.get('event')} to {row.payload.get('url')}")
    s = db.auto_steps
    for side in tx.conn.execute(select(s.c.kind, s.c.args, s.c.due_at).where(s.c.id > marks.step)):
        if side.args.get("side"):
            out.append(
                f"scheduled: {side.kind} '{side.args.get('tag')}' at {side.due_at:%Y-%m-%d %H:%M}"
            )
    return out


def _describe(kind: str, data: Any) -> str:
    if kind == "balance_changed":
        return f"ledger entry: {data['field']} {data['delta']:+d} = {data['balance']}"
    if kind == "tag_applied":
        until = (
            f" until {data['expires_at'][:16].replace('T', ' ')}" if data.get("expires_at") else ""
        )
        return f"tag applied: {data['tag']}{until}"
    if kind == "tag_removed":
        return f"tag removed: {data['tag']}"
    if kind == "field_set":
        return f"field set: {data['field']} = {data['value']!r}"
    if kind == "points_changed":
        return f"points: {data['points']} available, {data['points_pending']} pending, {data['points_lifetime']} lifetime"
    if kind == "stage_changed":
        return f"stage: {data['from']} -> {data['to']}"
    return ""
