"""Benchmark peer: the PyPI package `shortcodes` 5.4.0 in its own venv, driven from this process.

Its import name clashes with ours, so it never enters this interpreter. :func:`peer_python` finds
(or makes, with ``python -m venv`` and ``pip install shortcodes==5.4.0``) bench/.peer-venv, and
:class:`PeerWorker` runs bench/peer_shortcodes.py there; :class:`PeerTimer` lets timing.race
interleave the peer's batches with ours. The clock runs inside the peer's process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
PEER_VENV = BENCH / ".peer-venv"
PEER_VERSION = "5.4.0"


def peer_python(no_peer: bool, given: str | None, may_create: bool) -> tuple[Path | None, str]:
    """The interpreter that has `shortcodes` 5.4.0, or None and the reason it is skipped."""
    if no_peer:
        return None, "skipped (--no-peer)"
    if given:
        return Path(given), ""
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        if not may_create:
            return None, "skipped (--quick never creates the peer venv)"
        print(f"creating {PEER_VENV} with shortcodes=={PEER_VERSION} ...", file=sys.stderr)
        made = subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=False)
        if made.returncode != 0:
            return None, f"skipped (python -m venv failed: {made.returncode})"
    check = [str(python), "-I", "-c", "import shortcodes; print(shortcodes.__version__)"]
    found = subprocess.run(check, capture_output=True, text=True, check=False)
    if found.stdout.strip() != PEER_VERSION:
        pip = [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"shortcodes=={PEER_VERSION}",
        ]
        installed = subprocess.run(pip, capture_output=True, text=True, check=False)
        if installed.returncode != 0:
            return None, "skipped (pip install failed: " + installed.stderr.strip()[-200:] + ")"
    return python, ""


class PeerWorker:
    """bench/peer_shortcodes.py running in the peer venv, answering one JSON line per request."""

    def __init__(self, python: Path) -> None:
        self.proc = subprocess.Popen(
            [str(python), "-I", str(BENCH / "peer_shortcodes.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        hello = self._read()
        if hello["version"] != PEER_VERSION:
            self.close()
            raise RuntimeError(f"peer is shortcodes {hello['version']}, wanted {PEER_VERSION}")
        self.file = hello["file"]

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"peer worker exited with code {self.proc.wait()}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def request(self, **req: Any) -> dict[str, Any]:
        """Send one request and wait for its reply."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def load(self, label: str, path: Path, expected_path: Path) -> bool:
        """Give the worker a page; True if the peer renders it to the expected output."""
        ok: bool = self.request(
            cmd="load", label=label, path=str(path), expected_path=str(expected_path)
        )["ok"]
        return ok

    def close(self) -> None:
        """End the worker (closing its stdin ends its loop)."""
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self.proc.wait()


class PeerTimer:
    """A timing.Timer for one page loaded in the peer worker."""

    def __init__(self, worker: PeerWorker, label: str) -> None:
        self.worker = worker
        self.label = label
        self.number = 1

    def calibrate(self, min_batch: float) -> float:
        """Warm-up call and batch size, decided in the peer's process."""
        reply = self.worker.request(cmd="calibrate", label=self.label, min_batch=min_batch)
        self.number = reply["number"]
        first: float = reply["first"]
        return first

    def batch(self) -> float:
        """One batch in the peer's process; its per-call time."""
        per_call: float = self.worker.request(cmd="batch", label=self.label)["time"]
        return per_call
