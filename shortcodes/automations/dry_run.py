"""Automations dry run: what a rule would do for a contact, computed by the real engine, rolled back.

:func:`preview` opens one transaction, starts the rule's run as if its trigger had fired, executes
every step with the clock moved to each step's due time (waits and ``remove_tag_after`` included),
collects the ledger entries, tag changes, field changes, points and outbox messages the steps
recorded, and then rolls the transaction back. The figures are therefore exactly what the worker
would produce, and nothing is written (PostgreSQL sequences may still advance: they never roll
back, but no row is left behind).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from shortcodes.automations import executor, release
from shortcodes.automations.dispatch import Dispatcher
from shortcodes.automations.drip import active_text
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
    #: The rule whose run the step belongs to, when it is not the previewed rule (a run its
    #: effects started: the chain a rule causes is part of what it does).
    rule: str = ""


@dataclass
class Preview:
    """A rule's dry run for one contact (for a drip rule, its drip timeline: ``drip``)."""

    rule: str
    email: str
    branch: str
    items: list[TimelineItem] = field(default_factory=list)
    drip: DripTimeline | None = None

    def lines(self) -> list[str]:
        """The human-readable timeline."""
        if self.drip is not None:
            return self.drip.lines(self.rule, self.email)
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
            what = f"step {item.idx} {item.kind}" if item.idx >= 0 else item.kind
            by = f"rule {item.rule}: " if item.rule else ""
            out.append(f"  {_offset(item.offset):>8}  {when}  {by}{what}{status}")
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
    """Dry-run ``rule_name`` for ``contact`` (see the module docstring); a drip rule's preview is
    its drip timeline (:func:`drip_timeline`)."""
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
    if rule.drip is not None:
        return Preview(rule.name, email, "drip", drip=drip_timeline(tx, config, rule, contact_id))
    trigger = {"event": rule.trigger.kind, "preview": True, **dict(rule.trigger.args)}
    run_id = executor.start_run(tx, config, rule, contact_id, f"preview:{rule.name}", trigger)
    assert run_id is not None  # the rolled-back transaction cannot hold an earlier preview
    branch = tx.conn.execute(
        select(db.auto_runs.c.data).where(db.auto_runs.c.id == run_id)
    ).scalar_one()["branch"]
    result = Preview(rule.name, email, branch)
    runs = {run_id: ""}  # the runs followed -> their label ("" for the previewed rule)
    dispatcher = Dispatcher(config)
    marks = _Marks.take(tx)
    for _ in range(MAX_STEPS):
        step = _next_step(tx, list(runs))
        if step is None:
            break
        at_tx = Tx(tx.conn, max(tx.now, step.due_at), tx.credit_fields)
        executor.execute(at_tx, config, step, "preview", limit=1)  # one step: its own effects
        result.items.extend(_items(at_tx, runs[step.run.id], marks, tx.now, step.id))
        result.items.extend(_chain(at_tx, config, dispatcher, marks, runs, tx.now))
        marks = _Marks.take(tx)
    return result


def _chain(
    tx: Tx,
    config: AutomationConfig,
    dispatcher: Dispatcher,
    marks: _Marks,
    runs: dict[int, str],
    start: datetime,
) -> list[TimelineItem]:
    """The runs the events of the step just simulated would start, as the worker's dispatcher
    would start them (a rule is not started by its own effects unless it says ``retrigger``;
    a chain longer than ``max_chain`` is refused by the loop guard): each started run is
    followed from then on, each refusal is shown with the chain and the alert it sends."""
    e = db.events
    query = select(e.c.id, e.c.kind, e.c.contact_id, e.c.data, e.c.created_at)
    events: list[Any] = list(tx.conn.execute(query.where(e.c.id > marks.event).order_by(e.c.id)))
    before = _Marks.take(tx)
    for event in events:
        executor.start_runs(tx, config, dispatcher.starts(tx, event))
    r = db.auto_runs
    made = tx.conn.execute(
        select(r.c.id, r.c.rule, r.c.status, r.c.message, r.c.data)
        .where(r.c.id > max(runs))
        .order_by(r.c.id)
    ).all()
    items = []
    for run in made:
        # Every run seen is remembered (a refused one has no steps to follow): the next step's
        # chain lists only the runs made after it.
        runs[int(run.id)] = run.rule
        chain = " -> ".join(run.data.get("chain", ()))
        if run.status == "failed":
            effects = (run.message, *_effects(tx, before))
            items.append(
                TimelineItem(tx.now, tx.now - start, -1, "start", "refused", effects, run.rule)
            )
            continue
        effects = (f"started by this chain: {chain}",) if chain else ()
        items.append(TimelineItem(tx.now, tx.now - start, -1, "start", "done", effects, run.rule))
    return items


