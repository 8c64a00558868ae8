"""Reliability: real worker processes killed with SIGKILL, racing, and cut off from PostgreSQL.

Each test seeds due steps of a "tick" rule (credit 1, then queue an email), runs real
``python -m shortcodes worker`` processes against the database, and then checks that every step
ran exactly once: one ledger entry and one outbox message per run, every message delivered as
exactly one ``.eml`` file, and a ledger that verifies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from shortcodes.automations import AutomationConfig, executor, parse_automations
from shortcodes.store import schema as db
from tests.support.automations import SITE_TOML, Harness
from tests.support.paths import ROOT

TICK = """
[[rules]]
name = "tick"
trigger = "webhook('tick')"
steps = [
  { do = "credit", field = "_Credits", amount = 1 },
  { do = "send_email", template = "tick" },
]
"""


@pytest.fixture
def tick_site(tmp_path: Path) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "site.toml").write_text(SITE_TOML + TICK, encoding="utf-8")
    return folder / "site.toml"


def tick_config(site_file: Path) -> AutomationConfig:
    return parse_automations(site_file.read_text(encoding="utf-8"), str(site_file))


def seed(h: Harness, config: AutomationConfig, runs: int, contacts: int = 50) -> list[int]:
    """``runs`` tick runs (two due steps each) spread over ``contacts`` contacts."""
    ids = [h.contact(f"c{n}@example.com") for n in range(contacts)]
    rule = config.rules["tick"]
    for start in range(0, runs, 1000):

        def work(tx, start=start):  # type: ignore[no-untyped-def]
            for n in range(start, min(runs, start + 1000)):
                executor.start_run(tx, config, rule, ids[n % contacts], f"seed:{n}", {"n": n})

        h.store.run_in_transaction(work)
    return ids


def worker_cmd(url: str, site: Path, instance: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "shortcodes", "worker", "--until-idle", "--poll", "0.1",
        "--database-url", url, "--site", str(site), "--instance", str(instance), *extra,
    ]  # fmt: skip


def start(cmd: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def assert_exactly_once(h: Harness, runs: int, contacts: list[int], instance: Path) -> None:
    e, o, s = db.ledger_entries, db.outbox, db.auto_steps
    with h.store.engine.connect() as conn:
        entries = conn.execute(
            select(func.count()).select_from(e).where(e.c.reason == "rule tick")
        ).scalar_one()
        statuses = {
            r[0]: r[1] for r in conn.execute(select(s.c.status, func.count()).group_by(s.c.status))
        }
        mails = conn.execute(select(o.c.id, o.c.status).where(o.c.kind == "email")).all()
        runs_done = conn.execute(
            select(func.count()).select_from(db.auto_runs).where(db.auto_runs.c.status == "done")
        ).scalar_one()
    assert statuses == {"done": 2 * runs}
    assert runs_done == runs
    assert entries == runs, "each credit step wrote exactly one ledger entry"
    assert sum(h.store.balance(c) for c in contacts) == runs
    assert len(mails) == runs, "each email step queued exactly one message"
    assert {m.status for m in mails} == {"sent"}
    files = sorted(p.name for p in (instance / "outbox").glob("*.eml"))
    assert files == sorted(f"{m.id:09d}.eml" for m in mails), "one file per message"
    assert not list((instance / "outbox").glob("*.tmp*"))
    assert h.store.verify().ok


@pytest.mark.slow
def test_a_worker_killed_mid_batch_and_restarted_runs_10000_steps_exactly_once(
    harness: Harness, tick_site: Path, db_url: str, tmp_path: Path
) -> None:
    config = tick_config(tick_site)
    runs = 5000  # 10,000 due steps
    contacts = seed(harness, config, runs)
    instance = tmp_path / "worker-instance"
    cmd = worker_cmd(db_url, tick_site, instance, "--batch", "200")
    kills = 0
    for threshold in (1000, 4000):
        proc = start(cmd)
        deadline = time.monotonic() + 120
        while harness.count_steps_done() < threshold and proc.poll() is None:
            assert time.monotonic() < deadline, "the worker made no progress"
            time.sleep(0.02)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
    assert kills >= 1
    assert harness.count_steps_done() < 2 * runs, "killed before finishing"
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert_exactly_once(harness, runs, contacts, instance)


@pytest.mark.slow
def test_two_worker_processes_racing_on_the_same_due_steps_run_each_once(
    harness: Harness, tick_site: Path, db_url: str, backend: str, tmp_path: Path
) -> None:
    config = tick_config(tick_site)
    runs = 1500
    contacts = seed(harness, config, runs)
    instance = tmp_path / "shared-instance"
    procs = [start(worker_cmd(db_url, tick_site, instance, "--batch", "20")) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert_exactly_once(harness, runs, contacts, instance)
    s = db.auto_steps
    with harness.store.engine.connect() as conn:
        by_worker = conn.execute(select(s.c.worker, func.count()).group_by(s.c.worker)).all()
    if backend == "postgresql":
        assert len(by_worker) == 2, f"both workers should share the work: {by_worker}"


@pytest.mark.slow
@pytest.mark.postgres
def test_worker_survives_postgresql_dropping_its_connections_mid_run(
    harness: Harness, tick_site: Path, db_url: str, backend: str, tmp_path: Path
) -> None:
    if backend != "postgresql":
        pytest.skip("connections are cut server-side on PostgreSQL only")
    config = tick_config(tick_site)
    runs = 2000
    contacts = seed(harness, config, runs)
    instance = tmp_path / "pg-instance"
    name = f"autoworker{os.getpid()}"
    url = db_url + f"&application_name={name}"
    proc = start(worker_cmd(url, tick_site, instance, "--batch", "50"))
    cut = 0
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if harness.count_steps_done() > 500 * (cut + 1) and cut < 3:
            with harness.store.engine.begin() as conn:
                killed = conn.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = :n"
                    ),
                    {"n": name},
                ).scalar_one()
            cut += 1 if killed else 0
        time.sleep(0.02)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert cut >= 1
    assert "database errors survived" in out
    assert_exactly_once(harness, runs, contacts, instance)
