"""Benchmark of the shortcode engine: speed, memory and linearity, printed as one table.

Run from the repository root (or `./dev bench engine`):

    .venv/bin/python bench/engine.py                 # full run, about a minute
    .venv/bin/python bench/engine.py --quick --no-peer   # smoke run, a few seconds
    .venv/bin/python bench/engine.py --json bench/results/engine.json

In one run it times, on seeded membership-page corpora of 10 KB, 100 KB and 1 MB with echo
handlers: our cold `env.render(text)`; `env.compile(text)` once then `Template.render(ctx)`; the
PyPI package `shortcodes` 5.4.0 in its own venv (bench/.peer-venv, created on first use); and
precompiled Jinja2 templates of the same structure. It checks every implementation's output against
the expected page, measures the peak memory of a cold render of the largest corpus, times each
pathological input at n and 4n in a child process (so a crash or hang becomes a FAILURE row), and
prints PASS/FAIL against the targets of issue 2.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import queue
import subprocess
import sys
import tempfile
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import corpus  # bench/*.py: this script's own folder is first on sys.path
from peer import PeerTimer, PeerWorker, peer_python
from timing import LocalTimer, Timer, race

PEER_ROW = "shortcodes 5.4.0: parser.parse"
SIZES = {"10KB": 10 * 1024, "100KB": 100 * 1024, "1MB": 1024 * 1024}
QUICK_SIZES = {"10KB": 10 * 1024, "100KB": 100 * 1024}
HEADER = (
    "corpus   bytes      tags  depth  implementation                      best ms      MB/s"
    "  loops  output"
)
PATHO_HEADER = (
    "pathological input (cold render unless named) n         t(n) ms    t(4n) ms  growth  status"
)


# --- the implementations --------------------------------------------------------------------------


def make_env(enclosing: tuple[str, ...], plain: tuple[str, ...]) -> Any:
    """Our Environment without builtins, with echo handlers under the given names."""
    from markupsafe import Markup

    from shortcodes import Environment

    env = Environment(builtins=False)

    echo_leaf = corpus.echo_leaf

    def echo(sc: Any, ctx: Any) -> Markup:
        return Markup(echo_leaf(sc.name, [str(v) for v in sc.attrs.values()]))  # noqa: S704 - escaped

    def gate(sc: Any, ctx: Any) -> Markup:
        return sc.render_content()  # type: ignore[no-any-return]

    for name in plain:
        env.add_shortcode(name, echo)
    for name in enclosing:
        env.add_shortcode(name, gate, enclosing=True)
    return env


def anonymous_context() -> Any:
    """The context Template.render gets: an anonymous visitor."""
    from shortcodes import Context

    return Context()


def make_jinja() -> Any:
    """A Jinja2 environment (autoescape on) with the echo, call-block and if-gate globals."""
    import jinja2
    from markupsafe import Markup

    env = jinja2.Environment(autoescape=True, keep_trailing_newline=True)

    echo_leaf = corpus.echo_leaf

    def sc(name: str, **attrs: str) -> Markup:
        return Markup(echo_leaf(name, [str(v) for v in attrs.values()]))  # noqa: S704 - escaped

    def sc_block(name: str, caller: Callable[[], Markup], **attrs: str) -> Markup:
        return caller()

    def gate(name: str, **attrs: str) -> bool:
        return True

    env.globals.update(sc=sc, sc_block=sc_block, gate=gate)
    return env


def timing_params(args: argparse.Namespace) -> dict[str, Any]:
    """Repetition settings shared by every measurement (and the peer process)."""
    if args.quick:
        return {"repeat": 1, "min_batch": 0.01, "budget": 0.5}
    return {"repeat": args.repeat, "min_batch": 0.2, "budget": 8.0}


# --- corpus measurements --------------------------------------------------------------------------


def row(
    label: str, text: str, impl: str, timing: dict[str, Any] | None, ok: bool | None, note: str = ""
) -> dict[str, Any]:
    """One table row; MB/s counts the bytes of our syntax so every row divides the same size."""
    size = len(text.encode("utf-8"))
    best = timing["best"] if timing else None
    return {
        "corpus": label,
        "bytes": size,
        "impl": impl,
        "best": best,
        "mbps": size / best / 1e6 if best else None,
        "loops": f"{timing['number']}x{timing['repeat']}" if timing else "",
        "ok": ok,
        "note": note,
    }


def measure_corpus(
    label: str,
    nodes: list[corpus.Node],
    env: Any,
    jinja: Any,
    peer: PeerWorker | None,
    params: dict[str, Any],
) -> list[dict[str, Any]]:
    """Race our cold render, compile, Template.render, both Jinja2 forms and the peer on a page."""
    ours, expected = corpus.to_ours(nodes), corpus.expected_output(nodes)
    ctx = anonymous_context()
    compiled = env.compile(ours)
    call = jinja.from_string(corpus.to_jinja_call(nodes))
    gate = jinja.from_string(corpus.to_jinja_if(nodes))
    timers: dict[str, Timer] = {
        "ours: env.render (cold)": LocalTimer(lambda: env.render(ours)),
        # The Environment memoizes attribute parsing across pages; a new one per call shows what
        # a page costs when none of its attribute texts has been seen before (information).
        "ours: new Environment + render": LocalTimer(
            lambda: make_env(corpus.ENCLOSING, corpus.SELF_CLOSING).render(ours)
        ),
        "ours: env.compile (once)": LocalTimer(lambda: env.compile(ours)),
        "ours: Template.render(ctx)": LocalTimer(lambda: compiled.render(ctx)),
        "jinja2: call blocks (reference)": LocalTimer(call.render),
        "jinja2: if blocks (info)": LocalTimer(gate.render),
    }
    ok: dict[str, bool | None] = {
        "ours: env.render (cold)": str(env.render(ours)) == expected,
        "ours: Template.render(ctx)": str(compiled.render(ctx)) == expected,
        "jinja2: call blocks (reference)": call.render() == expected,
        "jinja2: if blocks (info)": gate.render() == expected,
    }
    if peer is not None:
        with tempfile.TemporaryDirectory() as tmp:
            path, expected_path = Path(tmp) / "peer.txt", Path(tmp) / "expected.txt"
            path.write_text(corpus.to_peer(nodes), encoding="utf-8")
            expected_path.write_text(expected, encoding="utf-8")
            ok[PEER_ROW] = peer.load(label, path, expected_path)
        timers[PEER_ROW] = PeerTimer(peer, label)
    timings = race(timers, **params)
    return [
        row(
            label,
            ours,
            impl,
            timings[impl],
            ok.get(impl),
            "(subprocess)" if impl == PEER_ROW else "",
        )
        for impl in timers
    ]


def first_difference(got: str, want: str) -> str:
    """Where two outputs part, for the note under the table."""
    at = next(
        (i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b),
        min(len(got), len(want)),
    )
    return f"at offset {at}: got {got[at : at + 60]!r}, expected {want[at : at + 60]!r}"


def peak_memory(env: Any, text: str) -> dict[str, Any]:
    """Peak traced allocation of one cold render, as a multiple of the input's size in bytes."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        env.render(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = len(text.encode("utf-8"))
    return {"bytes": size, "peak": peak, "multiple": peak / size}


