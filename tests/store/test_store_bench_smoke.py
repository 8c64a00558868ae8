"""bench/ledger.py runs end to end on a tiny ledger and finds zero anomalies, on both databases."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url

BENCH = Path(__file__).resolve().parents[2] / "bench" / "ledger.py"


def test_the_ledger_benchmark_runs_and_reports_zero_anomalies(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    argv = [sys.executable, str(BENCH), "--backends", backend, "--sqlite", str(tmp_path / "b.db")]
    argv += ["--contacts", "200", "--entries", "400", "--seconds", "0.5", "--samples", "40"]
    argv += ["--clients", "1,2", "--json", str(tmp_path / "ledger.json")]
    if backend == "postgresql":
        _, worker_url = request.getfixturevalue("pg_admin")
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        database = f"bench_ledger_smoke_{worker}_{os.getpid()}"
        url = make_url(worker_url).difference_update_query(["options"]).set(database=database)
        url = url.set(drivername="postgresql+psycopg")
        argv += ["--pg", url.render_as_string(hide_password=False)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    finally:
        if backend == "postgresql":
            _drop_database(url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{backend:<11} {'anomalies':<40} {'0':>14}" in done.stdout
    assert "purchases/s, 2 client(s)" in done.stdout
    # The same run measures the code before credit grants and prints how this tree compares.
    assert f"{backend} | purchases/s, 2 client(s): " in done.stdout
    assert "Against 20a425d (before credit grants), same run:" in done.stdout
    assert "without a checkpoint" not in done.stderr  # both trees checkpoint before rounds
    assert (tmp_path / "ledger.json").is_file()


def _drop_database(url: URL) -> None:
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
    admin.dispose()
