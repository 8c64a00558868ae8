"""Automations engine: start rule runs and execute their steps, each step exactly once.

A run stores a snapshot of its rule's steps. Step ``i`` is an ``auto_steps`` row; executing it
(effect, ``status = 'done'`` and the insertion of step ``i + 1``) is one transaction, so a step
either happened completely, with its successor scheduled, or not at all. Ledger entries, tags,
outbox messages and points lots written by a step carry keys derived from the step's id, so even
a code path that skipped the status check could not apply a step twice.

``wait`` schedules the next step ``for`` later; ``remove_tag_after`` schedules a side step (a
``remove_tag`` row that does not hold up the rest of the run). Steps due now are executed in the
same transaction as the step before them (up to :data:`CHAIN_LIMIT`), so a rule without waits
finishes in one worker pass. A step that fails for a business reason (too few credits, a tag that
does not exist) rolls back its own effect, is marked ``failed`` with the reason, and ends the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import insert, select, update

from shortcodes.automations import loyalty
from shortcodes.automations.rules import AutomationConfig, Rule
from shortcodes.conditions import compile_condition
from shortcodes.context import Contact, Context, Tag
from shortcodes.errors import StoreError
from shortcodes.membership import steps
from shortcodes.membership.steps import Step
from shortcodes.membership.vocabulary import Duration
from shortcodes.store import contacts, ledger
from shortcodes.store import schema as db
from shortcodes.store.events import caused_by, enqueue, record_event
from shortcodes.store.fastpath import among, insert_many, insert_rows
from shortcodes.store.session import Actor, Tx

#: How many due-now steps of one run are executed back to back in one transaction.
CHAIN_LIMIT = 50

#: Steps whose store operation locks the contact itself (the ledger, loyalty), or that touch no
#: contact state: one lock statement fewer each.
_LOCKS_ITSELF = frozenset({"credit", "debit", "award_points", "remove_points", "wait"})


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What a step needs of its run: the rule's name and the run's data (trigger, plan)."""

    id: int
    rule: str
    contact_id: int
    data: Mapping[str, Any]

    def chain(self) -> list[str]:
        """The rules of the runs that caused this one, ending with this run's rule."""
        return list(self.data.get("chain", [self.rule]))

    def cause(self) -> dict[str, Any]:
        """What the events of this run's steps name as their cause (see ``dispatch``)."""
        return {"rule": self.rule, "run_id": self.id, "chain": self.chain()}


@dataclass(frozen=True, slots=True)
class StepRow:
    """A step row as the worker claimed it, with its run."""

    id: int
    run: RunInfo
    idx: int
    kind: str
    args: Mapping[str, Any]
    contact_id: int
    due_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> StepRow:
        """From a row of :func:`step_query`."""
        run = RunInfo(row.run_id, row.rule, row.contact_id, row.data)
        return cls(row.id, run, row.idx, row.kind, row.args, row.contact_id, row.due_at)


def step_query() -> Any:
    """SELECT of step rows joined with their run, as :meth:`StepRow.from_row` reads them."""
    s, r = db.auto_steps, db.auto_runs
    columns = (s.c.id, s.c.run_id, s.c.idx, s.c.kind, s.c.args, s.c.contact_id, s.c.due_at)
    return select(*columns, r.c.rule, r.c.data).join(r, s.c.run_id == r.c.id)


