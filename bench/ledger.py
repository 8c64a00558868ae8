"""Benchmark of the credit ledger: purchases per second and read latency on SQLite and PostgreSQL.

Run from the repository root (or ``./dev bench ledger``):

    .venv/bin/python bench/ledger.py                  # full run: 100,000 contacts, 1,000,000 entries
    .venv/bin/python bench/ledger.py --quick          # smoke run: 10x smaller, short rounds
    .venv/bin/python bench/ledger.py --backends postgresql --json bench/results/ledger.json

For each backend it builds a fresh database with the store's own migrations, bulk-loads the
contacts with one opening entry each (PostgreSQL ``COPY``, SQLite ``executemany``) and measures
the balance read and the first history page (20 entries) at that size; loads nine more entries per
contact (10x the ledger) and measures them again, so a read that grows with the ledger shows. Then
1 and 8 concurrent clients run the purchase actionset (debit 5 credits, queue a receipt email,
record the run: the real ``Store.run_actionset`` path, one transaction each, a fresh nonce each)
on random contacts for ``--seconds`` each, after a short warm-up round and ``ANALYZE`` (so the
planner knows the run table is not empty). Clients are threads with their own connections in up
to ``--processes`` client processes (default one per core, as ``gunicorn --workers 2 --threads 4``
would run them; ``--processes 8`` gives each client its own process). Each round also reports the
CPU a purchase cost, client processes plus their PostgreSQL server processes, which holds whatever
else the machine is doing. Afterwards the ledger must verify, every purchase a client saw succeed
must be a run in the database, and the balances must have dropped by exactly 5 per run: any
difference is an anomaly and fails the run.

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
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import baseline  # bench/*.py: this script's own folder is first on sys.path
from checkpoint import checkpoint
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import Connection, make_url

from shortcodes.membership.config import parse_config
from shortcodes.store import Actor, Store
from shortcodes.store import schema as db
from shortcodes.store.database import normalize_url
from shortcodes.store.verify import GRANTS_BOUNDARY_KEY

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
#: The last commit before credit grants (issue 15): what ``--baseline`` compares against.
BASELINE = "20a425d"


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
            for table in ("contacts", "ledger_entries", "credit_grants", "grant_moves"):
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
    """Balances, and the grants holding them as migration 0007 leaves a database filled by the
    previous version: one opening grant per balance, and the last entry loaded as the boundary
    below which entries need no grant moves (loaded entries are written straight to the table)."""
    balance = sum(_delta(j) for j in range(entries))
    for table in (db.grant_moves, db.credit_grants, db.credit_accounts):
        conn.execute(table.delete())
    conn.execute(db.operations.delete().where(db.operations.c.key == GRANTS_BOUNDARY_KEY))
    last = conn.execute(select(func.max(db.ledger_entries.c.id))).scalar_one()
    conn.execute(
        insert(db.operations).values(
            key=GRANTS_BOUNDARY_KEY, kind="migration", fingerprint="0" * 64,
            result={"last_entry": int(last)}, actor_kind=LOAD_ACTOR[0], actor_id=LOAD_ACTOR[1],
            created_at=NOW,
        )
    )  # fmt: skip
    rows = [{"contact_id": c, "field": "_Credits", "balance": balance, "updated_at": NOW}
            for c in range(1, contacts + 1)]  # fmt: skip
    grant = {"field": "_Credits", "source": "opening", "category": "paid", "priority": 1,
             "amount": balance, "remaining": balance, "status": "active", "reason": "bench",
             "created_at": NOW}  # fmt: skip
    for start in range(0, len(rows), 50_000):
        chunk = rows[start : start + 50_000]
        conn.execute(insert(db.credit_accounts), chunk)
        conn.execute(
            insert(db.credit_grants),
            [grant | {"id": r["contact_id"], "contact_id": r["contact_id"]} for r in chunk],
        )
        moves = [{"id": r["contact_id"], "grant_id": r["contact_id"], "kind": "opening",
                  "delta": balance, "created_at": NOW} for r in chunk]  # fmt: skip
        conn.execute(insert(db.grant_moves), moves)


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


def worker(url: str, seconds: float, seed: int, go_file: str, contacts: int, threads: int) -> None:
    """One client process of ``threads`` clients: each buys on random contacts until the time is
    up, on its own pooled connection; prints a JSON summary of all of them."""
    store = Store.from_url(url, site=parse_config(SITE).actions, pool_size=threads)
    backends = _connect_all(store, threads)  # every connection open before the start signal
    print("ready", flush=True)
    while not os.path.exists(go_file):
        time.sleep(0.001)
    began = time.monotonic()  # CLOCK_MONOTONIC: comparable between processes on one machine
    cpu, server_cpu = time.process_time(), sum(map(_cpu_seconds, backends))
    outcomes: list[list[Any]] = [[] for _ in range(threads)]
    pool = [
        threading.Thread(target=_buy, args=(store, seconds, seed * 100 + t, contacts, outcomes[t]))
        for t in range(threads)
    ]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    ended = time.monotonic()
    cpu, server_cpu = time.process_time() - cpu, sum(map(_cpu_seconds, backends)) - server_cpu
    store.close()
    runs = [x for per_thread in outcomes for x in per_thread]
    summary = {
        "done": sum(ok for ok, _ in runs),
        "refused": sum(not ok for ok, _ in runs),
        "latencies": [t for _, t in runs],
        "client_cpu": cpu,
        "server_cpu": server_cpu,
    }
    print(json.dumps(summary | {"began": began, "ended": ended}), flush=True)


def _buy(store: Store, seconds: float, seed: int, contacts: int, out: list[Any]) -> None:
    rng = random.Random(seed)
    actor = Actor("visitor", f"bench-{seed}")
    deadline = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < deadline:
        n += 1
        started = time.perf_counter()
        result = store.run_actionset("buy", rng.randint(1, contacts), {}, f"w{seed}-{n}", actor)
        out.append((result.outcome == "done", time.perf_counter() - started))


def _connect_all(store: Store, count: int) -> list[int]:
    """Open ``count`` pooled connections at once; their PostgreSQL server pids (none on SQLite)."""
    with ExitStack() as stack:
        conns = [stack.enter_context(store.engine.connect()) for _ in range(count)]
        if store.engine.dialect.name != "postgresql":
            return []
        return [int(c.execute(text("SELECT pg_backend_pid()")).scalar_one()) for c in conns]


def _cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by a process of this machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def purchases(
    url: str, clients: int, seconds: float, contacts: int, round_no: int, processes: int
) -> dict[str, Any]:
    """Run ``clients`` clients at once, spread over up to ``processes`` worker processes (threads
    within each, like gunicorn's ``--workers N --threads M``); purchases/s and latencies."""
    go_file = Path(tempfile.mkdtemp()) / "go"
    procs = []
    count = min(clients, processes)
    for c in range(count):
        threads = clients // count + (c < clients % count)
        argv = [sys.executable, __file__, "--worker", url, str(seconds), str(round_no * 100 + c),
                str(go_file), str(contacts), str(threads)]  # fmt: skip
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
        "processes": count,
        "done": done,
        "refused": sum(r["refused"] for r in reports),
        "per_second": done / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": statistics.quantiles(latencies, n=100)[98] * 1000,
        # Client processes plus their database server processes: what a purchase costs in CPU,
        # whatever else the machine is doing.
        "client_cpu_ms": sum(r["client_cpu"] for r in reports) * 1000 / max(done, 1),
        "server_cpu_ms": sum(r["server_cpu"] for r in reports) * 1000 / max(done, 1),
    }


