"""Benchmark timing: timeit-style best-of-N batches, raced round-robin between implementations.

The machine the benchmark runs on is shared, so its load changes during a run. Timing one
implementation after another lets a busy minute land on one of them and skew the ratio; racing
them (one batch of each, in turn, N times, keeping each one's best batch) gives every
implementation the same quiet moments. A timer is anything with ``calibrate`` and ``batch``:
:class:`LocalTimer` runs a function here, ``peer.PeerTimer`` asks the peer's own process.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol


class Timer(Protocol):
    """One thing to time."""

    number: int

    def calibrate(self, min_batch: float) -> float:
        """Run once (warm-up), pick ``number`` calls per batch, return the first call's time."""
        ...

    def batch(self) -> float:
        """Run one batch of ``number`` calls; return the time per call in seconds."""
        ...


class LocalTimer:
    """Times ``fn()`` in this process; GC is off inside a batch, as timeit does."""

    def __init__(self, fn: Callable[[], object]) -> None:
        self.fn = fn
        self.number = 1

    def calibrate(self, min_batch: float) -> float:
        """Warm up once and size a batch to last at least ``min_batch`` seconds."""
        start = time.perf_counter()
        self.fn()
        first = time.perf_counter() - start
        self.number = 1 if first >= min_batch else max(1, int(min_batch / max(first, 1e-9)))
        return first

    def batch(self) -> float:
        """One batch; garbage from earlier batches is collected before the clock starts."""
        fn, number = self.fn, self.number
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            for _ in range(number):
                fn()
            return (time.perf_counter() - start) / number
        finally:
            gc.enable()


def race(
    timers: Mapping[str, Timer], repeat: int, min_batch: float, budget: float
) -> dict[str, dict[str, Any]]:
    """Best per-call time of each timer over up to ``repeat`` interleaved rounds.

    A timer whose batch is slow gets fewer rounds so that it spends about ``budget`` seconds.
    """
    rounds: dict[str, int] = {}
    for name, timer in timers.items():
        first = timer.calibrate(min_batch)
        rounds[name] = max(1, min(repeat, int(budget / max(first * timer.number, 1e-9))))
    best = dict.fromkeys(timers, float("inf"))
    for index in range(max(rounds.values(), default=0)):
        for name, timer in timers.items():
            if index < rounds[name]:
                best[name] = min(best[name], timer.batch())
    return {
        name: {"best": best[name], "number": timers[name].number, "repeat": rounds[name]}
        for name in timers
    }


def best_of(
    fn: Callable[[], object], repeat: int, min_batch: float, budget: float
) -> dict[str, Any]:
    """timeit-style best per-call time of one function."""
    return race({"fn": LocalTimer(fn)}, repeat, min_batch, budget)["fn"]
