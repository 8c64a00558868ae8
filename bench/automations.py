"""Automations benchmark (issue 6): due steps per second with 1 and N workers, and a billing run.

Needs PostgreSQL: ``--pg-url`` or ``SHORTCODES_BENCH_PG_URL`` / ``SHORTCODES_TEST_PG_URL``. Each
part runs in a fresh schema ``bench_automations`` (dropped at the end).

1. **Due steps/s.** ``--steps`` (100,000) runs of a one-step rule (``credit 1``) spread over 1,000
   contacts are bulk-inserted, all due; then 1 and then ``--workers`` (4) real
   ``python -m shortcodes worker --until-idle --no-deliver`` processes run them, and the wall time
   until every step is done gives steps/s. Each row is checked: every step done once, one ledger
   entry per step, the ledger verifies.
2. **Monthly billing run.** ``--subscribers`` (100,000) contacts holding ``Subscriber``; the time
   of ``billing_run`` (one idempotent ``payment_succeeded`` event per subscriber), then the time
   for ``--workers`` worker processes to dispatch those events and run the rule (credit 50 and
   queue an email; delivery excluded), checked the same way.

``--quick`` shrinks both to 2,000 for a smoke run. While workers run, a thread ANALYZEs the
schema every 5 s, as autovacuum would (the test server has it off; see :class:`Analyzer`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, insert, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shortcodes.automations import billing_run, parse_automations  # noqa: E402
from shortcodes.store import Store  # noqa: E402
from shortcodes.store import schema as db  # noqa: E402
from shortcodes.store.database import normalize_url  # noqa: E402

SCHEMA = "bench_automations"
SITE = """\
[credits]
fields = ["_Credits"]

[tags]
"Subscriber" = "membership"

[[rules]]
name = "tick"
trigger = "webhook('tick')"
steps = [{ do = "credit", field = "_Credits", amount = 1 }]

[[rules]]
name = "monthly-credits"
trigger = "payment_succeeded(monthly)"
steps = [
  { do = "credit", field = "_Credits", amount = 50 },
  { do = "send_email", template = "monthly-credits" },
]
"""


def schema_url(base: str) -> str:
    """The benchmark schema's URL on the server ``base``."""
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{SCHEMA}"


def fresh_store(base: str, site: Path) -> Store:
    """A store on a newly created, migrated benchmark schema."""
    admin = Store.from_url(base, pool_size=1)
    with admin.engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{SCHEMA}"'))
    admin.close()
    config = parse_automations(SITE, str(site))
    store = Store.from_url(schema_url(base), site=config.actions, pool_size=4)
    store.upgrade()
    store.sync_tags()
    return store


def drop_schema(base: str) -> None:
    """Remove the benchmark schema."""
    admin = Store.from_url(base, pool_size=1)
    with admin.engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
    admin.close()


def bulk_contacts(store: Store, count: int, tag: str | None = None) -> list[int]:
    """``count`` contacts (and ``tag`` on each), inserted in bulk."""
    now = datetime.now(UTC).replace(tzinfo=None)
    with store.engine.begin() as conn:
        rows = [
            {"email": f"c{n}@bench.example", "name": "", "fields": {}, "created_at": now}
            for n in range(count)
        ]
        conn.execute(insert(db.contacts), rows)
        ids = [
            int(i)
            for i in conn.execute(select(db.contacts.c.id).order_by(db.contacts.c.id)).scalars()
        ]
        if tag is not None:
            tag_id = conn.execute(select(db.tags.c.id).where(db.tags.c.name == tag)).scalar_one()
            conn.execute(
                insert(db.contact_tags),
                [
                    {"contact_id": i, "tag_id": tag_id, "applied_at": now, "source": "bench"}
                    for i in ids
                ],
            )
    analyze(store)
    return ids


def bulk_steps(store: Store, contact_ids: list[int], count: int) -> None:
    """``count`` runs of the ``tick`` rule, each with its one step due now."""
    now = datetime.now(UTC).replace(tzinfo=None)
    data = {
        "trigger": {},
        "branch": "steps",
        "steps": [{"do": "credit", "field": "_Credits", "amount": 1}],
    }
    with store.engine.begin() as conn:
        for start in range(0, count, 10_000):
            chunk = range(start, min(count, start + 10_000))
            runs = [
                {
                    "rule": "tick",
                    "contact_id": contact_ids[n % len(contact_ids)],
                    "dedupe_key": f"bench:{n}",
                    "status": "running",
                    "data": data,
                    "message": "",
                    "created_at": now,
                }
                for n in chunk
            ]
            conn.execute(insert(db.auto_runs), runs)
        run_rows = conn.execute(select(db.auto_runs.c.id, db.auto_runs.c.contact_id)).all()
        steps = [
            {
                "run_id": r.id,
                "key": f"{r.id}:0",
                "idx": 0,
                "kind": "credit",
                "args": {"field": "_Credits", "amount": 1},
                "contact_id": r.contact_id,
                "due_at": now,
                "status": "pending",
            }
            for r in run_rows
        ]
        for start in range(0, len(steps), 10_000):
            conn.execute(insert(db.auto_steps), steps[start : start + 10_000])
    analyze(store)


