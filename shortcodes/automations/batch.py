"""Automations batches: many due steps executed with a few set-based statements.

The worker claims a batch of due steps (:func:`executor.claim_due`, which on PostgreSQL also
locks their contacts) and hands them to :func:`execute_batch`, inside one transaction. Steps are
taken in *rounds*: a round holds at most one step of each run. Every step of a kind the registry
marks ``batchable`` (credits, debits, emails, webhooks, waits) is performed by its registry
function against a :class:`_BatchRun`, which buffers its effects instead of writing them; the
round then writes them with one statement per table (:class:`~shortcodes.store.batches.MoveBatch`
for the ledger, one outbox insert, one update marking the steps done, one insert scheduling the
next steps, one update finishing the runs). Next steps that are due at once form the next round
(up to :data:`executor.CHAIN_LIMIT` rounds), so a rule without waits still finishes in one pass.

Exactly once is kept the same way as one step at a time: a step's effect, its done mark and its
successor are in the batch's transaction, and every write is keyed by the step's id. A step the
store refuses (a debit larger than the balance) leaves nothing in the buffers and runs on the
one-step path after the round (:func:`executor.execute`, isolated in a savepoint), which records
the refusal as it always did; so do steps of kinds that cannot be buffered (tags, fields,
points), which write their own events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import select, update

from shortcodes.automations.executor import CHAIN_LIMIT, RunInfo, StepRow, _RuleRun, execute
from shortcodes.automations.rules import AutomationConfig
from shortcodes.errors import StoreError
from shortcodes.membership import steps
from shortcodes.membership.steps import Step
from shortcodes.membership.vocabulary import Duration
from shortcodes.store import schema as db
from shortcodes.store.batches import Move, MoveBatch
from shortcodes.store.events import caused_by, enqueue_many, outbox_row
from shortcodes.store.fastpath import among, insert_many, update_rows
from shortcodes.store.session import Actor, Tx

_s = db.auto_steps


def execute_batch(tx: Tx, config: AutomationConfig, claimed: Sequence[StepRow], worker: str) -> int:
    """Execute the claimed steps and the due-now steps after them; how many steps ran."""
    done = 0
    current = list(claimed)
    rounds = 0
    while current and rounds < CHAIN_LIMIT:
        current, count = _Round(tx, config, worker, current).run()
        done += count
        rounds += 1
    return done


@dataclass
class _Round:
    """One round: at most one step per run (see the module docstring)."""

    tx: Tx
    config: AutomationConfig
    worker: str
    todo: list[StepRow]
    moves: MoveBatch = field(init=False)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    emails: dict[int, str] | None = None

    def __post_init__(self) -> None:
        batchable = [s for s in self.todo if steps.STEPS[s.kind].batchable]
        self.moves = MoveBatch(self.tx, (s.contact_id for s in batchable))

    def run(self) -> tuple[list[StepRow], int]:
        """Perform the round; the next round's steps and how many steps ran."""
        performed: list[tuple[StepRow, str, Duration | None]] = []
        one_by_one: list[StepRow] = []
        for step in self.todo:
            outcome = self._perform(step) if steps.STEPS[step.kind].batchable else None
            if outcome is None:
                one_by_one.append(step)
            else:
                performed.append((step, *outcome))
        self.moves.write()
        enqueue_many(self.tx, self.outbox)
        following = self._finish(performed)
        count = len(performed)
        for step in one_by_one:
            count += execute(self.tx, self.config, step, self.worker, isolate=True)
        return following, count

    def _perform(self, step: StepRow) -> tuple[str, Duration | None] | None:
        """Buffer one step's effects; (note, delay), or None when the store refused it."""
        performer = _BatchRun(
            self.tx, step.contact_id, f"rule:{step.run.rule}", self.config, step.run, step
        )
        performer.round = self
        stored = Step.from_json({"do": step.kind, **step.args})
        mark, queued = self.moves.mark(), len(self.outbox)
        try:
            with caused_by(step.run.cause()):
                note = steps.perform(performer, stored, dict(stored.args))
        except StoreError:
            self.moves.rollback(mark)
            del self.outbox[queued:]
            return None
        return note, performer.delay

    def email(self, contact_id: int) -> str:
        """The contact's email (all of the round's contacts are read on first use)."""
        if self.emails is None:
            c = db.contacts
            ids = sorted({s.contact_id for s in self.todo})
            query = select(c.c.id, c.c.email).where(among(self.tx.conn, c.c.id, ids))
            self.emails = {int(i): str(e) for i, e in self.tx.conn.execute(query)}
        return self.emails[contact_id]

    def _finish(self, performed: list[tuple[StepRow, str, Duration | None]]) -> list[StepRow]:
        """Mark the steps done, schedule their successors, finish completed runs."""
        if not performed:
            return []
        now = self.tx.now
        marks = [
            {
                "id": s.id,
                "status": "done",
                "result": note[:2000],
                "done_at": now,
                "worker": self.worker[:120],
            }
            for s, note, _ in performed
        ]
        update_rows(self.tx.conn, _s, marks)
        finished: list[int] = []
        successors: list[tuple[RunInfo, int, Mapping[str, Any], Any]] = []
        for step, _note, delay in performed:
            if step.args.get("side"):
                continue
            planned = step.run.data["steps"]
            nxt = step.idx + 1
            if nxt >= len(planned):
                finished.append(step.run.id)
            else:
                due = now if delay is None else delay.after(now)
                successors.append((step.run, nxt, planned[nxt], due))
        if finished:
            r = db.auto_runs
            self.tx.conn.execute(
                update(r)
                .where(among(self.tx.conn, r.c.id, finished))
                .values(status="done", message="", finished_at=now)
            )
        return self._schedule(successors)

    def _schedule(
        self, successors: list[tuple[RunInfo, int, Mapping[str, Any], Any]]
    ) -> list[StepRow]:
        """Insert the next steps in one statement; those due now, for the next round."""
        if not successors:
            return []
        rows = [
            {
                "run_id": run.id,
                "key": f"{run.id}:{idx}",
                "idx": idx,
                "kind": planned["do"],
                "args": {k: v for k, v in planned.items() if k != "do"},
                "contact_id": run.contact_id,
                "due_at": due,
                "status": "pending",
            }
            for run, idx, planned, due in successors
        ]
        ids = insert_many(self.tx.conn, _s, rows, "key")
        return [
            StepRow(
                new_id, run, row["idx"], row["kind"], row["args"], run.contact_id, row["due_at"]
            )
            for new_id, row, (run, *_rest) in zip(ids, rows, successors, strict=True)
            if row["due_at"] <= self.tx.now
        ]


@dataclass
class _BatchRun(_RuleRun):
    """A rule step whose ledger moves and messages go to its round's buffers."""

    round: _Round | None = None

    def _round(self) -> _Round:
        assert self.round is not None
        return self.round

    def money(self, field_name: str, delta: int) -> int:
        """Stage the move in the round's :class:`MoveBatch`; the balance after it."""
        move = Move(
            self.key,
            self.contact_id,
            field_name,
            delta,
            f"rule {self.run.rule}",
            Actor("automation", self.run.rule),
        )
        return self._round().moves.stage(move)

    def queue(self, kind: Literal["email", "webhook"], payload: Mapping[str, Any]) -> None:
        """Buffer the message, with the balances as the round's moves left them."""
        batch = self._round()
        balances = batch.moves.balances(self.contact_id, self.config.actions.credit_fields)
        email = batch.email(self.contact_id)
        full = steps.outbox_payload(payload, self.contact_id, email, balances, self.origin())
        batch.outbox.append(outbox_row(self.tx, kind, self.key, full, self.contact_id))
