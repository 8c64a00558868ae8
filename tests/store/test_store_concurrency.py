"""Concurrency on both databases: parallel purchases never overdraw, a nonce runs once, and a
process killed mid-run leaves no trace of that run.

Threads share one Store (its connection pool); processes are real OS processes running
``buyer.py``, each with its own engine, started together through a go-file.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from shortcodes.store import Actor, RunResult, Store
from shortcodes.store import contacts as contact_ops
from shortcodes.store import ledger as ledger_ops
from shortcodes.store import schema as db
from tests.support.db import buyer
from tests.support.paths import ROOT

BUYER = ROOT / "tests" / "support" / "buyer.py"
VISITOR = Actor("visitor", "ann")


def run_threads(
    store: Store, jobs: list[tuple[str, Any, str]], workers: int = 16
) -> list[RunResult]:
    """Run (action, contact, key) jobs on a thread pool, all submitted at once."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(store.run_actionset, action, contact, {}, key, VISITOR)
            for action, contact, key in jobs
        ]
        return [f.result() for f in futures]


class Buyers:
    """Starts buyer.py processes that wait on one go-file, then collects their JSON lines."""

    def __init__(self, tmp_path: Path, url: str, site_file: Path) -> None:
        self.go = tmp_path / "go"
        self.url = url
        self.site = site_file
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, action: str, contact: str, count: int, key: str, *extra: str) -> None:
        """Start one buyer and wait until it is connected and waiting."""
        argv = [sys.executable, str(BUYER), self.url, str(self.site), action, contact]
        proc = subprocess.Popen(
            [*argv, str(count), key, str(self.go), *extra],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        self.procs.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"

    def go_and_collect(self, timeout: float = 120) -> list[dict[str, Any]]:
        """Release every buyer at once; the runs they report."""
        self.go.touch()
        lines = []
        for proc in self.procs:
            out, _ = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, f"buyer exited {proc.returncode}"
            lines += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        return lines

    def kill_all(self) -> None:
        """SIGKILL every buyer still running, reap it and close its pipe (safe to repeat)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


@pytest.fixture
def buyers(tmp_path: Path, db_url: str, site_file: Path) -> Any:
    """Buyer processes on the database under test; any left running are killed at the end."""
    group = Buyers(tmp_path, db_url, site_file)
    yield group
    group.kill_all()


def count(store: Store, table: Any, **where: Any) -> int:
    """Rows of ``table`` matching the column values given."""
    query = select(func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def test_200_thread_purchases_of_50_from_520_credits_make_exactly_10(store: Store) -> None:
    ann = buyer(store, credits=520)
    results = run_threads(store, [("buy-item", ann, f"nonce-{n}") for n in range(200)])
    assert Counter(r.outcome for r in results) == {"done": 10, "insufficient": 190}
    assert store.balance(ann) == 20
    assert count(store, db.ledger_entries) == 11
    assert count(store, db.outbox) == 10
    assert store.verify().ok


def test_200_purchases_from_8_processes_make_exactly_10(store: Store, buyers: Buyers) -> None:
    buyer(store, credits=520)
    for p in range(8):
        buyers.start("buy-item", "ann@example.com", 25, f"proc{p}")
    runs = buyers.go_and_collect()
    assert len(runs) == 200
    assert Counter(r["outcome"] for r in runs) == {"done": 10, "insufficient": 190}
    assert store.balance("ann@example.com") == 20
    assert count(store, db.ledger_entries) == 11
    assert store.verify().ok


def test_50_contacts_buying_in_parallel_all_verify(store: Store) -> None:
    contacts = [buyer(store, f"c{n}@example.com", credits=120 + n % 30) for n in range(50)]
    jobs = [("buy-item", c, f"{c}-{k}") for k in range(4) for c in contacts]
    results = run_threads(store, jobs)
    assert Counter(r.outcome for r in results) == {"done": 100, "insufficient": 100}
    assert [store.balance(c) for c in contacts] == [20 + n % 30 for n in range(50)]
    report = store.verify()
    assert report.ok
    assert report.accounts == 50


def test_the_same_run_submitted_20_times_in_parallel_runs_once(store: Store) -> None:
    ann = buyer(store, credits=500)
    results = run_threads(store, [("buy-item", ann, "one-nonce")] * 20, workers=20)
    assert sum(not r.replayed for r in results) == 1
    assert {r.run_id for r in results} == {results[0].run_id}
    assert {r.message for r in results} == {"Unlocked Snack — 450 credits left"}
    assert store.balance(ann) == 450
    assert count(store, db.actionset_runs) == 1
    assert count(store, db.outbox) == 1


def test_the_same_run_from_4_processes_5_times_each_runs_once(store: Store, buyers: Buyers) -> None:
    buyer(store, credits=500)
    for _ in range(4):
        buyers.start("buy-item", "ann@example.com", 5, "one-nonce", "--same-key")
    runs = buyers.go_and_collect()
    assert len(runs) == 20
    assert sum(not r["replayed"] for r in runs) == 1
    assert len({r["run_id"] for r in runs}) == 1
    assert store.balance("ann@example.com") == 450


def test_200_parallel_purchases_of_an_owned_product_debit_once(store: Store) -> None:
    ann = buyer(store, credits=520)
    results = run_threads(store, [("buy-course-b", ann, f"nonce-{n}") for n in range(200)])
    assert Counter(r.outcome for r in results) == {"done": 1, "owned": 199}
    assert store.balance(ann) == 470


def test_processes_killed_mid_run_leave_no_partial_run(store: Store, buyers: Buyers) -> None:
    buyer(store, credits=100_000)
    for p in range(3):
        buyers.start("everything", "ann@example.com", 1_000, f"kill{p}", "--pause-at", "4")
    buyers.go.touch()
    # Each buyer commits one run, then stops inside the next after 4 of its 9 steps, holding the
    # lock the others wait for; each is killed the moment it says so, in whatever order.
    in_flight = _kill_each_when_paused(buyers.procs)
    buyers.kill_all()
    runs = count(store, db.actionset_runs)
    assert runs == 3
    for key in in_flight:  # the run each process was in the middle of left nothing behind
        assert count(store, db.actionset_runs, idempotency_key=key) == 0
    assert count(store, db.actionset_runs, outcome="done") == runs
    # Each finished run has all of its effects: two entries, two outbox rows; nothing else exists.
    assert count(store, db.ledger_entries) == 1 + 2 * runs
    assert count(store, db.outbox) == 2 * runs
    assert store.balance("ann@example.com") == 100_000 - 30 * runs
    assert store.verify().ok
    # The killed transactions released their locks: the next purchase goes straight through.
    assert store.run_actionset("everything", "ann@example.com", {}, "after-kill").outcome == "done"


def _kill_each_when_paused(procs: list[subprocess.Popen[str]]) -> list[str]:
    """SIGKILL each buyer as soon as it reports a run paused mid-transaction; those runs' keys."""
    keys: list[str] = []
    pending = {proc.stdout.fileno(): (proc, b"") for proc in procs if proc.stdout is not None}
    with selectors.DefaultSelector() as selector:
        for fd in pending:
            selector.register(fd, selectors.EVENT_READ)
        while len(keys) < len(procs):
            ready = selector.select(timeout=60)
            assert ready, "no buyer paused within 60 s"
            for item, _ in ready:
                # Raw reads: a buffered readline could swallow the "paused" line unseen.
                proc, buffered = pending[item.fd]
                chunk = os.read(item.fd, 65536)
                assert chunk, f"a buyer ended (exit {proc.wait()}) without pausing mid-run"
                buffered += chunk
                pending[item.fd] = (proc, buffered)
                paused = [ln for ln in buffered.split(b"\n") if ln.startswith(b"paused ")]
                if paused:
                    os.kill(proc.pid, signal.SIGKILL)
                    keys.append(paused[0].split()[1].decode())
                    selector.unregister(item.fd)
    return keys


def test_a_deadlock_between_two_writers_is_retried_until_both_succeed(
    store: Store, backend: str
) -> None:
    """Two transactions lock two contacts in opposite orders. PostgreSQL kills one with a
    deadlock error; run_in_transaction retries it and both complete. (SQLite's BEGIN IMMEDIATE
    never lets them interleave, so there both simply complete.)"""
    ann, bob = buyer(store, "ann@example.com", 10), buyer(store, "bob@example.com", 10)
    both_hold_one = threading.Barrier(2, timeout=10)
    attempts = Counter[str]()

    def transfer(name: str, first: int, second: int) -> None:
        def work(tx: Any) -> None:
            attempts[name] += 1
            contact_ops.lock_contact(tx, first)
            if backend == "postgresql" and attempts[name] == 1:
                both_hold_one.wait()  # first attempts only: each holds one lock, wants the other
            contact_ops.lock_contact(tx, second)
            ledger_ops.debit(tx, first, "_Credits", 1, f"{name}-out", "move", VISITOR)
            ledger_ops.credit(tx, second, "_Credits", 1, f"{name}-in", "move", VISITOR)

        store.run_in_transaction(work)

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(transfer, "a", ann, bob), pool.submit(transfer, "b", bob, ann)]
        for future in futures:
            future.result()
    assert (store.balance(ann), store.balance(bob)) == (10, 10)
    assert count(store, db.operations) == 6  # two openings and four moves, each exactly once
    if backend == "postgresql":
        assert sum(attempts.values()) == 3  # the deadlock victim ran twice