# --- pathological inputs (timed in a child process) -----------------------------------------------


def patho_child(indices: list[int], quick: bool) -> int:
    """Child mode: time each pathological case at n and 4n, one JSON line per event on stdout."""
    import logging

    logging.disable(logging.CRITICAL)  # typo pairs log each hidden gate; the log is not timed
    env = make_env(("a", "gated"), ("b", "c"))
    from shortcodes.host.pages import MarkdownConverter

    markdown = MarkdownConverter(env)
    run = {"render": env.render, "lint": env.lint, "markdown": markdown.convert}
    params = {"repeat": 1 if quick else 9, "min_batch": 0.01 if quick else 0.1, "budget": 4.0}
    for index in indices:
        case = corpus.PATHOLOGICAL[index]
        print(json.dumps({"event": "start", "index": index}), flush=True)
        n = case.n // 10 if quick else case.n
        result: dict[str, Any] = {"event": "result", "index": index, "n": n}
        try:
            timers: dict[str, Timer] = {}
            step = run[case.kind]
            for key, size in (("t_n", n), ("t_4n", 4 * n)):
                text = case.build(size)
                out = str(step(text))
                if case.identity and out != text:
                    result["changed"] = first_difference(out, text)
                timers[key] = LocalTimer(lambda t=text, f=step: f(t))
            # Raced, so that a busy moment on the shared machine does not fall on one size only.
            result.update({k: v["best"] for k, v in race(timers, **params).items()})
        except Exception as exc:  # a crash is the finding: report it as a row
            result["error"] = f"{type(exc).__name__}: {str(exc)[:120]}"
        print(json.dumps(result), flush=True)
    return 0


