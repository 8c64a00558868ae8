"""Automations benchmark (issues 6, 16): due steps per second with 1 and N workers, and a billing run.

Runs on PostgreSQL (``--pg-url`` or ``SHORTCODES_BENCH_PG_URL`` / ``SHORTCODES_TEST_PG_URL``; a
fresh schema ``bench_automations``, dropped at the end) and on SQLite (a temporary file), each
measured twice in the same run: with this tree's code, and with the code of ``--baseline`` (the
last commit before set-based execution, exported with ``git archive`` and imported by a child
process of this script and by its workers), so a noisy shared machine affects both alike.

1. **Due steps/s.** ``--steps`` (100,000) runs of a one-step rule (``credit 1``) spread over 1,000
   contacts are bulk-inserted, all due; then 1 and then ``--workers`` (4) real
   ``python -m shortcodes worker --until-idle --no-deliver`` processes run them, and the wall time
   until every step is done gives steps/s. Each row is checked: every step done once, one ledger
   entry per step, the ledger verifies.
2. **Monthly billing run.** ``--subscribers`` (100,000) contacts holding ``Subscriber``; the time
   of ``billing_run`` (one idempotent ``payment_succeeded`` event per subscriber), then the time
   for ``--workers`` worker processes to dispatch those events and run the rule (credit 50 and
   queue an email; delivery excluded), checked the same way.

SQLite is measured with one worker (it has one writer at a time). The output ends with one
line per figure: ``backend | figure: value | baseline value | ratio``.
``--quick`` shrinks both to 2,000 for a smoke run; ``--no-baseline`` measures this tree only.
While PostgreSQL workers run, a thread ANALYZEs the schema every 5 s, as autovacuum would (the
test server has it off; see :class:`Analyzer`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import baseline  # bench/*.py: this script's own folder is first on sys.path
from sqlalchemy import func, insert, select, text

ROOT = Path(__file__).resolve().parents[1]
# The code under test: this tree, or (``--code DIR``, in the baseline's child process) the
# baseline commit exported by :func:`baseline.export`. Chosen before ``shortcodes`` is imported.
CODE = Path(sys.argv[sys.argv.index("--code") + 1]) if "--code" in sys.argv else ROOT
sys.path.insert(0, str(CODE))

#: The last commit before set-based execution (issue 16): what ``--baseline`` compares against.
BASELINE = "aec6ab2"
#: Steps each worker claims per transaction.
BATCH = 250
#: SQLite runs one writer at a time (the worker lease), so its figures use one worker: more
#: worker processes only wait for the lease (and, on a loaded machine, time out opening it).
SQLITE_NOTE = "SQLite: 1 worker"

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
    """The benchmark database's URL: PostgreSQL's benchmark schema, or the SQLite file itself."""
    if base.startswith("sqlite"):
        return base
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{SCHEMA}"


def fresh_store(base: str, site: Path) -> Store:
    """A store on a newly created, migrated benchmark schema (or SQLite file)."""
    drop_schema(base)
    if not base.startswith("sqlite"):
        admin = Store.from_url(base, pool_size=1)
        with admin.engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{SCHEMA}"'))
        admin.close()
    config = parse_automations(SITE, str(site))
    store = Store.from_url(schema_url(base), site=config.actions, pool_size=4)
    store.upgrade()
    store.sync_tags()
    return store


def drop_schema(base: str) -> None:
    """Remove the benchmark schema (or SQLite file and its journals)."""
    if base.startswith("sqlite"):
        path = Path(base.split("///", 1)[1])
        for extra in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{extra}").unlink(missing_ok=True)
        return
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
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
            return
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
        if not self.url.startswith("sqlite"):  # SQLite plans do not go stale like this
            self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()


def run_workers(url: str, site: Path, instance: Path, workers: int) -> float:
    """Start ``workers`` worker processes of the code under test, wait for all; the wall time."""
    cmd = [
        sys.executable, "-m", "shortcodes", "worker", "--until-idle", "--no-deliver",
        "--poll", "0.2", "--batch", str(BATCH), "--database-url", url, "--site", str(site),
        "--instance", str(instance),
    ]  # fmt: skip
    started = time.perf_counter()
    with Analyzer(url):
        return _wait_workers(cmd, workers, started)


def _wait_workers(cmd: list[str], workers: int, started: float) -> float:
    # cwd=CODE: ``python -m shortcodes`` imports the code under test (this tree or the baseline).
    env = {**os.environ, "PYTHONPATH": str(CODE)}
    procs = [
        subprocess.Popen(
            cmd, cwd=CODE, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
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


def bench_steps(base: str, site: Path, instance: Path, count: int, workers: int) -> Figures:
    """Part 1: due steps per second with 1 and ``workers`` workers."""
    figures: Figures = {}
    for n in sorted({1, workers}):
        store = fresh_store(base, site)
        ids = bulk_contacts(store, 1000)
        bulk_steps(store, ids, count)
        wall = run_workers(schema_url(base), site, instance, n)
        check(store, count, count)
        store.close()
        figures[f"due steps/s, {n} worker(s)"] = count / wall
    return figures


def bench_billing(base: str, site: Path, instance: Path, count: int, workers: int) -> Figures:
    """Part 2: the monthly billing run, end to end."""
    store = fresh_store(base, site)
    bulk_contacts(store, count, "Subscriber")
    t = time.perf_counter()
    with Analyzer(schema_url(base)):
        report = billing_run(store, "monthly", "2026-01", "Subscriber")
    recorded = time.perf_counter() - t
    if report.billed != count:
        raise SystemExit(f"billing run billed {report.billed}, want {count}")
    t = time.perf_counter()
    again = billing_run(store, "monthly", "2026-01", "Subscriber")
    repeat = time.perf_counter() - t
    if again.billed or again.already != count:
        raise SystemExit(f"billing the same period again billed {again.billed}")
    wall = run_workers(schema_url(base), site, instance, workers)
    check(store, 2 * count, count)
    with store.engine.connect() as conn:
        mails = conn.execute(select(func.count()).select_from(db.outbox)).scalar_one()
    store.close()
    if mails != count:
        raise SystemExit(f"{mails} emails queued, want {count}")
    return {
        "billing: record payments, s": recorded,
        "billing: same period again, s": repeat,
        f"billing: {workers} workers run the rule, s": wall,
        "billing: end to end, s": recorded + wall,
        f"billing: rule steps/s, {workers} workers": 2 * count / wall,
    }


Figures = dict[str, float]


FLOOR_SQL = (
    # The rows a billing run writes, made by the server itself from generate_series: what the
    # run cannot beat on this machine, however it is written (PostgreSQL only).
    "INSERT INTO operations (key, kind, contact_id, fingerprint, result, actor_kind, actor_id,"
    " created_at) SELECT 'floor-' || k || '-' || n, 'credit', c.id, md5(n::text), '{}'::jsonb,"
    " 'automation', 'floor', now() FROM generate_series(1, 2) AS k,"
    " (SELECT id, row_number() OVER () AS n FROM contacts) AS c",
    "INSERT INTO events (kind, contact_id, data, created_at) SELECT kind, id,"
    ' \'{"product": "monthly"}\'::jsonb, now() FROM contacts,'
    " (VALUES ('payment_succeeded'), ('balance_changed')) AS v (kind)",
    "INSERT INTO auto_runs (rule, contact_id, dedupe_key, status, data, message, created_at)"
    " SELECT 'floor', id, 'floor:' || id, 'done', '{\"steps\": []}'::jsonb, '', now()"
    " FROM contacts",
    "INSERT INTO auto_steps (run_id, key, idx, kind, args, contact_id, due_at, status)"
    " SELECT r.id, r.id || ':' || i, i, 'credit', '{}'::jsonb, r.contact_id, now(), 'done'"
    " FROM auto_runs AS r, generate_series(0, 1) AS i",
    "INSERT INTO ledger_entries (contact_id, field, delta, balance_after, reason, actor_kind,"
    " actor_id, idempotency_key, operation_id, created_at) SELECT o.contact_id, '_Credits', 50,"
    " 50, 'floor', 'automation', 'floor', 'op:' || o.key, o.id, now() FROM operations AS o"
    " WHERE o.key LIKE 'floor-1-%'",
    "INSERT INTO credit_accounts (contact_id, field, balance, updated_at)"
    " SELECT id, '_Credits', 50, now() FROM contacts",
    "INSERT INTO outbox (kind, contact_id, dedupe_key, payload, next_attempt_at, created_at)"
    " SELECT 'email', id, 'floor:' || id, '{}'::jsonb, now(), now() FROM contacts",
)


def bench_floor(base: str, site: Path, count: int) -> Figures:
    """Part 3 (PostgreSQL): the billing run's rows written by set-based SQL alone."""
    store = fresh_store(base, site)
    bulk_contacts(store, count, "Subscriber")
    t = time.perf_counter()
    with store.engine.begin() as conn:
        for sql in FLOOR_SQL:
            conn.execute(text(sql))
    floor = time.perf_counter() - t
    store.close()
    return {"floor: the billing run's rows as set-based SQL, s": floor}


