"""Benchmarks against the previous code: a commit of this repository, exported beside the tree.

A benchmark that must show a change did not slow something down measures the code before the
change in the same run. ``export(ref, into, ...)`` writes the named folders of commit ``ref``
into ``into`` (``git archive``), where a child process imports that code instead of this tree's.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def export(ref: str, into: Path, *paths: str) -> Path:
    """The folders ``paths`` of commit ``ref``, exported into ``into``; returns ``into``."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "archive", ref, *paths], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def ratio(new: float, old: float, *, lower_is_better: bool = False) -> str:
    """How many times better the new figure is ("1.25x"); above 1 is better."""
    if not new or not old:
        return "-"
    return f"{(old / new if lower_is_better else new / old):.2f}x"
