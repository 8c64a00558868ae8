"""Benchmark of the credit ledger: purchases per second and read latency on SQLite and PostgreSQL.

Run from the repository root (or ``./dev bench ledger``):

    .venv/bin/python bench/ledger.py                  # full run: 100,000 contacts, 1,000,000 entries
    .venv/bin/python bench/ledger.py --quick          # smoke run: 10x smaller, short rounds
    .venv/bin/python bench/ledger.py --backends postgresql --json bench/results/ledger.json

For each backend it builds a fresh database with the store's own migrations, bulk-loads the
contacts with one opening entry each (PostgreSQL ``COPY``, SQLite ``executemany``) and measures
the balance read and the first history page (20 entries) at that size; loads nine more entries per
contact (10x the ledger) and measures them again, so a read that grows with the ledger shows. Then
1 and 8 client *processes* (as gunicorn workers would be) run the purchase actionset (debit 5
credits, queue a receipt email, record the run: the real ``Store.run_actionset`` path, one
transaction each, a fresh nonce each) on random contacts for ``--seconds`` each, after a short
warm-up round and ``ANALYZE`` (so the planner knows the run table is not empty). Afterwards the
ledger must verify, every purchase a client saw succeed must be a run in the database, and the
balances must have dropped by exactly 5 per run: any difference is an anomaly and fails the run.

PostgreSQL: the database named by ``--pg`` (default ``postgresql://postgres@127.0.0.1:5432/
bench_ledger``, created if missing; its schema ``bench`` is dropped and rebuilt, nothing else is
touched). SQLite: a file in a temporary folder (``--sqlite PATH`` to choose). The store runs with
its production settings: WAL and ``synchronous=FULL`` on SQLite, default durability on PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import Connection, make_url

from shortcodes.actionsets import parse_site_actions
from shortcodes.store import Actor, Store
from shortcodes.store import schema as db
from shortcodes.store.engine import normalize_url

SITE = """
[credits]
fields = ["_Credits"]

[actionsets.buy]
title = "Snack"
params.cost = { type = "int", default = 5 }
steps = [
  { do = "debit", amount = "$cost" },
  { do = "send_email", template = "receipt" },
]
"""
COST = 5
OPENING = 1_000_000  # every contact can afford every purchase a run can make
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/bench_ledger"
NOW = datetime(2026, 1, 1)
LOAD_ACTOR = ("system", "bench-load")


# -- databases -------------------------------------------------------------------------------------


def fresh_postgres(url: str) -> str:
    """Create the bench database if needed and an empty ``bench`` schema; the URL selecting it."""
    base = make_url(normalize_url(url))
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": base.database}
        ).first()
        if not exists:
            conn.exec_driver_sql(f'CREATE DATABASE "{base.database}"')
    admin.dispose()
    engine = create_engine(base)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA IF EXISTS bench CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA bench")
    engine.dispose()
    return base.update_query_dict({"options": "-csearch_path=bench"}).render_as_string(False)


def fresh_sqlite(path: Path) -> str:
    """An empty SQLite file at ``path``; its URL."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


# -- bulk load -------------------------------------------------------------------------------------


def bulk_load(store: Store, contacts: int, per_contact: int, first_entry: int) -> float:
    """Load entries ``first_entry`` .. ``first_entry + per_contact - 1`` of every contact (and the
    contacts themselves when ``first_entry`` is 0); the seconds it took."""
    started = time.perf_counter()
    with store.engine.begin() as conn:
        op_id = _load_operation(conn, first_entry)
        if first_entry == 0:
            _copy(conn, db.contacts, _contact_rows(contacts))
        _copy(conn, db.ledger_entries, _entry_rows(contacts, per_contact, first_entry, op_id))
        _set_balances(conn, contacts, first_entry + per_contact)
        if conn.dialect.name == "postgresql":
            for table in ("contacts", "ledger_entries"):
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608 - table names are constants
                    f"(SELECT max(id) FROM {table}))"
                )
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    return time.perf_counter() - started