def claim_due(tx: Tx, limit: int) -> list[StepRow]:
    """Lock up to ``limit`` due pending steps (skipping locked ones on PostgreSQL), with runs.

    The locking query walks the ``(status, due_at)`` index and stops after ``limit`` rows
    however many steps are waiting; the runs are fetched by id afterwards. On PostgreSQL it
    locks each step's *contact* too, with SKIP LOCKED: a worker takes only steps of contacts no
    other transaction holds, so parallel workers (and visitors' purchases) never queue behind
    each other's batches. Returned in contact order.
    """
    s, r, c = db.auto_steps, db.auto_runs, db.contacts
    columns = (s.c.id, s.c.run_id, s.c.idx, s.c.kind, s.c.args, s.c.contact_id, s.c.due_at)
    query = (
        select(*columns)
        .where((s.c.status == "pending") & (s.c.due_at <= tx.now))
        .order_by(s.c.due_at)
        .limit(limit)
    )
    if tx.is_postgres:
        query = query.join(c, c.c.id == s.c.contact_id).with_for_update(of=(s, c), skip_locked=True)
    rows = tx.conn.execute(query).all()
    if not rows:
        return []
    run_ids = sorted({row.run_id for row in rows})
    runs = {
        run.id: run
        for run in tx.conn.execute(
            select(r.c.id, r.c.rule, r.c.contact_id, r.c.data).where(
                among(tx.conn, r.c.id, run_ids)
            )
        )
    }
    steps = [
        StepRow(
            row.id,
            RunInfo(
                row.run_id,
                runs[row.run_id].rule,
                runs[row.run_id].contact_id,
                runs[row.run_id].data,
            ),
            row.idx,
            row.kind,
            row.args,
            row.contact_id,
            row.due_at,
        )
        for row in rows
    ]
    return sorted(steps, key=lambda step: (step.contact_id, step.id))


def contact_view(tx: Tx, config: AutomationConfig, contact_id: int) -> Contact:
    """The contact as conditions see it: tags, fields, balances and points (``Points``...)."""
    snap = contacts.snapshot(
        tx.conn, contact_id, tx.now, config.actions.credit_fields, config.actions.policies
    )
    extra = loyalty.fields(tx.conn, config.loyalty, contact_id, tx.now)
    return Contact(snap.id, snap.email, snap.tags, {**snap.fields, **extra})


def condition_holds(tx: Tx, config: AutomationConfig, rule: Rule, contact_id: int) -> bool:
    """Whether the rule's condition holds for the contact now (no condition: always)."""
    if rule.conditions is None:
        return True
    contact = contact_view(tx, config, contact_id)
    return compile_condition(rule.conditions).evaluate(Context(contact=contact))


def start_run(
    tx: Tx,
    config: AutomationConfig,
    rule: Rule,
    contact_id: int,
    dedupe_key: str,
    trigger: Mapping[str, Any],
    event_id: int | None = None,
) -> int | None:
    """Create the run of ``rule`` for ``contact_id`` with its first step due now.

    Returns the run id, or None when a run with this ``dedupe_key`` exists (a replay).
    """
    t = db.auto_runs
    if tx.conn.execute(select(t.c.id).where(t.c.dedupe_key == dedupe_key)).first() is not None:
        return None
    holds = condition_holds(tx, config, rule, contact_id)
    row = _run_row(tx, RunStart(rule, contact_id, dedupe_key, trigger, event_id), holds)
    run_id = int(tx.conn.execute(insert(t).values(**row).returning(t.c.id)).scalar_one())
    chosen = row["data"]["steps"]
    if chosen:
        _insert_step(tx, run_id, contact_id, 0, chosen[0], f"{run_id}:0", tx.now)
    return run_id


@dataclass(frozen=True, slots=True)
class RunStart:
    """A run to start: the rule, the contact, the run's dedupe key, the trigger's data."""

    rule: Rule
    contact_id: int
    dedupe_key: str
    trigger: Mapping[str, Any]
    event_id: int | None = None
    #: The rules of the runs that caused this one, then its own (empty: just its own).
    chain: tuple[str, ...] = ()


def _run_row(tx: Tx, start: RunStart, holds: bool) -> dict[str, Any]:
    """The ``auto_runs`` row of a run whose condition held (or not): its snapshot of steps."""
    rule = start.rule
    chosen = rule.steps if holds else rule.otherwise
    return {
        "rule": rule.name,
        "contact_id": start.contact_id,
        "event_id": start.event_id,
        "dedupe_key": start.dedupe_key[:250],
        "status": "running" if chosen else "skipped",
        "data": {
            "trigger": dict(start.trigger),
            "branch": "steps" if holds else "otherwise",
            "steps": [s.to_json() for s in chosen],
            "chain": list(start.chain or (rule.name,)),
        },
        "message": "" if chosen else "conditions not met",
        "created_at": tx.now,
        "finished_at": None if chosen else tx.now,
    }