def _next_step(tx: Tx, run_ids: list[int]) -> executor.StepRow | None:
    t = db.auto_steps
    row = tx.conn.execute(
        executor.step_query()
        .where(t.c.run_id.in_(run_ids) & (t.c.status == "pending"))
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


def _items(tx: Tx, label: str, marks: _Marks, start: datetime, first_id: int) -> list[TimelineItem]:
    """The steps of the run finished since ``marks``, with the effects recorded meanwhile."""
    t = db.auto_steps
    row = tx.conn.execute(
        select(t.c.idx, t.c.kind, t.c.status, t.c.result).where(t.c.id == first_id)
    ).one()
    effects = tuple(_effects(tx, marks))
    if row.status == "failed":
        effects = (f"fails: {row.result}",)
    return [TimelineItem(tx.now, tx.now - start, row.idx, row.kind, row.status, effects, label)]


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
            shown = f" (balances: {balances})" if balances else ""
            out.append(
                f"email '{row.payload.get('template')}' to {row.payload.get('email')}{shown}"
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


# -- drips -------------------------------------------------------------------------------------

#: How far ahead a drip preview looks (a calendar item years away is still shown).
DRIP_HORIZON = timedelta(days=3660)
_DRIP_WORDS = {
    "drip_started": "started",
    "drip_paused": "paused: access lapsed",
    "drip_resumed": "resumed: access is back",
}


@dataclass(frozen=True, slots=True)
class DripMoment:
    """One change of a member's drip: when, the active time then, what, and its effects."""

    at: datetime
    active: timedelta
    what: str
    effects: tuple[str, ...] = ()
    #: False for what happened already (the member's history), True for the dry run's future.
    projected: bool = False


@dataclass
class DripTimeline:
    """A member's drip: its history and, from now, what would happen if nothing else changed."""

    now: datetime
    started: datetime | None
    moments: list[DripMoment] = field(default_factory=list)
    #: The items still waiting when the simulation ends (paused, or past the horizon).
    waiting: tuple[str, ...] = ()
    total: int = 0
    conditions_met: bool = True

    def lines(self, rule: str, email: str) -> list[str]:
        """The human-readable timeline: history, then the projection, then what still waits."""
        past = [m for m in self.moments if not m.projected]
        if not self.conditions_met:
            return [f"drip {rule} for {email}: conditions not met; the drip would not start"]
        head = f"drip {rule} for {email}: " + (
            f"started {self.started:%Y-%m-%d %H:%M}; as of {self.now:%Y-%m-%d %H:%M}"
            if past
            else f"not started; if it started now ({self.now:%Y-%m-%d %H:%M})"
        )
        out = [head, *_moment_lines(past)]
        future = [m for m in self.moments if m.projected]
        if past and future:
            out.append("  then, if access changes no further:")
        out += _moment_lines(future)
        released = self.total - len(self.waiting)
        if not self.waiting:
            out.append(f"  all {self.total} items released")
        else:
            out.append(
                f"  {released} of {self.total} items released; waiting for access to return: "
                + ", ".join(self.waiting)
            )
        return out


def _moment_lines(moments: list[DripMoment]) -> list[str]:
    out = []
    for m in moments:
        out.append(f"  {m.at:%Y-%m-%d %H:%M}  active {active_text(m.active):>6}  {m.what}")
        out.extend(f"{'':>35}{effect}" for effect in m.effects)
    return out


def drip_timeline(tx: Tx, config: AutomationConfig, rule: Rule, contact_id: int) -> DripTimeline:
    """The member's drip of ``rule``: its recorded history, then the worker's real steps run at
    each future settle point (a release, the end of a grant) inside the caller's rolled-back
    transaction, starting the drip now when it has not started."""
    assert rule.drip is not None
    moments = [
        _moment(config, kind, data, (), projected=False)
        for _, kind, data in release.history(tx, rule, contact_id)
    ]
    timeline = DripTimeline(tx.now, None, moments, total=len(rule.drip.items))

    def start(at: Tx) -> bool:
        return release.start(at, config, rule, contact_id, at.now)

    def advance(at: Tx) -> bool:
        release.advance_member(at, rule, contact_id)
        return True

    if release.status(tx, rule, contact_id) is None:
        timeline.conditions_met = _point(tx, config, rule, contact_id, timeline, start)
        if not timeline.conditions_met:
            return timeline
    for _ in range(MAX_STEPS):
        state = release.status(tx, rule, contact_id)
        if state is None or state.next_at is None or state.next_at > tx.now + DRIP_HORIZON:
            break
        at = Tx(tx.conn, max(tx.now, state.next_at), tx.credit_fields)
        _point(at, config, rule, contact_id, timeline, advance)
    state = release.status(tx, rule, contact_id)
    assert state is not None
    timeline.started = state.started_at
    timeline.waiting = tuple(i.name for i in rule.drip.items if i.name not in state.released)
    return timeline


def _point(
    tx: Tx,
    config: AutomationConfig,
    rule: Rule,
    contact_id: int,
    timeline: DripTimeline,
    work: Callable[[Tx], bool],
) -> bool:
    """Do ``work`` at ``tx.now``, run the item steps it queued, and add what it recorded."""
    marks = _Marks.take(tx)
    if not work(tx):
        return False
    s = db.auto_steps
    while True:
        row = tx.conn.execute(
            executor.step_query()
            .where((s.c.id > marks.step) & (s.c.status == "pending") & (s.c.due_at <= tx.now))
            .order_by(s.c.due_at, s.c.id)
            .limit(1)
        ).first()
        if row is None:
            break
        executor.execute(tx, config, executor.StepRow.from_row(row), "preview", limit=1)
    effects = tuple(_effects(tx, marks))
    found = list(release.history(tx, rule, contact_id, marks.event))
    for n, (_, kind, data) in enumerate(found):
        last = n == len(found) - 1
        timeline.moments.append(
            _moment(config, kind, data, effects if last else (), projected=True)
        )
    return True


def _moment(
    config: AutomationConfig, kind: str, data: Any, effects: tuple[str, ...], *, projected: bool
) -> DripMoment:
    at = datetime.fromisoformat(str(data["at"]))
    active = timedelta(microseconds=int(data.get("active_us", 0)))
    what = _DRIP_WORDS.get(kind)
    if what is None:
        item = str(data.get("item"))
        then = [
            r.name
            for r in config.rules_for("unlocked")
            if str(r.trigger.args.get("item", item)).casefold() == item.casefold()
        ]
        what = f"unlocked {item}" + (f" (starts {', '.join(then)})" if then else "")
    return DripMoment(at, active, what, effects, projected)