def measure(args: argparse.Namespace, base: str) -> Figures:
    """Every part asked for, with the code in ``CODE``, on the database ``base``."""
    figures: Figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site.toml"
        site.write_text(SITE, encoding="utf-8")
        instance = Path(tmp) / "instance"
        try:
            if args.only in (None, "steps"):
                figures |= bench_steps(base, site, instance, args.steps, args.workers)
            if args.only in (None, "billing"):
                figures |= bench_billing(base, site, instance, args.subscribers, args.workers)
            if args.only in (None, "floor") and not base.startswith("sqlite"):
                figures |= bench_floor(base, site, args.subscribers)
        finally:
            drop_schema(base)
    return figures


def measure_baseline(args: argparse.Namespace, base: str, tree: Path) -> Figures:
    """The same parts, measured by this script in a child process importing ``tree``'s code."""
    out = tree / "figures.json"
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--code", str(tree), "--json", str(out),
        "--steps", str(args.steps), "--subscribers", str(args.subscribers),
        "--workers", str(args.workers), "--db", base, "--no-baseline",
    ]  # fmt: skip
    if args.only:
        cmd += ["--only", args.only]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    figures: Figures = json.loads(out.read_text(encoding="utf-8"))
    return figures


def report(name: str, new: Figures, old: Figures | None) -> None:
    """One line per figure: this code, the baseline and their ratio (>1: this code is better)."""
    for key, value in new.items():
        line = f"{name} | {key}: {value:,.1f}"
        if old is not None and key in old:
            better = old[key] / value if key.endswith(", s") else value / old[key]
            line += f" | baseline {old[key]:,.1f} | {better:.2f}x better"
        print(line, flush=True)