def start_runs(tx: Tx, config: AutomationConfig, starts: Sequence[RunStart]) -> list[bool]:
    """:func:`start_run` for many runs at once; for each, whether it was started.

    Rules with a condition are decided one contact at a time (the condition reads the contact);
    the others are started with one read of the existing dedupe keys, one insert of the runs and
    one of their first steps. A key seen twice (one payment reported twice) starts one run.
    """
    t = db.auto_runs
    keys = sorted({s.dedupe_key for s in starts if s.rule.conditions is None})
    taken: set[str] = set()
    for first in range(0, len(keys), 5000):
        chunk = keys[first : first + 5000]
        taken.update(
            tx.conn.execute(
                select(t.c.dedupe_key).where(among(tx.conn, t.c.dedupe_key, chunk))
            ).scalars()
        )
    started: list[bool] = []
    rows: list[dict[str, Any]] = []
    for start in starts:
        if len(start.chain) > config.max_chain:
            started.append(stop_loop(tx, config, start))
            continue
        if start.rule.conditions is not None:
            run = start_run(
                tx, config, start.rule, start.contact_id, start.dedupe_key, start.trigger,
                start.event_id,
            )  # fmt: skip
            started.append(run is not None)
            continue
        fresh = start.dedupe_key not in taken
        taken.add(start.dedupe_key)
        started.append(fresh)
        if fresh:
            rows.append(_run_row(tx, start, holds=True))
    if rows:
        ids = insert_many(tx.conn, t, rows, "dedupe_key")
        _insert_first_steps(tx, list(zip(ids, rows, strict=True)))
    return started


def stop_loop(tx: Tx, config: AutomationConfig, start: RunStart) -> bool:
    """Record the run as failed by the loop guard, with its chain, and alert the admins.

    The run is inserted (under its dedupe key, so a replay changes nothing) without steps; a
    ``loop_stopped`` event records it, and each contact holding the admin tag is sent an email.
    False when the run existed already.
    """
    t = db.auto_runs
    if tx.conn.execute(select(t.c.id).where(t.c.dedupe_key == start.dedupe_key)).first():
        return False
    chain = " -> ".join(start.chain)
    message = (
        f"stopped by the loop guard: a chain of {len(start.chain)} runs, each caused by the one "
        f"before, is longer than [automations] max_chain = {config.max_chain}: {chain}"
    )
    row = _run_row(tx, start, holds=False) | {
        "status": "failed",
        "message": message,
        "finished_at": tx.now,
    }
    row["data"] = {**row["data"], "steps": []}
    run_id = int(tx.conn.execute(insert(t).values(**row).returning(t.c.id)).scalar_one())
    data = {"rule": start.rule.name, "run_id": run_id, "chain": list(start.chain)}
    record_event(tx, "loop_stopped", start.contact_id, data)
    ct, tg, c = db.contact_tags, db.tags, db.contacts
    admins = tx.conn.execute(
        select(c.c.id, c.c.email)
        .join(ct, ct.c.contact_id == c.c.id)
        .join(tg, tg.c.id == ct.c.tag_id)
        .where(tg.c.name == config.admin_tag)
        .where(ct.c.expires_at.is_(None) | (ct.c.expires_at > tx.now))
        .order_by(c.c.id)
    ).all()
    for admin_id, email in admins:
        payload = {
            "template": "loop-stopped",
            "subject": f"Automation loop stopped: rule {start.rule.name}",
            "email": email,
            "contact_id": admin_id,
            "balances": {},
            "message": message,
            **data,
            "stopped_contact_id": start.contact_id,
        }
        enqueue(tx, "email", f"loop-stopped:{run_id}:{admin_id}", payload, admin_id)
    return True


def _insert_first_steps(tx: Tx, runs: list[tuple[int, dict[str, Any]]]) -> None:
    steps_ = [
        {
            "run_id": run_id,
            "key": f"{run_id}:0",
            "idx": 0,
            "kind": row["data"]["steps"][0]["do"],
            "args": {k: v for k, v in row["data"]["steps"][0].items() if k != "do"},
            "contact_id": row["contact_id"],
            "due_at": tx.now,
            "status": "pending",
        }
        for run_id, row in runs
        if row["data"]["steps"]
    ]
    insert_rows(tx.conn, db.auto_steps, steps_)


