"""Sites in sync: running sites (a real server process each), signed posts, their workers.

The site-to-site tests and the sync tutorial's scenario run two sites on loopback: each a
``python server.py --no-worker`` process on its own SQLite database, with its worker run as a
process (``python -m shortcodes worker --until-idle``) when the test says so, as production does.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from shortcodes.membership.signing import signed_headers
from shortcodes.store import Store
from shortcodes.store import schema as db
from tests.support.live_server import LiveServer
from tests.support.paths import ROOT


def post_signed(url: str, body: dict[str, object], secret: str) -> tuple[int, dict[str, object]]:
    """POST ``body`` as JSON signed with ``secret``; (HTTP status, JSON answer)."""
    raw = json.dumps(body).encode()
    headers = {**signed_headers(secret, raw), "Content-Type": "application/json"}
    req = urllib.request.Request(url, data=raw, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=30) as answer:  # noqa: S310 - loopback
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


@dataclass
class Site:
    """One running site: its name, folder, webhook secret, database, instance folder, server."""

    name: str
    folder: Path
    secret: str
    db: str
    instance: Path
    server: LiveServer

    def post(self, hook: str, body: dict[str, object]) -> dict[str, object]:
        """POST a webhook signed with this site's secret; its JSON answer (200 expected)."""
        status, answer = post_signed(f"{self.server.url}/hooks/{hook}", body, self.secret)
        assert status == 200, answer
        return answer

    def work(self) -> None:
        """Run this site's worker process until nothing is left to do."""
        proc = subprocess.run(
            [sys.executable, "-m", "shortcodes", "worker", "--until-idle", "--poll", "0.1",
             "--database-url", self.db, "--site", str(self.folder), "--instance",
             str(self.instance)],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr

    def store(self) -> Store:
        """A store on this site's database."""
        return Store.from_url(self.db)

    def sync_webhooks(self) -> list[object]:
        """This site's queued sync deliveries: (status, url, body), oldest first."""
        o = db.outbox
        with self.store() as store, store.engine.connect() as conn:
            query = select(o.c.status, o.c.payload).where(o.c.kind == "webhook").order_by(o.c.id)
            rows = conn.execute(query)
            return [
                (r.status, r.payload["url"], r.payload["body"]) for r in rows if "peer" in r.payload
            ]


def serve(name: str, folder: Path, secret: str, tmp: Path, port: int) -> Site:
    """Start site ``name`` from ``folder`` on ``port`` with a fresh SQLite database (the test
    runs its worker); stop it with ``site.server.__exit__``."""
    instance = tmp / f"instance-{name}"
    url = f"sqlite:///{instance / 'shortcodes.db'}"
    server = LiveServer(instance, url, site_dir=folder, port=port, args=["--no-worker"])
    server.__enter__()
    return Site(name, folder, secret, url, instance, server)