def run_pathological(quick: bool, timeout: float) -> list[dict[str, Any]]:
    """Run every case in a child; a child that dies or hangs marks its case and is restarted."""
    pending = list(range(len(corpus.PATHOLOGICAL)))
    results: dict[int, dict[str, Any]] = {}
    while pending:
        results.update(_one_child(pending, quick, timeout))
        pending = [i for i in pending if i not in results]
    cases = corpus.PATHOLOGICAL
    return [
        {"case": cases[i].name, "n": cases[i].n // 10 if quick else cases[i].n, **results[i]}
        for i in sorted(results)
    ]


def _one_child(pending: list[int], quick: bool, timeout: float) -> dict[int, dict[str, Any]]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--patho-child",
        ",".join(map(str, pending)),
    ] + (["--quick"] if quick else [])
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    results: dict[int, dict[str, Any]] = {}
    current: int | None = None
    try:
        while True:
            try:
                line = lines.get(timeout=timeout)
            except queue.Empty:
                child.kill()
                if current is not None:
                    results[current] = {"error": f"TIMEOUT: no result within {timeout:.0f} s"}
                return results
            if line is None:
                break
            event = json.loads(line)
            if event["event"] == "start":
                current = event["index"]
            else:
                results[event["index"]] = event
                current = None
    finally:
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    if current is not None:
        results[current] = {"error": f"CRASH: child exited with code {child.returncode}"}
    elif not results:
        results[pending[0]] = {"error": f"CRASH: child exited with code {child.returncode}"}
    return results


# --- report ---------------------------------------------------------------------------------------


def fmt(value: float | None, spec: str) -> str:
    """A number, or a dash as wide as the number would be when the measurement is missing."""
    if value is None:
        width = spec.split(".")[0]
        return "-".rjust(int(width)) if width.isdigit() else "-"
    return format(value, spec)