def _load_operation(conn: Connection, batch: int) -> int:
    values = {
        "key": f"bench-load-{batch}",
        "kind": "credit",
        "fingerprint": "0" * 64,
        "result": {},
        "actor_kind": LOAD_ACTOR[0],
        "actor_id": LOAD_ACTOR[1],
        "created_at": NOW,
    }
    return int(
        conn.execute(
            insert(db.operations).values(**values).returning(db.operations.c.id)
        ).scalar_one()
    )


def _contact_rows(contacts: int) -> Iterator[tuple[Any, ...]]:
    for cid in range(1, contacts + 1):
        yield (cid, f"c{cid}@bench.example", f"Contact {cid}", None, "{}", NOW)


def _delta(k: int) -> int:
    # Entry 0 opens the account; later ones alternate small debits and credits that net to zero
    # over each pair, so the balance stays near OPENING whatever the ledger's length.
    if k == 0:
        return OPENING
    return -7 if k % 2 else 7


def _entry_rows(
    contacts: int, per_contact: int, first: int, op_id: int
) -> Iterator[tuple[Any, ...]]:
    # Interleaved by entry number, as a live ledger is: a contact's entries are spread out.
    entry_id = first * contacts
    for k in range(first, first + per_contact):
        balance = sum(_delta(j) for j in range(k + 1))
        for cid in range(1, contacts + 1):
            entry_id += 1
            yield (
                entry_id, cid, "_Credits", _delta(k), balance, "bench load", LOAD_ACTOR[0],
                LOAD_ACTOR[1], f"op:bench-load-{first}#{entry_id}", op_id, None, None, NOW,
            )  # fmt: skip


COLUMNS = {
    "contacts": ("id", "email", "name", "password_hash", "fields", "created_at"),
    "ledger_entries": (
        "id", "contact_id", "field", "delta", "balance_after", "reason", "actor_kind", "actor_id",
        "idempotency_key", "operation_id", "run_id", "reverses_id", "created_at",
    ),
}  # fmt: skip


def _copy(conn: Connection, table: Any, rows: Iterator[tuple[Any, ...]]) -> None:
    columns = COLUMNS[table.name]
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    placeholders = ", ".join("?" for _ in columns)
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({placeholders})"  # noqa: S608 - constants
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == 50_000:
            conn.exec_driver_sql(sql, batch)
            batch = []
    if batch:
        conn.exec_driver_sql(sql, batch)


def _set_balances(conn: Connection, contacts: int, entries: int) -> None:
    balance = sum(_delta(j) for j in range(entries))
    conn.execute(db.credit_accounts.delete())
    rows = [{"contact_id": c, "field": "_Credits", "balance": balance, "updated_at": NOW}
            for c in range(1, contacts + 1)]  # fmt: skip
    for start in range(0, len(rows), 50_000):
        conn.execute(insert(db.credit_accounts), rows[start : start + 50_000])


# -- read latency ----------------------------------------------------------------------------------


def read_latency(store: Store, contacts: int, samples: int) -> dict[str, float]:
    """p50 and p99 (ms) of a balance read and of the first history page, on random contacts."""
    rng = random.Random(7)
    picks = [rng.randint(1, contacts) for _ in range(samples)]
    out = {}
    for name, call in (
        ("balance", lambda c: store.balance(c)),
        ("history", lambda c: store.history(c, limit=20)),
    ):
        times = _time_each(call, picks)
        out[f"{name}_p50"] = statistics.median(times)
        out[f"{name}_p99"] = statistics.quantiles(times, n=100)[98]
    return out


def _time_each(call: Callable[[int], Any], picks: list[int]) -> list[float]:
    for c in picks[:20]:  # warm the pool and the statement cache
        call(c)
    times = []
    for c in picks:
        started = time.perf_counter()
        call(c)
        times.append((time.perf_counter() - started) * 1000)
    return times


# -- purchases -------------------------------------------------------------------------------------


