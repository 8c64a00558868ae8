"""The automations worker: dispatch events, run due steps, move points, deliver the outbox.

One pass (:meth:`Worker.run_once`) does, each in its own transactions: dispatch new events into
rule runs (and drip starts, pauses and resumes), release the drip items that are due (``release``),
execute due steps in batches, make waiting points available and expire old ones, deliver due
outbox messages. Killing the process at any moment loses nothing and doubles nothing:
a batch of steps is one transaction (all of it happened, or none), and delivery is claimed
before and recorded after sending (see ``outbox``).

On PostgreSQL several workers share the work: due steps, lots and messages are claimed with
``SELECT ... FOR UPDATE SKIP LOCKED``, so two workers never take the same row and neither waits.
On SQLite, which has one writer at a time anyway, a worker first takes the ``auto_leases`` row
(renewed every pass, expiring after ``lease_ttl`` wall-clock seconds, taken over at once when its
holder is a dead process on this machine); a second worker waits for it.

Business time comes from the store's clock, so tests move it; leases use wall-clock time because
they are about whether a process is alive.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from shortcodes.automations import batch, executor, loyalty, release
from shortcodes.automations.dispatch import Dispatcher, record_expiring
from shortcodes.automations.outbox import Delivery, process_alive, worker_id
from shortcodes.automations.rules import AutomationConfig
from shortcodes.store import Store
from shortcodes.store import schema as db
from shortcodes.store.session import Tx

LEASE_NAME = "sqlite-worker"
log = logging.getLogger(__name__)
#: Seconds a crashed in-process worker waits before it starts again.
RESTART_DELAY = 5.0


@dataclass
class PassStats:
    """What one pass did."""

    dispatched: int = 0
    #: Drip releases, pauses and resumes.
    drips: int = 0
    steps: int = 0
    matured: int = 0
    expired: int = 0
    alerted: int = 0
    delivered: int = 0

    @property
    def busy(self) -> bool:
        """True when the pass found any work (so the next pass should not sleep)."""
        counts = (self.dispatched, self.drips, self.steps, self.matured, self.expired)
        return any((*counts, self.alerted, self.delivered))

    def add(self, other: PassStats) -> None:
        """Accumulate another pass's counts."""
        self.dispatched += other.dispatched
        self.drips += other.drips
        self.steps += other.steps
        self.matured += other.matured
        self.expired += other.expired
        self.alerted += other.alerted
        self.delivered += other.delivered


