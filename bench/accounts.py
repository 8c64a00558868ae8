"""Benchmark of the account forms and the server-side session check (Flask test client, in process).

Run from the repository root (or `./dev bench accounts`):

    .venv/bin/python bench/accounts.py                 # 30 requests of each kind
    .venv/bin/python bench/accounts.py --requests 10   # quick look
    .venv/bin/python bench/accounts.py --json bench/results/accounts.json

Rows, each the median of interleaved requests (so drift hits both sides alike):

* ``reset``: ``POST /reset`` for an email with an account vs one without. The two must take
  about the same time, or the answer's timing would say who is a member: the ratio should be
  close to 1.0.
* ``signup``: ``POST /signup`` for a new email vs one that has an account (the second hashes the
  password too, for the same reason).
* ``session``: the server-side session check (one primary-key read) against a whole ``GET
  /catalog`` for a logged-in contact: its share of a page view.

The demo site is copied with its account-mail limits raised, so the limit never answers instead.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flask import Flask  # noqa: E402
from flask.testing import FlaskClient  # noqa: E402

from shortcodes.host import create_app  # noqa: E402

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_app(folder: Path) -> Flask:
    """The demo site on a fresh database in ``folder``, account-mail limits out of the way."""
    site = folder / "site"
    shutil.copytree(ROOT / "site", site)
    toml = site / "site.toml"
    text = toml.read_text(encoding="utf-8")
    text = text.replace("max_emails_per_email = 3", "max_emails_per_email = 1000000")
    text = text.replace("max_emails_per_address = 10", "max_emails_per_address = 1000000")
    toml.write_text(text, encoding="utf-8")
    instance = folder / "instance"
    return create_app({
        "SITE_DIR": site, "INSTANCE_PATH": instance, "SECRET_KEY": "bench",
        "DATABASE_URL": f"sqlite:///{instance / 'shortcodes.db'}",
    })  # fmt: skip


def csrf(client: FlaskClient, url: str) -> str:
    """The CSRF token of the form at ``url``."""
    found = _CSRF.search(client.get(url).get_data(as_text=True))
    assert found, url
    return found.group(1)


def timed(action: Callable[[], Any]) -> float:
    """Seconds one call takes."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def pair(n: int, first: Callable[[int], Any], second: Callable[[int], Any]) -> tuple[float, float]:
    """Median seconds of ``first`` and ``second``, called alternately ``n`` times each."""
    a, b = [], []
    for i in range(n):
        a.append(timed(lambda i=i: first(i)))
        b.append(timed(lambda i=i: second(i)))
    return statistics.median(a), statistics.median(b)


def bench_reset(app: Flask, n: int) -> dict[str, float]:
    """``POST /reset``: known email vs unknown email."""
    client = app.test_client()
    token = csrf(client, "/reset")

    def post(email: str) -> None:
        response = client.post("/reset", data={"email": email, "csrf_token": token})
        assert response.status_code == 200, response.status_code

    known, unknown = pair(n, lambda i: post("rich@example.com"),
                          lambda i: post(f"nobody{i}@example.com"))  # fmt: skip
    return {"known_ms": known * 1e3, "unknown_ms": unknown * 1e3, "ratio": unknown / known}


def bench_signup(app: Flask, n: int) -> dict[str, float]:
    """``POST /signup``: a new email vs one that has an account."""
    client = app.test_client()
    token = csrf(client, "/signup")

    def post(email: str) -> None:
        form = {"name": "Bench", "email": email, "password": "bench-pass-1", "csrf_token": token}
        response = client.post("/signup", data=form)
        assert response.status_code == 200, response.status_code

    new, existing = pair(n, lambda i: post(f"new{i}@example.com"),
                         lambda i: post("rich@example.com"))  # fmt: skip
    return {"new_ms": new * 1e3, "existing_ms": existing * 1e3, "ratio": existing / new}


def bench_session(app: Flask, n: int) -> dict[str, float]:
    """The session read alone vs a whole logged-in ``GET /catalog``."""
    client = app.test_client()
    form = {
        "email": "rich@example.com",
        "password": "rich-pass",
        "csrf_token": csrf(client, "/login"),
    }
    assert client.post("/login", data=form).status_code == 303
    with client.session_transaction() as session:
        token = session["sid"]
    accounts = app.extensions["shortcodes"].store.accounts()
    read, page = pair(n, lambda i: accounts.session_contact(token),
                      lambda i: client.get("/catalog"))  # fmt: skip
    return {"read_ms": read * 1e3, "page_ms": page * 1e3, "share": read / page}


def main(argv: list[str] | None = None) -> int:
    """Run every row and print the table (and JSON when asked)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=30, help="requests of each kind")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(Path(tmp))
        rows = {
            "reset": bench_reset(app, args.requests),
            "signup": bench_signup(app, args.requests),
            "session": bench_session(app, args.requests),
        }
        app.extensions["shortcodes"].store.close()
    r, s, x = rows["reset"], rows["signup"], rows["session"]
    print(f"reset    known {r['known_ms']:7.2f} ms   unknown  {r['unknown_ms']:7.2f} ms"
          f"   ratio {r['ratio']:.2f}  (1.0: timing says nothing)")  # fmt: skip
    print(f"signup   new   {s['new_ms']:7.2f} ms   existing {s['existing_ms']:7.2f} ms"
          f"   ratio {s['ratio']:.2f}  (1.0: timing says nothing)")  # fmt: skip
    print(f"session  read  {x['read_ms']:7.3f} ms   /catalog {x['page_ms']:7.2f} ms"
          f"   share {x['share']:.1%} of a page view")  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
