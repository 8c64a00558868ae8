"""Benchmark of the host: the personalized catalog page over HTTP, shortcodes vs a plain Jinja2 view.

Run from the repository root (or `./dev bench server`):

    .venv/bin/python bench/server.py                       # 3 rounds of 8 s per variant
    .venv/bin/python bench/server.py --duration 3 --rounds 1   # quick look
    .venv/bin/python bench/server.py --json bench/results/server.json

One gunicorn (2 gthread workers, loopback) serves both variants from the same app, on the demo
site and a fresh seeded SQLite database (``--database-url`` for PostgreSQL):

* ``shortcodes``: ``GET /catalog`` -- the real page: compiled shortcode page, six ``creditbutton``
  template shortcodes, signed action tokens, theme layout;
* ``plain``: ``GET /plain/catalog`` -- the same HTML from one precompiled Jinja2 template with the
  branches computed in Python (``bench/plain_catalog.py``), sharing session, store read, CSRF,
  signer and layout.

Before timing, both pages are fetched for every contact and compared (tokens masked): the rows
measure the same page. Clients are keep-alive HTTP connections spread over processes, each logged
in as one of four demo contacts (owner, affordable, poor, all-access), so every branch is served.
Variants alternate round by round; requests/s is the median round, latencies pool all rounds.
Target (issue 5): shortcodes >= 0.8x the plain view's requests/s.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"plain": "/plain/catalog", "shortcodes": "/catalog"}
CONTACTS = {
    "owner@example.com": "owner-pass",
    "rich@example.com": "rich-pass",
    "poor@example.com": "poor-pass",
    "member@example.com": "member-pass",
}
TARGET = 0.8


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    port: int, instance: Path, database_url: str, workers: int
) -> subprocess.Popen[bytes]:
    """gunicorn serving the host app with the plain view added."""
    env = {
        **os.environ,
        "SHORTCODES_INSTANCE_PATH": str(instance),
        "SHORTCODES_SECRET_KEY": "bench-secret",
        "SHORTCODES_DATABASE_URL": database_url,
    }
    command = [
        sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
        "--worker-class", "gthread", "--threads", "4", "--pythonpath", str(ROOT / "bench"),
        "--log-level", "warning", "plain_catalog:create()",
    ]  # fmt: skip
    log = (instance / "gunicorn.log").open("wb")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit((instance / "gunicorn.log").read_text())
        try:
            status, _, _ = fetch(port, "/theme/style.css", "")
            if status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not start")


def fetch(
    port: int, path: str, cookie: str, body: dict[str, str] | None = None
) -> tuple[int, Any, str]:
    """One request on a new connection: status, headers, text."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Cookie": cookie} if cookie else {}
        if body is None:
            conn.request("GET", path, headers=headers)
        else:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request("POST", path, urllib.parse.urlencode(body), headers)
        response = conn.getresponse()
        return response.status, response.headers, response.read().decode()
    finally:
        conn.close()


def login(port: int, email: str, password: str) -> str:
    """The session cookie of ``email`` after logging in through the form."""
    _, headers, html = fetch(port, "/login", "")
    cookie = headers["Set-Cookie"].split(";")[0]
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token is not None
    body = {"email": email, "password": password, "csrf_token": token.group(1)}
    status, headers, _ = fetch(port, "/login", cookie, body)
    assert status == 303, f"login of {email} failed: {status}"
    return str(headers["Set-Cookie"].split(";")[0])


def article(html: str) -> str:
    """The page body with the per-request values (CSRF and action tokens) masked."""
    html = re.sub(r'value="[A-Za-z0-9_.\-]{30,}"', 'value="TOKEN"', html)
    found = BeautifulSoup(html, "html.parser").select_one("article")
    assert found is not None
    return found.prettify()