def analyze(store: Store) -> None:
    """Refresh planner statistics after a bulk load (autovacuum would, a little later)."""
    with store.engine.connect() as conn:
        names = [t.name for t in db.metadata.sorted_tables]
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("ANALYZE " + ", ".join(names))  # this schema's tables only (search_path)
        )


class Analyzer:
    """ANALYZE every few seconds while workers run, as autovacuum would.

    The test server runs with ``autovacuum = off``; without fresh statistics the planner keeps
    plans made when the ledger tables were empty (sequential scans of ``operations``), which
    measures a misconfigured server rather than the worker.
    """

    def __init__(self, url: str, every: float = 5.0) -> None:
        self.url = url
        self.every = every
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        store = Store.from_url(self.url, pool_size=1)
        try:
            while not self.stop.wait(self.every):
                analyze(store)
        finally:
            store.close()

    def __enter__(self) -> Analyzer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join()


def run_workers(url: str, site: Path, instance: Path, workers: int) -> float:
    """Start ``workers`` worker processes, wait for all; the wall time in seconds."""
    cmd = [
        sys.executable, "-m", "shortcodes", "worker", "--until-idle", "--no-deliver",
        "--poll", "0.2", "--batch", "200", "--database-url", url, "--site", str(site),
        "--instance", str(instance),
    ]  # fmt: skip
    started = time.perf_counter()
    with Analyzer(url):
        return _wait_workers(cmd, workers, started)


def _wait_workers(cmd: list[str], workers: int, started: float) -> float:
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(workers)
    ]
    for proc in procs:
        _out, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"worker failed: {err}")
    return time.perf_counter() - started


def check(store: Store, steps: int, entries: int) -> None:
    """Every step done once, one ledger entry each, a verifying ledger; else exit."""
    with store.engine.connect() as conn:
        done = conn.execute(
            select(func.count()).select_from(db.auto_steps).where(db.auto_steps.c.status == "done")
        ).scalar_one()
        total = conn.execute(select(func.count()).select_from(db.auto_steps)).scalar_one()
        ledger = conn.execute(select(func.count()).select_from(db.ledger_entries)).scalar_one()
    if (done, total, ledger) != (steps, steps, entries) or not store.verify().ok:
        raise SystemExit(
            f"check failed: {done}/{total} steps done, {ledger} entries (want {steps}, {entries})"
        )


def bench_steps(base: str, site: Path, instance: Path, count: int, workers: int) -> None:
    """Part 1."""
    print(f"due steps: {count:,} one-step runs over 1,000 contacts")
    for n in sorted({1, workers}):
        store = fresh_store(base, site)
        ids = bulk_contacts(store, 1000)
        t = time.perf_counter()
        bulk_steps(store, ids, count)
        seeded = time.perf_counter() - t
        wall = run_workers(schema_url(base), site, instance, n)
        check(store, count, count)
        store.close()
        print(
            f"  {n} worker(s): {wall:7.1f} s  {count / wall:8.0f} steps/s   (seeding {seeded:.1f} s)"
        )


def bench_billing(base: str, site: Path, instance: Path, count: int, workers: int) -> None:
    """Part 2."""
    print(f"monthly billing run: {count:,} subscribers")
    store = fresh_store(base, site)
    bulk_contacts(store, count, "Subscriber")
    t = time.perf_counter()
    with Analyzer(schema_url(base)):
        report = billing_run(store, "monthly", "2026-01", "Subscriber")
    recorded = time.perf_counter() - t
    assert report.billed == count, report
    print(
        f"  billing-run (record {count:,} payments): {recorded:7.1f} s  {count / recorded:8.0f} /s"
    )
    t = time.perf_counter()
    again = billing_run(store, "monthly", "2026-01", "Subscriber")
    print(
        f"  same period again (bills nobody): {time.perf_counter() - t:7.1f} s  already={again.already:,}"
    )
    wall = run_workers(schema_url(base), site, instance, workers)
    check(store, 2 * count, count)
    with store.engine.connect() as conn:
        mails = conn.execute(select(func.count()).select_from(db.outbox)).scalar_one()
    store.close()
    print(
        f"  {workers} worker(s) run the rule (credit 50 + queue email): {wall:7.1f} s  {2 * count / wall:8.0f} steps/s; {mails:,} emails queued"
    )
    print(f"  total for the run: {recorded + wall:7.1f} s")


def main() -> None:
    """Parse arguments and run both parts."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("SHORTCODES_BENCH_PG_URL")
        or os.environ.get("SHORTCODES_TEST_PG_URL"),
    )
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="2,000 of each (a smoke run)")
    parser.add_argument("--only", choices=("steps", "billing"))
    args = parser.parse_args()
    if not args.pg_url:
        raise SystemExit("give --pg-url or set SHORTCODES_BENCH_PG_URL (PostgreSQL only)")
    base = normalize_url(args.pg_url)
    if args.quick:
        args.steps = args.subscribers = 2000
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, PostgreSQL at {args.pg_url}")
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site.toml"
        site.write_text(SITE, encoding="utf-8")
        instance = Path(tmp) / "instance"
        try:
            if args.only in (None, "steps"):
                bench_steps(base, site, instance, args.steps, args.workers)
            if args.only in (None, "billing"):
                bench_billing(base, site, instance, args.subscribers, args.workers)
        finally:
            drop_schema(base)


if __name__ == "__main__":
    main()
