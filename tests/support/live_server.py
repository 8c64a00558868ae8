"""Real server processes for host tests: start one on a free loopback port.

``LiveServer`` runs ``python server.py`` (Flask's threaded server) or gunicorn with several
workers, with the instance folder, database and secret passed through the environment exactly as
an operator would. Talk to it with ``tests.support.visitors.HttpVisitor``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.paths import ROOT, SITE


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    """A server process serving the demo site; use as a context manager."""

    instance: Path
    database_url: str
    site_dir: Path = SITE
    gunicorn_workers: int = 0  # 0: python server.py (or flask run); N: gunicorn with N workers
    flask_cli: bool = False  # True: ``flask --app server run`` instead of ``python server.py``
    threads: int = 8
    secret: str = "live-server-test-secret"
    port: int = field(default_factory=free_port)
    log: Path | None = None
    #: More environment for the server (``SHORTCODES_STRIPE_*``, say).
    env: dict[str, str] = field(default_factory=dict)
    #: More arguments for ``python server.py`` (``--no-worker``, say).
    args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The command line that starts the server."""
        if self.flask_cli:
            return [
                sys.executable,
                "-m",
                "flask",
                "--app",
                "server",
                "run",
                "--port",
                str(self.port),
            ]
        if not self.gunicorn_workers:
            return [sys.executable, "server.py", "--port", str(self.port), *self.args]
        return [
            sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(self.gunicorn_workers), "--threads", str(self.threads),
            "--worker-class", "gthread", "--graceful-timeout", "2", "server:create_app()",
        ]  # fmt: skip

    def __enter__(self) -> LiveServer:
        env = {
            **os.environ,
            "SHORTCODES_INSTANCE_PATH": str(self.instance),
            "SHORTCODES_SITE_DIR": str(self.site_dir),
            "SHORTCODES_SECRET_KEY": self.secret,
            "SHORTCODES_DATABASE_URL": self.database_url,
            "PYTHONUNBUFFERED": "1",
            **self.env,
        }
        self.log = self.instance / f"server-{self.port}.log"
        self.instance.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                self.command(), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until the server answers on its port (or fail with its log)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.read_log()}")
            try:
                probe = self.url + "/theme/style.css"
                with urllib.request.urlopen(probe, timeout=2) as response:  # noqa: S310 - loopback
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        raise RuntimeError(f"server did not start in {timeout}s:\n{self.read_log()}")

    def read_log(self) -> str:
        """What the server printed so far."""
        return self.log.read_text(errors="replace") if self.log and self.log.exists() else ""

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