def _insert_step(
    tx: Tx,
    run_id: int,
    contact_id: int,
    idx: int,
    step: Mapping[str, Any],
    key: str,
    due_at: datetime,
) -> int:
    t = db.auto_steps
    return int(
        tx.conn.execute(
            insert(t)
            .values(
                run_id=run_id,
                key=key,
                idx=idx,
                kind=step["do"],
                args={k: v for k, v in step.items() if k != "do"},
                contact_id=contact_id,
                due_at=due_at,
                status="pending",
            )
            .returning(t.c.id)
        ).scalar_one()
    )


def execute(
    tx: Tx,
    config: AutomationConfig,
    step: StepRow,
    worker: str,
    limit: int = CHAIN_LIMIT,
    *,
    isolate: bool = True,
) -> int:
    """Execute a claimed pending step and the due-now steps after it (at most ``limit``).

    ``isolate`` runs each step in a savepoint, so a step refused by the store (too few credits)
    is marked failed while the transaction goes on. Without it (the worker's fast path, two
    round trips fewer per step) such a refusal propagates and the caller rolls back the batch
    and redoes it isolated.
    """
    count = 0
    current: StepRow | None = step
    while current is not None and count < limit:
        current = _execute_one(tx, config, current, worker, isolate)
        count += 1
    return count


def _execute_one(
    tx: Tx, config: AutomationConfig, step: StepRow, worker: str, isolate: bool
) -> StepRow | None:
    run = step.run
    if step.kind not in _LOCKS_ITSELF:
        contacts.lock_contact(tx, step.contact_id)
    if not isolate:
        note, delay = _perform(tx, config, run, step)
        _finish_step(tx, step, "done", note, worker)
        return None if step.args.get("side") else _advance(tx, run, step, delay)
    try:
        with tx.conn.begin_nested():
            note, delay = _perform(tx, config, run, step)
    except StoreError as exc:
        _finish_step(tx, step, "failed", str(exc), worker)
        if not step.args.get("side"):
            _finish_run(tx, run.id, "failed", f"step {step.idx} ({step.kind}) failed: {exc}")
        return None
    _finish_step(tx, step, "done", note, worker)
    if step.args.get("side"):
        return None
    return _advance(tx, run, step, delay)


def _advance(tx: Tx, run: RunInfo, step: StepRow, delay: Duration | None) -> StepRow | None:
    planned = run.data["steps"]
    nxt = step.idx + 1
    if nxt >= len(planned):
        _finish_run(tx, run.id, "done", "")
        return None
    due = tx.now if delay is None else delay.after(tx.now)
    new_id = _insert_step(tx, run.id, run.contact_id, nxt, planned[nxt], f"{run.id}:{nxt}", due)
    if due > tx.now:
        return None
    args = {k: v for k, v in planned[nxt].items() if k != "do"}
    return StepRow(new_id, run, nxt, planned[nxt]["do"], args, run.contact_id, due)


def _finish_step(tx: Tx, step: StepRow, status: str, note: str, worker: str) -> None:
    t = db.auto_steps
    tx.conn.execute(
        update(t)
        .where(t.c.id == step.id)
        .values(status=status, result=note[:2000], done_at=tx.now, worker=worker[:120])
    )


def _finish_run(tx: Tx, run_id: int, status: str, message: str) -> None:
    t = db.auto_runs
    tx.conn.execute(
        update(t).where(t.c.id == run_id).values(status=status, message=message, finished_at=tx.now)
    )


def _perform(
    tx: Tx, config: AutomationConfig, run: RunInfo, step: StepRow
) -> tuple[str, Duration | None]:
    """Do one step's effect inside the caller's savepoint: a note of what it did, and how long
    the next step waits (None: due now)."""
    performer = _RuleRun(tx, step.contact_id, f"rule:{run.rule}", config, run, step)
    stored = Step.from_json({"do": step.kind, **step.args})
    with caused_by(run.cause()):
        args = {k: v for k, v in stored.args.items() if k != "side"}
        note = steps.perform(performer, stored, args)
    return note, performer.delay


