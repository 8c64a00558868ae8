"""Benchmark peer runner: times the PyPI package `shortcodes` 5.4.0 inside its own venv.

Its import name clashes with ours, so bench/engine.py runs this file with the peer venv's
interpreter in isolated mode (`python -I`, so neither this folder nor the repo is on sys.path) and
reads one JSON object from stdout. Standard library plus the peer package only.

Input (JSON on stdin): {"corpora": [{"label", "path", "expected_path"}], "repeat", "min_batch",
"budget"}. Output: {"version", "file", "results": [{"label", "best", "number", "repeat", "ok"}]}.
"""

from __future__ import annotations

import gc
import html
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import shortcodes  # the PyPI package, not ours: this runs in bench/.peer-venv

ECHO_NAMES = ("memb_contact", "else_memb_has_any_tag", "else_memb_has_all_tags", "else_memb_if")
BLOCK_NAMES = ("memb_has_any_tag", "memb_has_all_tags", "memb_if")


def _echo(name: str) -> Callable[..., str]:
    def handler(pargs: list[str], kwargs: dict[str, str], context: Any) -> str:
        values = [*pargs, *kwargs.values()]
        # The same body as corpus.echo_leaf, which ours and Jinja2's echo handlers use.
        return f'<span class="{html.escape(name)}">{html.escape(" ".join(values))}</span>'

    return handler


def _block(pargs: list[str], kwargs: dict[str, str], context: Any, content: str) -> str:
    # The peer renders a block's children before calling the handler and passes the result in.
    return content


def make_parser() -> Any:
    """A parser with echo handlers under the same names as our benchmark registers."""
    parser = shortcodes.Parser(inherit_globals=False, ignore_unknown=True)
    for name in ECHO_NAMES:
        parser.register(_echo(name), name)
    for name in BLOCK_NAMES:
        parser.register(_block, name, "end" + name)
    return parser


def best_of(
    fn: Callable[[], object], repeat: int, min_batch: float, budget: float
) -> dict[str, Any]:
    """timeit-style: warm up, size a batch to last ``min_batch`` s, keep the best per-call time."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    number = 1 if first >= min_batch else max(1, int(min_batch / max(first, 1e-9)))
    repeat = max(1, min(repeat, int(budget / max(first * number, 1e-9))))
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            for _ in range(number):
                fn()
            best = min(best, (time.perf_counter() - start) / number)
        finally:
            gc.enable()
    return {"best": best, "number": number, "repeat": repeat}


def main() -> int:
    """Read the job from stdin, time each corpus, print the results as JSON."""
    job = json.load(sys.stdin)
    parser = make_parser()
    results = []
    for corpus in job["corpora"]:
        with open(corpus["path"], encoding="utf-8") as f:
            text = f.read()
        with open(corpus["expected_path"], encoding="utf-8") as f:
            expected = f.read()
        ok = parser.parse(text, None) == expected
        timing = best_of(lambda t=text: parser.parse(t, None), job["repeat"], job["min_batch"],
                         job["budget"])
        results.append({"label": corpus["label"], "ok": ok, **timing})
    json.dump({"version": shortcodes.__version__, "file": shortcodes.__file__, "results": results},
              sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
