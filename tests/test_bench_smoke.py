"""Smoke test of the benchmark script bench/engine.py: it runs end to end in --quick mode.

Speed is never asserted here (the machine is shared and timings vary); the test proves the script
runs, prints its table and writes its JSON, without the network (--no-peer skips the PyPI peer).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEADER_START = "corpus   bytes      tags  depth  implementation"


@pytest.fixture(scope="module")
def quick_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """One --quick --no-peer run of the benchmark, shared by the tests below."""
    out = tmp_path_factory.mktemp("bench") / "engine.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "engine.py"),
            "--quick",
            "--no-peer",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    data = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    return proc, data


def test_quick_benchmark_exits_0_and_prints_the_table_header(
    quick_run: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    proc, _ = quick_run
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert HEADER_START in proc.stdout
    assert "Targets" in proc.stdout


def test_quick_benchmark_writes_json_with_every_implementation_and_pathological_case(
    quick_run: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    _, data = quick_run
    impls = {r["impl"] for r in data["rows"]}
    assert {
        "ours: env.render (cold)",
        "ours: Template.render(ctx)",
        "jinja2: call blocks (reference)",
    } <= impls
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import corpus
    finally:
        sys.path.remove(str(ROOT / "bench"))
    assert [r["case"] for r in data["pathological"]] == [c.name for c in corpus.PATHOLOGICAL]


def test_quick_benchmark_outputs_match_the_expected_page(
    quick_run: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    """Every timed render produced the page the echo handlers should give (not a timing check)."""
    _, data = quick_run
    mismatched = [(r["corpus"], r["impl"]) for r in data["rows"] if r["ok"] is False]
    assert mismatched == []


def test_quick_benchmark_no_pathological_input_crashes_the_engine(
    quick_run: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    """No RecursionError, exception, hang or dead process on any hostile input (not timing)."""
    _, data = quick_run
    failures = {r["case"]: r["error"] for r in data["pathological"] if "error" in r}
    assert failures == {}


def test_the_accounts_benchmark_runs_and_prints_its_three_rows(tmp_path: Path) -> None:
    out = tmp_path / "accounts.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "accounts.py"), "--requests", "2", "--json",
         str(out)],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [line.split()[0] for line in proc.stdout.splitlines()] == ["reset", "signup", "session"]
    assert set(json.loads(out.read_text(encoding="utf-8"))) == {"reset", "signup", "session"}