@dataclass
class _RuleRun:
    """A rule step in progress: the automations' :class:`~shortcodes.membership.steps.StepRun`.

    Every write is keyed by the step's id (``auto:<id>``), so a step can never apply twice."""

    tx: Tx
    contact_id: int
    source: str
    config: AutomationConfig
    run: RunInfo
    step: StepRow
    delay: Duration | None = field(default=None)

    @property
    def key(self) -> str:
        """The idempotency key of this step's writes."""
        return f"auto:{self.step.id}"

    def tag(self, name: str) -> Tag:
        """The tag by name (an unknown tag fails the step)."""
        return contacts.resolve_tag(self.tx.conn, name)

    def before_event_writer(self) -> None:
        """Nothing is buffered: every write records its events at once."""

    def money(self, field_name: str, delta: int) -> int:
        """A credit or debit through the ledger, keyed by the step."""
        op = ledger.credit if delta > 0 else ledger.debit
        actor = Actor("automation", self.run.rule)
        done = op(
            self.tx,
            self.contact_id,
            field_name,
            abs(delta),
            self.key,
            f"rule {self.run.rule}",
            actor,
        )
        return int(done.balances[field_name])

    def queue(self, kind: Literal["email", "webhook"], payload: Mapping[str, Any]) -> None:
        """Put the message in the outbox now (the step's transaction)."""
        c = db.contacts
        email = self.tx.conn.execute(
            select(c.c.email).where(c.c.id == self.contact_id)
        ).scalar_one()
        balances = ledger.balances(self.tx.conn, self.contact_id, self.config.actions.credit_fields)
        full = steps.outbox_payload(payload, self.contact_id, email, balances, self.origin())
        enqueue(self.tx, kind, self.key, full, self.contact_id)

    def origin(self) -> dict[str, Any]:
        """What queued a message: the rule, its run, the step and the run's trigger."""
        return {
            "rule": self.run.rule,
            "run_id": self.run.id,
            "step": self.step.idx,
            "trigger": self.run.data.get("trigger", {}),
        }

    def redirect_to(self, url: str) -> None:
        """Rules have no visitor (the registry refuses ``redirect`` in rules)."""
        raise StoreError("a rule cannot redirect")

    def defer_next(self, delay: Duration) -> None:
        """The next step of the run is due ``delay`` from now."""
        self.delay = delay

    def schedule(self, step: Step, delay: Duration) -> datetime:
        """A side step (it does not hold up the run), due ``delay`` from now."""
        side = {**step.to_json(), "side": True}
        due = delay.after(self.tx.now)
        key = f"{self.run.id}:{self.step.idx}:after"
        _insert_step(self.tx, self.run.id, self.contact_id, self.step.idx, side, key, due)
        return due

    def award(
        self, points: int, to: str, reason: str, wait: Duration | Literal["now"] | None
    ) -> str:
        """Loyalty points for the contact, the contact it referred, or both."""
        who: list[tuple[str, int]] = []
        if to in ("contact", "both"):
            who.append(("contact", self.contact_id))
        if to in ("referred", "both"):
            referred = self.run.data["trigger"].get("referred_id")
            if not isinstance(referred, int):
                raise StoreError(
                    "award_points to='referred' needs a referral_made or referral_approved trigger"
                )
            who.append(("referred", referred))
        cfg, actor = self.config.loyalty, Actor("automation", self.run.rule)
        for label, contact_id in who:
            key = f"{self.key}:{label}"
            loyalty.earn(self.tx, cfg, contact_id, points, key, reason, wait=wait, actor=actor)
        return f"awarded {points} to {', '.join(label for label, _ in who)}"

    def remove_points(self, points: int, reason: str) -> str:
        """Take up to ``points`` back from the contact (never below zero)."""
        cfg, actor = self.config.loyalty, Actor("automation", self.run.rule)
        done = loyalty.remove(self.tx, cfg, self.contact_id, points, self.key, reason, actor)
        return (
            f"removed {done.removed} of {points} points ({done.from_pending} of them pending); "
            f"{done.available} available"
        )