@dataclass
class Worker:
    """Runs automations for one store; see the module docstring."""

    store: Store
    config: AutomationConfig
    instance_path: Path
    batch: int = 100
    lease_ttl: float = 30.0
    ident: str = field(default_factory=worker_id)
    deliver: bool = True
    #: Called before each batch of steps commits (fault-injection point for tests).
    before_commit: Callable[[int], None] | None = None

    def __post_init__(self) -> None:
        self.stopping = False
        self.errors = 0
        self.last_error = ""
        self.dispatcher = Dispatcher(self.config)
        self.delivery = Delivery(self.store, self.config, Path(self.instance_path), self.ident)
        self.sqlite = self.store.engine.dialect.name == "sqlite"

    # -- the loop ------------------------------------------------------------------------------

    def run(
        self,
        *,
        until_idle: bool = False,
        poll: float = 1.0,
        max_passes: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        survive_db_errors: bool = False,
    ) -> PassStats:
        """Pass after pass (sleeping ``poll`` when idle); stop when idle if ``until_idle``.

        ``survive_db_errors`` keeps going through a database that went away (a restart, a
        dropped connection): the pass's transaction rolled back, so the next pass redoes it.
        :meth:`stop` (e.g. from a SIGTERM handler) ends the loop after the current pass.
        """
        total = PassStats()
        passes = 0
        self.stopping = False
        try:
            while not self.stopping and (max_passes is None or passes < max_passes):
                passes += 1
                try:
                    stats = self._guarded_pass()
                except SQLAlchemyError as exc:  # DBAPIError, or a connection found closed
                    if not survive_db_errors:
                        raise
                    self.errors += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"[:500]
                    sleep(poll)
                    continue
                if stats is None:  # another worker holds the SQLite lease
                    sleep(poll)
                    continue
                total.add(stats)
                if not stats.busy:
                    if until_idle:
                        break
                    sleep(poll)
        finally:
            if self.sqlite:
                with contextlib.suppress(SQLAlchemyError):
                    self.release_lease()
        return total

    def stop(self) -> None:
        """Ask the loop to end after the pass in progress."""
        self.stopping = True

    def _guarded_pass(self) -> PassStats | None:
        if self.sqlite and not self.acquire_lease():
            return None
        return self.run_once()

    def run_once(self) -> PassStats:
        """One pass over every kind of work (see the module docstring)."""
        stats = PassStats()
        stats.dispatched = self.store.run_in_transaction(self.dispatcher.dispatch)
        stats.drips = self.store.run_in_transaction(
            lambda tx: release.advance_due(tx, self.config, self.batch)
        )
        stats.steps = self.process_due()
        cfg = self.config.loyalty
        stats.matured = self.store.run_in_transaction(lambda tx: loyalty.mature(tx, cfg))
        stats.expired = self.store.run_in_transaction(lambda tx: loyalty.expire(tx, cfg))
        stats.alerted = self.store.run_in_transaction(lambda tx: record_expiring(tx, self.config))
        if self.deliver:
            stats.delivered = self.delivery.deliver_due()
        return stats

    # -- steps ---------------------------------------------------------------------------------

    def process_due(self) -> int:
        """Execute one batch of due steps in one transaction; how many steps ran."""
        try:
            return self.store.run_in_transaction(self._batch)
        except DBAPIError:
            raise  # a database that is down or refusing: the caller retries the pass
        except Exception:
            # One step keeps failing for a reason that is not a store refusal: run the batch one
            # step per transaction so the others go through and that one is marked failed.
            return self._one_by_one()

    def _claim(self, tx: Tx, limit: int) -> list[executor.StepRow]:
        return executor.claim_due(tx, limit)

    def _batch(self, tx: Tx) -> int:
        done = batch.execute_batch(tx, self.config, self._claim(tx, self.batch), self.ident)
        if self.before_commit is not None:
            self.before_commit(done)
        return done

    def _one_by_one(self) -> int:
        claimed = self.store.run_in_transaction(
            lambda tx: [s.id for s in self._claim(tx, self.batch)]
        )
        done = 0
        for step_id in claimed:
            try:
                done += self.store.run_in_transaction(partial(self._single, step_id=step_id))
            except DBAPIError:
                raise
            except Exception as exc:
                poison = partial(_poison, step_id=step_id, exc=exc, ident=self.ident)
                self.store.run_in_transaction(poison)
        return done

    def _single(self, tx: Tx, step_id: int) -> int:
        t = db.auto_steps
        query = executor.step_query().where((t.c.id == step_id) & (t.c.status == "pending"))
        if tx.is_postgres:
            query = query.with_for_update(of=t, skip_locked=True)
        row = tx.conn.execute(query).first()
        if row is None:
            return 0
        return executor.execute(tx, self.config, executor.StepRow.from_row(row), self.ident)

    # -- the SQLite lease ----------------------------------------------------------------------

    def acquire_lease(self) -> bool:
        """Take or renew the SQLite worker lease; False while another live worker holds it."""
        return self.store.run_in_transaction(self._acquire)

    def _acquire(self, tx: Tx) -> bool:
        t = db.auto_leases
        now = time.time()
        row = tx.conn.execute(select(t).where(t.c.name == LEASE_NAME)).first()
        values = {"holder": self.ident, "expires_at": now + self.lease_ttl}
        if row is None:
            tx.conn.execute(insert(t).values(name=LEASE_NAME, **values))
            return True
        if row.holder != self.ident and row.expires_at > now and process_alive(row.holder):
            return False
        tx.conn.execute(update(t).where(t.c.name == LEASE_NAME).values(**values))
        return True

    def release_lease(self) -> None:
        """Give the lease up (on a clean stop), so another worker can start at once."""
        t = db.auto_leases
        self.store.run_in_transaction(
            lambda tx: tx.conn.execute(
                delete(t).where((t.c.name == LEASE_NAME) & (t.c.holder == self.ident))
            )
        )


def run_beside(
    store: Store, config: AutomationConfig, instance_path: Path, poll: float = 1.0
) -> tuple[Worker, threading.Thread]:
    """Run a worker in a daemon thread of this process (``./dev serve`` on a laptop), restarted
    after :data:`RESTART_DELAY` seconds if a pass raises; ``worker.stop()`` ends it. Production
    runs ``python -m shortcodes worker`` as its own process instead (docs/deployment.md)."""
    worker = Worker(store, config, instance_path)
    done = threading.Event()

    def supervise() -> None:
        while not done.is_set():
            try:
                worker.run(poll=poll, survive_db_errors=True)
                done.set()  # stop() was called
            except Exception:
                log.exception("the automation worker failed; restarting in %s s", RESTART_DELAY)
                done.wait(RESTART_DELAY)

    thread = threading.Thread(target=supervise, name="automation-worker", daemon=True)
    thread.start()
    return worker, thread


def _poison(tx: Tx, step_id: int, exc: BaseException, ident: str) -> None:
    """Mark a step that raised an unexpected error as failed, with the error, and end its run."""
    t = db.auto_steps
    row: Any = tx.conn.execute(
        select(t).where((t.c.id == step_id) & (t.c.status == "pending"))
    ).first()
    if row is None:
        return
    note = f"{type(exc).__name__}: {exc}"[:2000]
    tx.conn.execute(
        update(t)
        .where(t.c.id == step_id)
        .values(status="failed", result=note, done_at=tx.now, worker=ident[:120])
    )
    r = db.auto_runs
    tx.conn.execute(
        update(r)
        .where(r.c.id == row.run_id)
        .values(status="failed", message=note, finished_at=tx.now)
    )
