"""Benchmark companion: where the engine's time goes, by function, on the benchmark's own inputs.

    .venv/bin/python bench/profile_engine.py                       # cold render of the 1 MB corpus
    .venv/bin/python bench/profile_engine.py --what template       # Template.render of it
    .venv/bin/python bench/profile_engine.py --what compile --size 100KB
    .venv/bin/python bench/profile_engine.py --patho "unclosed plain tags [b]" --n 20000

Runs cProfile over a few calls and prints the functions with the largest own time (tottime) and
the largest cumulative time, each with its share of the total, grouped by module so it reads as
"this much in Lark's lexer, this much in our tree builder, this much in attribute parsing".
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import corpus
import engine


def workload(args: argparse.Namespace) -> Callable[[], object]:
    """The call to profile, built from the same corpus and handlers as bench/engine.py."""
    if args.patho:
        case = next(c for c in corpus.PATHOLOGICAL if c.name == args.patho)
        env = engine.make_env(("a",), ("b", "c"))
        text = case.build(args.n or case.n)
        return lambda: env.render(text)
    env = engine.make_env(corpus.ENCLOSING, corpus.SELF_CLOSING)
    text = corpus.to_ours(corpus.generate(engine.SIZES[args.size], args.seed))
    if args.what == "cold":
        return lambda: env.render(text)
    if args.what == "compile":
        return lambda: env.compile(text)
    compiled, ctx = env.compile(text), engine.anonymous_context()
    return lambda: compiled.render(ctx)


def _where(func: tuple[str, int, str]) -> str:
    filename, line, name = func
    for marker in ("site-packages/", "/shortcodes/", "/bench/"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    return f"{filename}:{line}({name})"


def report(stats: pstats.Stats, top: int) -> None:
    """Top functions by own and cumulative time, then own time summed per module."""
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())
    print(f"total profiled time {total * 1e3:.1f} ms (own times sum)\n")
    for title, index in (("own time (tottime)", 2), ("cumulative time", 3)):
        print(f"top {top} by {title}:")
        rows = sorted(raw.items(), key=lambda kv: kv[1][index], reverse=True)[:top]
        for func, (_, calls, tt, ct, _) in rows:
            value = tt if index == 2 else ct
            print(f"  {value / total:6.1%} {value * 1e3:9.1f} ms {calls:>9,} calls  {_where(func)}")
        print()
    per_module: dict[str, float] = defaultdict(float)
    for func, (_, _, tt, _, _) in raw.items():
        per_module[_where(func).split(":")[0]] += tt
    print("own time per module:")
    for module, tt in sorted(per_module.items(), key=lambda kv: kv[1], reverse=True)[:top]:
        print(f"  {tt / total:6.1%} {tt * 1e3:9.1f} ms  {module}")


def main(argv: list[str] | None = None) -> int:
    """Profile the chosen workload and print the report."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--what", choices=("cold", "compile", "template"), default="cold")
    p.add_argument("--size", choices=tuple(engine.SIZES), default="1MB")
    p.add_argument("--seed", type=int, default=20261122)
    p.add_argument("--patho", metavar="CASE", help="profile a pathological case by its name")
    p.add_argument("--n", type=int, default=0, help="size for --patho (default: its base n)")
    p.add_argument("--calls", type=int, default=3)
    p.add_argument("--top", type=int, default=20)
    args = p.parse_args(argv)
    fn = workload(args)
    fn()  # warm caches (grammar load, compiled regexes) outside the profile
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.calls):
        fn()
    profiler.disable()
    report(pstats.Stats(profiler), args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
