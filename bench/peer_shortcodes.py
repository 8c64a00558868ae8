"""Benchmark peer worker: times the PyPI package `shortcodes` 5.4.0 inside its own venv.

Its import name clashes with ours, so bench/peer.py starts this file with the peer venv's
interpreter in isolated mode (`python -I`: neither this folder nor the repo is on sys.path) and
talks to it in JSON lines, so the peer's batches can be interleaved with ours (see timing.py).
Standard library plus the peer package only. Requests and replies, one JSON object per line:

    (on start)                                     -> {"version", "file"}
    {"cmd": "load", "label", "path", "expected_path"} -> {"ok": output equals the expected page}
    {"cmd": "calibrate", "label", "min_batch"}     -> {"first": seconds, "number": calls per batch}
    {"cmd": "batch", "label"}                      -> {"time": seconds per call}
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


class Worker:
    """The loaded pages and their batch sizes."""

    def __init__(self) -> None:
        self.parser = make_parser()
        self.texts: dict[str, str] = {}
        self.numbers: dict[str, int] = {}

    def load(self, req: dict[str, Any]) -> dict[str, Any]:
        with open(req["path"], encoding="utf-8") as f:
            text = self.texts[req["label"]] = f.read()
        with open(req["expected_path"], encoding="utf-8") as f:
            return {"ok": self.parser.parse(text, None) == f.read()}

    def calibrate(self, req: dict[str, Any]) -> dict[str, Any]:
        text = self.texts[req["label"]]
        start = time.perf_counter()
        self.parser.parse(text, None)
        first = time.perf_counter() - start
        min_batch = req["min_batch"]
        number = 1 if first >= min_batch else max(1, int(min_batch / max(first, 1e-9)))
        self.numbers[req["label"]] = number
        return {"first": first, "number": number}

    def batch(self, req: dict[str, Any]) -> dict[str, Any]:
        label, parse = req["label"], self.parser.parse
        text, number = self.texts[label], self.numbers[label]
        gc.collect()
        gc.disable()  # as timeit does, and as bench/timing.py does for ours
        try:
            start = time.perf_counter()
            for _ in range(number):
                parse(text, None)
            return {"time": (time.perf_counter() - start) / number}
        finally:
            gc.enable()


def main() -> int:
    """Answer requests from stdin until it closes."""
    worker = Worker()
    print(json.dumps({"version": shortcodes.__version__, "file": shortcodes.__file__}), flush=True)
    handlers = {"load": worker.load, "calibrate": worker.calibrate, "batch": worker.batch}
    for line in sys.stdin:
        req = json.loads(line)
        print(json.dumps(handlers[req["cmd"]](req)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