def main() -> None:
    """Parse arguments and run the parts on each database, then the baseline, then report."""
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
    parser.add_argument("--only", choices=("steps", "billing", "floor"))
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--baseline", default=BASELINE, help="commit to compare against")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--code", type=Path, help=argparse.SUPPRESS)  # baseline child only
    parser.add_argument("--db", help=argparse.SUPPRESS)  # baseline child only
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    if args.quick:
        args.steps = args.subscribers = 2000
    if args.db:  # a baseline child: one database, figures to --json
        figures = measure(args, args.db)
        if args.json:
            args.json.write_text(json.dumps(figures), encoding="utf-8")
        return
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; {args.steps:,} due steps over "
          f"1,000 contacts, {args.subscribers:,} subscribers, {args.workers} workers")  # fmt: skip
    results: dict[str, tuple[Figures, Figures | None]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tree = None if args.no_baseline else baseline.export(args.baseline, Path(tmp), "shortcodes")
        for backend in args.backends.split(","):
            base = database(backend, args.pg_url, Path(tmp))
            if base is None:
                print(f"{backend}: skipped (give --pg-url or set SHORTCODES_BENCH_PG_URL)")
                continue
            workers = args.workers if backend != "sqlite" else 1  # one writer: see SQLITE_NOTE
            part = argparse.Namespace(**{**vars(args), "workers": workers})
            new = measure(part, base)
            report(f"{backend} (this tree)", new, None)
            old = None if tree is None else measure_baseline(part, base, tree)
            if old is not None:
                report(f"{backend} (baseline)", old, None)
            results[backend] = (new, old)
    label = "" if args.no_baseline else f" (baseline: {args.baseline})"
    print(f"figures{label}:")
    for backend, (new, old) in results.items():
        report(backend, new, old)


def database(backend: str, pg_url: str | None, tmp: Path) -> str | None:
    """The benchmark database URL for ``backend`` (None: PostgreSQL not configured)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp / 'bench-automations.db'}"
    return normalize_url(pg_url) if pg_url else None


if __name__ == "__main__":
    main()