#: The line of a baseline's bench script before which :func:`measure_baseline` adds the same
#: checkpoint as this script's rounds have (``bench/checkpoint.py``, copied beside it).
ROUND_LOOP = "        for round_no, clients in enumerate(args.clients):\n"


def _with_checkpoints(script: str) -> str:
    """A baseline's bench script with a checkpoint before each of its rounds (the harness only;
    the code it measures is the baseline's own)."""
    if ROUND_LOOP not in script:
        print("warning: the baseline's rounds start without a checkpoint", file=sys.stderr)
        return script
    added = "            __import__('checkpoint').checkpoint(store)\n"
    return script.replace(ROUND_LOOP, ROUND_LOOP + added)


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
    with Store.from_url(url, site=parse_config(SITE).actions, pool_size=2) as store:
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
        warm = purchases(url, 1, min(2.0, args.seconds), args.contacts, 99, 1)
        if store.engine.dialect.name == "postgresql":
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE")
        result["runs"] = []
        for round_no, clients in enumerate(args.clients):
            checkpoint(store)
            run = purchases(url, clients, args.seconds, args.contacts, round_no, args.processes)
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
    print(
        f"\nLedger benchmark: {args.contacts:,} contacts, {args.entries:,} entries loaded, "
        f"{args.seconds:g} s per purchase round, purchase = debit {COST} + receipt email"
    )
    head = f"{'backend':<11} {'measure':<40} {'value':>14}"
    print(head + "\n" + "-" * len(head))
    for r in results:

        def row(label: str, value: str, backend: str = r["backend"]) -> None:
            print(f"{backend:<11} {label:<40} {value:>14}")

        for size, key in ((args.contacts, "reads_1x"), (args.entries, "reads_10x")):
            reads = r[key]
            for name in ("balance", "history"):
                label = f"{name} read p50/p99 ms @ {size:,} entries"
                row(label, f"{reads[name + '_p50']:.2f}/{reads[name + '_p99']:.2f}")
        for run in r["runs"]:
            label = f"purchases/s, {run['clients']} client(s) in {run['processes']} process(es)"
            row(label, f"{run['per_second']:,.0f}")
            row("  latency p50/p99 ms", f"{run['p50_ms']:.1f}/{run['p99_ms']:.1f}")
            cpu = run["client_cpu_ms"] + run["server_cpu_ms"]
            split = f"{run['client_cpu_ms']:.2f}+{run['server_cpu_ms']:.2f}"
            row("  CPU ms/purchase client+server", split)
            row("  => purchases/s two idle cores could do", f"{2000 / cpu:,.0f}")
        row("entries at the end", f"{r['entries_at_end']:,}")
        row("anomalies", str(len(r["anomalies"])))
        for problem in r["anomalies"][:10]:
            print(f"    {problem}")
    pg8 = [
        run["per_second"]
        for r in results
        if r["backend"] == "postgresql"
        for run in r["runs"]
        if run["clients"] == 8
    ]
    if pg8:
        verdict = "PASS" if pg8[0] >= 1000 else "FAIL"
        print(
            f"\ntarget >= 1,000 purchases/s on PostgreSQL with 8 clients: {pg8[0]:,.0f} {verdict}"
        )