def worker(url: str, seconds: float, seed: int, go_file: str, contacts: int) -> None:
    """One client process: buy on random contacts until the time is up; print a JSON summary."""
    store = Store.from_url(url, site=parse_site_actions(SITE), pool_size=1)
    rng = random.Random(seed)
    store.balance(1)  # connect before the start signal
    print("ready", flush=True)
    while not os.path.exists(go_file):
        time.sleep(0.001)
    done, refused, latencies = 0, 0, []
    began = time.monotonic()  # CLOCK_MONOTONIC: comparable between processes on one machine
    deadline = time.perf_counter() + seconds
    actor = Actor("visitor", f"bench-{seed}")
    n = 0
    while time.perf_counter() < deadline:
        n += 1
        started = time.perf_counter()
        result = store.run_actionset("buy", rng.randint(1, contacts), {}, f"w{seed}-{n}", actor)
        latencies.append(time.perf_counter() - started)
        done += result.outcome == "done"
        refused += result.outcome != "done"
    ended = time.monotonic()
    store.close()
    summary = {"done": done, "refused": refused, "latencies": latencies}
    print(json.dumps(summary | {"began": began, "ended": ended}), flush=True)


def purchases(
    url: str, clients: int, seconds: float, contacts: int, round_no: int
) -> dict[str, Any]:
    """Run ``clients`` worker processes at once; purchases/s and latency percentiles."""
    go_file = Path(tempfile.mkdtemp()) / "go"
    procs = []
    for c in range(clients):
        argv = [sys.executable, __file__, "--worker", url, str(seconds), str(round_no * 100 + c),
                str(go_file), str(contacts)]  # fmt: skip
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit("a bench client failed to start")
        procs.append(proc)
    go_file.touch()
    reports = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    # From the first client's start to the last one's end (process exit not counted).
    elapsed = max(r["ended"] for r in reports) - min(r["began"] for r in reports)
    if any(p.returncode for p in procs):
        raise SystemExit("a bench client failed")
    latencies = sorted(x for r in reports for x in r["latencies"])
    done = sum(r["done"] for r in reports)
    return {
        "clients": clients,
        "done": done,
        "refused": sum(r["refused"] for r in reports),
        "per_second": done / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": statistics.quantiles(latencies, n=100)[98] * 1000,
    }


def anomalies(store: Store, contacts: int, entries: int, purchases_done: int) -> list[str]:
    """Everything that disagrees after the runs (an empty list is the pass condition)."""
    problems = [f"verify: contact {p.contact_id}: {p.message}" for p in store.verify().problems]
    expected_total = contacts * sum(_delta(j) for j in range(entries)) - COST * purchases_done
    with store.engine.connect() as conn:
        total = conn.execute(select(func.sum(db.credit_accounts.c.balance))).scalar_one()
        runs = conn.execute(select(func.count()).select_from(db.actionset_runs)).scalar_one()
        mail = conn.execute(select(func.count()).select_from(db.outbox)).scalar_one()
    if int(total) != expected_total:
        problems.append(f"balances total {total}, expected {expected_total}")
    if runs != purchases_done or mail != purchases_done:
        problems.append(f"{purchases_done} purchases seen by clients, {runs} runs, {mail} emails")
    return problems


# -- the run ---------------------------------------------------------------------------------------