def print_corpus_table(rows: list[dict[str, Any]], stats: dict[str, tuple[int, int]]) -> None:
    """The main table: one line per corpus and implementation."""
    print(HEADER)
    print("-" * len(HEADER))
    last = None
    for r in rows:
        if last is not None and r["corpus"] != last:
            print()
        last = r["corpus"]
        tags, depth = stats[r["corpus"]]
        ok = {True: "ok", False: "MISMATCH", None: ""}[r["ok"]]
        print(
            f"{r['corpus']:<8} {r['bytes']:>9,} {tags:>6} {depth:>5}  {r['impl']:<33} "
            f"{fmt(r['best'] and r['best'] * 1e3, '10.3f')} {fmt(r['mbps'], '9.2f')} "
            f"{r['loops']:>6}  {' '.join(x for x in (ok, r['note'].strip()) if x)}"
        )


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per corpus: ours cold vs peer, Template.render vs both Jinja2 forms (>1: ours faster)."""
    by: dict[str, dict[str, float]] = {}
    wrong: dict[str, list[str]] = {}
    for r in rows:
        if r["ok"] is False:
            wrong.setdefault(r["corpus"], []).append(r["impl"])
        if r["best"]:
            by.setdefault(r["corpus"], {})[r["impl"].split(" (")[0]] = r["best"]
    out = []
    for label, t in by.items():
        peer = t.get(PEER_ROW)
        cold, template = t["ours: env.render"], t["ours: Template.render(ctx)"]
        out.append(
            {
                "corpus": label,
                "cold_vs_peer": peer / cold if peer else None,
                "template_vs_jinja_call": t["jinja2: call blocks"] / template,
                "template_vs_jinja_if": t["jinja2: if blocks"] / template,
                "cold_vs_template": cold / template,
                "wrong_output": ", ".join(wrong.get(label, [])),
            }
        )
    return out


def print_ratios(rs: list[dict[str, Any]]) -> None:
    """Speed ratios, always 'how many times faster ours is'."""
    print(
        "\ncorpus   ours cold vs 5.4.0   Template.render vs jinja2 call   vs jinja2 if   "
        "cold / Template.render"
    )
    for r in rs:
        print(
            f"{r['corpus']:<8} {fmt(r['cold_vs_peer'], '17.1f')}x "
            f"{fmt(r['template_vs_jinja_call'], '31.2f')}x "
            f"{fmt(r['template_vs_jinja_if'], '13.2f')}x "
            f"{fmt(r['cold_vs_template'], '22.1f')}x"
            + (f"  (INVALID: wrong output: {r['wrong_output']})" if r["wrong_output"] else "")
        )


def print_pathological(results: list[dict[str, Any]]) -> None:
    """Growth table: t(4n)/t(n) per hostile input, or the failure that stopped it."""
    print("\n" + PATHO_HEADER)
    print("-" * len(PATHO_HEADER))
    for r in results:
        growth = r["t_4n"] / r["t_n"] if "t_4n" in r and r.get("t_n") else None
        r["growth"] = growth
        if "error" in r:
            status = "FAILURE " + r["error"]
        else:
            status = "PASS" if growth is not None and growth <= 4.5 else "FAIL (> 4.5)"
            if "changed" in r:
                status += "; TEXT CHANGED " + r["changed"]
        print(
            f"{r['case']:<40} {r.get('n', 0):>8,} {fmt(r.get('t_n') and r['t_n'] * 1e3, '12.3f')}"
            f" {fmt(r.get('t_4n') and r['t_4n'] * 1e3, '11.3f')} {fmt(growth, '7.2f')}  {status}"
        )


def targets(
    rs: list[dict[str, Any]], mem: dict[str, Any], patho: list[dict[str, Any]], label: str
) -> list[dict[str, Any]]:
    """PASS/FAIL/SKIP against the four targets of issue 2, on the largest corpus measured."""
    big = next(r for r in rs if r["corpus"] == label)
    out = []
    peer = big["cold_vs_peer"]
    out.append(
        {
            "target": f"cold {label} >= 10x faster than shortcodes 5.4.0",
            "value": peer,
            "status": "SKIP" if peer is None else ("PASS" if peer >= 10 else "FAIL"),
        }
    )
    tj = big["template_vs_jinja_call"]
    out.append(
        {
            "target": f"Template.render {label} >= 1.0x precompiled Jinja2 (call blocks)",
            "value": tj,
            "status": "PASS" if tj >= 1.0 else "FAIL",
        }
    )
    wrong = big.get("wrong_output")
    for verdict in out:
        if wrong and verdict["status"] != "SKIP":
            # A speed measured on the wrong output proves nothing: the target is not met.
            verdict.update(status="FAIL", detail="our output was wrong: " + wrong)
    bad = [r for r in patho if "error" in r or r["growth"] is None or r["growth"] > 4.5]
    worst = max((r["growth"] for r in patho if r.get("growth")), default=None)
    out.append(
        {
            "target": "growth t(4n)/t(n) <= 4.5 and no crash on every pathological input",
            "value": worst,
            "status": "FAIL" if bad else "PASS",
            "detail": ", ".join(r["case"] for r in bad),
        }
    )
    out.append(
        {
            "target": f"peak memory of cold {label} render < 10x input",
            "value": mem["multiple"],
            "status": "PASS" if mem["multiple"] < 10 else "FAIL",
        }
    )
    if wrong and "env.render" in wrong:
        out[-1].update(status="FAIL", detail="measured on a render with wrong output")
    return out


def print_targets(ts: list[dict[str, Any]], quick: bool) -> None:
    """The verdicts, one line each."""
    print("\nTargets" + (" (quick run: small inputs, indicative only)" if quick else ""))
    for t in ts:
        detail = f"  [{t['detail']}]" if t.get("detail") else ""
        print(f"  {t['status']:<4}  {t['target']}: {fmt(t['value'], '.2f')}{detail}")


# --- main -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="10 KB and 100 KB only, 1 repetition, n/10")
    p.add_argument("--json", metavar="PATH", help="also write every figure to this JSON file")
    p.add_argument("--no-peer", action="store_true", help="do not run shortcodes 5.4.0")
    p.add_argument("--peer-python", metavar="PY", help="interpreter that has shortcodes 5.4.0")
    p.add_argument("--repeat", type=int, default=7, help="best of this many batches (default 7)")
    p.add_argument("--seed", type=int, default=20261122, help="corpus seed")
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds one pathological case may take (default 120, quick 30)",
    )
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is not met")
    p.add_argument(
        "--pathological-only",
        action="store_true",
        help="time only the pathological inputs (render, lint and Markdown growth)",
    )
    p.add_argument("--patho-child", metavar="INDICES", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def measure_all(args: argparse.Namespace) -> dict[str, Any]:
    """Every corpus measurement (peer included), memory and the pathological table."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    sizes = QUICK_SIZES if args.quick else SIZES
    env = make_env(corpus.ENCLOSING, corpus.SELF_CLOSING)
    jinja, params = make_jinja(), timing_params(args)
    pages = {label: corpus.generate(size, args.seed) for label, size in sizes.items()}
    stats = {label: corpus.stats(nodes) for label, nodes in pages.items()}
    python, why = peer_python(args.no_peer, args.peer_python, may_create=not args.quick)
    peer = PeerWorker(python) if python is not None else None
    rows: list[dict[str, Any]] = []
    try:
        for label, nodes in pages.items():
            print(f"racing ours, jinja2 and the peer on {label} ...", file=sys.stderr)
            rows.extend(measure_corpus(label, nodes, env, jinja, peer, params))
    finally:
        if peer is not None:
            peer.close()
    rows = _merge(rows, why, pages)
    largest = list(pages)[-1]
    print(f"measuring peak memory on {largest} ...", file=sys.stderr)
    mem = peak_memory(env, corpus.to_ours(pages[largest]))
    print("timing pathological inputs in a child process ...", file=sys.stderr)
    timeout = args.timeout or (30.0 if args.quick else 120.0)
    patho = run_pathological(args.quick, timeout)
    notes = [
        f"{r['corpus']} {r['impl']}: " + first_difference(*_outputs(r, pages, env, jinja))
        for r in rows
        if r["ok"] is False and r["impl"] != PEER_ROW
    ]
    return {
        "rows": rows,
        "stats": stats,
        "mem": mem,
        "patho": patho,
        "largest": largest,
        "peer": why or f"{python} ({peer.file if peer else ''})",
        "notes": notes,
        "load": load,
    }