def check_same_page(port: int, cookies: dict[str, str]) -> None:
    """Both variants must serve the same page to every contact."""
    for email, cookie in cookies.items():
        pages = {name: fetch(port, path, cookie) for name, path in VARIANTS.items()}
        assert all(status == 200 for status, _, _ in pages.values()), email
        plain, ours = (article(pages[n][2]) for n in ("plain", "shortcodes"))
        if plain != ours:
            raise SystemExit(f"the two variants differ for {email}:\n{plain}\n---\n{ours}")


def _client(port: int, path: str, cookie: str, until: float, out: list[float]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Cookie": cookie}
    while time.perf_counter() < until:
        start = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status}")
        out.append(time.perf_counter() - start)
    conn.close()


def load_process(args: tuple[int, str, list[str], float, float]) -> list[float]:
    """One client process: a keep-alive connection per cookie, run until ``until``."""
    port, path, cookies, start_at, duration = args
    while time.time() < start_at:
        time.sleep(0.001)
    until = time.perf_counter() + duration
    results: list[list[float]] = [[] for _ in cookies]
    threads = [
        threading.Thread(target=_client, args=(port, path, c, until, results[i]))
        for i, c in enumerate(cookies)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [t for r in results for t in r]


def run_round(
    pool: Any, port: int, path: str, cookies: list[str], processes: int, duration: float
) -> list[float]:
    """All client processes hit ``path`` together for ``duration`` seconds; every latency."""
    start_at = time.time() + 0.3
    shares = [cookies[i::processes] for i in range(processes)]
    jobs = [(port, path, share, start_at, duration) for share in shares if share]
    return [t for part in pool.map(load_process, jobs) for t in part]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the report; exit 1 if the target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per variant")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive client connections")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--database-url", default="", help="default: SQLite in a temp folder")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    instance = Path(tempfile.mkdtemp(prefix="bench-server-"))
    database_url = args.database_url or f"sqlite:///{instance / 'shortcodes.db'}"
    port = free_port()
    server = start_server(port, instance, database_url, args.workers)
    try:
        logins = {email: login(port, email, pw) for email, pw in CONTACTS.items()}
        check_same_page(port, logins)
        cookies = [list(logins.values())[i % len(logins)] for i in range(args.connections)]
        latencies: dict[str, list[float]] = {name: [] for name in VARIANTS}
        rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
        with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
            for path in VARIANTS.values():  # warm-up: compile pages, fill pools
                run_round(pool, port, path, cookies, args.processes, 1.0)
            for _ in range(args.rounds):
                for name, path in VARIANTS.items():
                    done = run_round(pool, port, path, cookies, args.processes, args.duration)
                    latencies[name].extend(done)
                    rates[name].append(len(done) / args.duration)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(instance, ignore_errors=True)
    return report(args, database_url, rates, latencies)


def report(
    args: Any, database_url: str, rates: dict[str, list[float]], latencies: dict[str, list[float]]
) -> int:
    """Print the table and verdict; write JSON if asked."""
    rows = {}
    print(f"host benchmark: gunicorn {args.workers} gthread workers x 4 threads, loopback, "
          f"{args.connections} keep-alive clients in {args.processes} processes, "
          f"{args.rounds} x {args.duration:g} s per variant, {database_url.split(':')[0]}")  # fmt: skip
    print(f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores")
    print(f"{'variant':<12}{'requests':>10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name in VARIANTS:
        values = latencies[name]
        rows[name] = {
            "requests": len(values),
            "rps": statistics.median(rates[name]),
            "rps_rounds": rates[name],
            "p50_ms": percentile(values, 50) * 1000,
            "p99_ms": percentile(values, 99) * 1000,
        }
        r = rows[name]
        print(
            f"{name:<12}{r['requests']:>10}{r['rps']:>10.1f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}"
        )
    ratio = rows["shortcodes"]["rps"] / rows["plain"]["rps"]
    verdict = "PASS" if ratio >= TARGET else "FAIL"
    print(f"shortcodes / plain = {ratio:.2f}x (target >= {TARGET}x): {verdict}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "ratio": ratio, "target": TARGET}, indent=2))
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