def bench_backend(name: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Everything for one backend: load, latency at 1x and 10x, purchases, anomalies."""
    print(f"\n== {name}", flush=True)
    result: dict[str, Any] = {"backend": name}
    with Store.from_url(url, site=parse_site_actions(SITE), pool_size=2) as store:
        store.upgrade()
        result["load_1x_s"] = bulk_load(store, args.contacts, 1, 0)
        print(
            f"loaded {args.contacts:,} contacts and entries in {result['load_1x_s']:.1f} s",
            flush=True,
        )
        result["reads_1x"] = read_latency(store, args.contacts, args.samples)
        per_contact = args.entries // args.contacts - 1
        result["load_10x_s"] = bulk_load(store, args.contacts, per_contact, 1)
        print(
            f"loaded {args.contacts * per_contact:,} more entries in {result['load_10x_s']:.1f} s",
            flush=True,
        )
        result["reads_10x"] = read_latency(store, args.contacts, args.samples)
        # A warm-up round, then ANALYZE: PostgreSQL plans the foreign-key checks on the run table
        # from its statistics, and a freshly created, empty table is planned as a sequential
        # scan, which a live site's run table never is.
        warm = purchases(url, 1, min(2.0, args.seconds), args.contacts, 99)
        if store.engine.dialect.name == "postgresql":
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE")
        result["runs"] = []
        for round_no, clients in enumerate(args.clients):
            run = purchases(url, clients, args.seconds, args.contacts, round_no)
            print(f"{clients} client(s): {run['per_second']:.0f} purchases/s", flush=True)
            result["runs"].append(run)
        done = warm["done"] + sum(r["done"] for r in result["runs"])
        result["anomalies"] = anomalies(store, args.contacts, args.entries // args.contacts, done)
        with store.engine.connect() as conn:
            result["entries_at_end"] = conn.execute(
                select(func.count()).select_from(db.ledger_entries)
            ).scalar_one()
    return result


def print_table(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """The report: one block per backend."""
    print(f"\nLedger benchmark: {args.contacts:,} contacts, {args.entries:,} entries loaded, "
          f"{args.seconds:g} s per purchase round, purchase = debit {COST} + receipt email")  # fmt: skip
    head = f"{'backend':<11} {'measure':<38} {'value':>12}"
    print(head + "\n" + "-" * len(head))
    for r in results:
        b = r["backend"]
        for size, key in (
            (f"{args.contacts:,} entries", "reads_1x"),
            (f"{args.entries:,} entries", "reads_10x"),
        ):
            reads = r[key]
            print(
                f"{b:<11} {'balance read p50/p99 ms @ ' + size:<38} {reads['balance_p50']:>5.2f}/{reads['balance_p99']:<6.2f}"
            )
            print(
                f"{b:<11} {'history page p50/p99 ms @ ' + size:<38} {reads['history_p50']:>5.2f}/{reads['history_p99']:<6.2f}"
            )
        for run in r["runs"]:
            label = f"purchases/s, {run['clients']} client(s)"
            print(f"{b:<11} {label:<38} {run['per_second']:>12,.0f}")
            print(
                f"{b:<11} {'  latency p50/p99 ms':<38} {run['p50_ms']:>5.1f}/{run['p99_ms']:<6.1f}"
            )
        print(f"{b:<11} {'entries at the end':<38} {r['entries_at_end']:>12,}")
        print(f"{b:<11} {'anomalies':<38} {len(r['anomalies']):>12}")
        for problem in r["anomalies"][:10]:
            print(f"    {problem}")
    pg8 = [run["per_second"] for r in results if r["backend"] == "postgresql"
           for run in r["runs"] if run["clients"] == 8]  # fmt: skip
    if pg8:
        verdict = "PASS" if pg8[0] >= 1000 else "FAIL"
        print(
            f"\ntarget >= 1,000 purchases/s on PostgreSQL with 8 clients: {pg8[0]:,.0f} {verdict}"
        )


def main() -> int:
    """Parse arguments and run the benchmark (or one client, with --worker)."""
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        url, seconds, seed, go_file, contacts = sys.argv[2:7]
        worker(url, float(seconds), int(seed), go_file, int(contacts))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg", default=os.environ.get("SHORTCODES_BENCH_PG_URL", DEFAULT_PG))
    parser.add_argument("--sqlite", type=Path, help="SQLite file (default: a temporary one)")
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8])
    parser.add_argument("--quick", action="store_true", help="10x smaller, 2 s rounds")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    if args.quick:
        args.contacts, args.entries, args.seconds, args.samples = 10_000, 100_000, 2.0, 300
    if args.entries % args.contacts or args.entries < 2 * args.contacts:
        parser.error("--entries must be a multiple (2x or more) of --contacts")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            if backend == "sqlite":
                url = fresh_sqlite(args.sqlite or Path(tmp) / "bench.db")
            elif backend == "postgresql":
                url = fresh_postgres(args.pg)
            else:
                parser.error(f"unknown backend {backend!r}")
            results.append(bench_backend(backend, url, args))
    print_table(results, args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if any(r["anomalies"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