def measure_baseline(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    """The same benchmark as ``--baseline``'s code ran it: that commit's own ``bench/ledger.py``
    on that commit's ``shortcodes``, in a child process, right after this tree's run."""
    tree = baseline.export(args.baseline, tmp / "baseline", "shortcodes", "bench")
    out = tmp / "baseline.json"
    cmd = [
        sys.executable, str(tree / "bench" / "ledger.py"), "--backends", args.backends,
        "--pg", args.pg, "--contacts", str(args.contacts), "--entries", str(args.entries),
        "--seconds", str(args.seconds), "--samples", str(args.samples),
        "--clients", ",".join(map(str, args.clients)), "--processes", str(args.processes),
        "--json", str(out),
    ]  # fmt: skip
    path = tree / "bench" / "ledger.py"
    script = _with_checkpoints(path.read_text(encoding="utf-8"))
    path.write_text(script, encoding="utf-8")
    shutil.copyfile(Path(__file__).with_name("checkpoint.py"), path.with_name("checkpoint.py"))
    if "--no-baseline" in script:  # a baseline that compares with its own baseline: not here
        cmd.append("--no-baseline")
    env = {**os.environ, "PYTHONPATH": str(tree)}  # its own code, not this tree's
    print(f"\n== baseline {args.baseline}", flush=True)
    subprocess.run(cmd, cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL)
    old: list[dict[str, Any]] = json.loads(out.read_text(encoding="utf-8"))
    return old


def print_ratios(new: list[dict[str, Any]], old: list[dict[str, Any]], ref: str) -> None:
    """One line per figure: this tree, the baseline, and how many times better this tree is."""
    what = " (before credit grants)" if ref == BASELINE else ""
    print(f"\nAgainst {ref}{what}, same run:")
    before = {r["backend"]: r for r in old}
    for r in new:
        prev = before.get(r["backend"])
        if prev is None:
            continue
        for run, was in zip(r["runs"], prev["runs"], strict=True):
            now_s, old_s = run["per_second"], was["per_second"]
            print(
                f"{r['backend']} | purchases/s, {run['clients']} client(s): {now_s:,.0f} | "
                f"baseline {old_s:,.0f} | {baseline.ratio(now_s, old_s)}"
            )
        for key in ("balance_p50", "history_p50"):
            now_ms, old_ms = r["reads_10x"][key], prev["reads_10x"][key]
            print(
                f"{r['backend']} | {key} ms @ 10x: {now_ms:.2f} | baseline {old_ms:.2f} | "
                f"{baseline.ratio(now_ms, old_ms, lower_is_better=True)}"
            )


def main() -> int:
    """Parse arguments and run the benchmark (or one client, with --worker)."""
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        url, seconds, seed, go_file, contacts, threads = sys.argv[2:8]
        worker(url, float(seconds), int(seed), go_file, int(contacts), int(threads))
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
    parser.add_argument(
        "--processes",
        type=int,
        default=os.cpu_count() or 2,
        help="client processes the clients are spread over (default: one per core)",
    )
    parser.add_argument("--quick", action="store_true", help="10x smaller, 2 s rounds")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    parser.add_argument("--baseline", default=BASELINE, help="the commit to compare against")
    parser.add_argument("--no-baseline", action="store_true", help="measure this tree only")
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
        old = None if args.no_baseline else measure_baseline(args, Path(tmp))
    print_table(results, args)
    if old is not None:
        print_ratios(results, old, args.baseline)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if any(r["anomalies"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