def _merge(
    rows: list[dict[str, Any]], why: str, pages: dict[str, list[corpus.Node]]
) -> list[dict[str, Any]]:
    """Add a 'skipped' peer row for each corpus when the peer did not run."""
    if not why:
        return rows
    merged = []
    for label, nodes in pages.items():
        merged.extend(r for r in rows if r["corpus"] == label)
        merged.append(row(label, corpus.to_ours(nodes), PEER_ROW, None, None, why))
    return merged


def _outputs(
    r: dict[str, Any], pages: dict[str, list[corpus.Node]], env: Any, jinja: Any
) -> tuple[str, str]:
    nodes = pages[r["corpus"]]
    expected = corpus.expected_output(nodes)
    if r["impl"].startswith("jinja2: call"):
        return jinja.from_string(corpus.to_jinja_call(nodes)).render(), expected
    if r["impl"].startswith("jinja2: if"):
        return jinja.from_string(corpus.to_jinja_if(nodes)).render(), expected
    return str(env.render(corpus.to_ours(nodes))), expected


def report(m: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Print everything; return the target verdicts."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\nshortcodes engine benchmark - Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load {m['load']:.2f} at start / {load:.2f} at end, "
        f"seed {args.seed}, {'quick' if args.quick else 'full'} run; "
        "best per-call time, GC off while timing"
    )
    print(f"peer: {m['peer']}\n")
    print_corpus_table(m["rows"], m["stats"])
    for note in m["notes"]:
        print("  MISMATCH " + note)
    rs = ratios(m["rows"])
    print_ratios(rs)
    mem = m["mem"]
    print(
        f"\npeak memory, cold render of {m['largest']} ({mem['bytes']:,} bytes): "
        f"{mem['peak'] / 1e6:.1f} MB = {mem['multiple']:.2f}x input (tracemalloc)"
    )
    print_pathological(m["patho"])
    ts = targets(rs, mem, m["patho"], m["largest"])
    print_targets(ts, args.quick)
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {
                    "args": vars(args),
                    "rows": m["rows"],
                    "ratios": rs,
                    "memory": mem,
                    "pathological": m["patho"],
                    "targets": ts,
                    "peer": m["peer"],
                },
                indent=2,
            ),
            encoding="utf-8",
        )
    return ts


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 0 unless --strict and a target failed."""
    args = parse_args(argv)
    if args.patho_child is not None:
        return patho_child([int(i) for i in args.patho_child.split(",")], args.quick)
    if args.pathological_only:
        patho = run_pathological(args.quick, args.timeout or (30.0 if args.quick else 120.0))
        print_pathological(patho)
        bad = [r for r in patho if "error" in r or r["growth"] is None or r["growth"] > 4.5]
        return 1 if args.strict and bad else 0
    ts = report(measure_all(args), args)
    return 1 if args.strict and any(t["status"] == "FAIL" for t in ts) else 0


if __name__ == "__main__":
    sys.exit(main())
