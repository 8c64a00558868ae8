"""A real localstripe process for end-to-end payment tests, on a free loopback port.

See ``tests/support/localstripe_server.py`` for what runs. Use as a context manager; ``api``
is the base URL to give ``SHORTCODES_STRIPE_API_BASE`` and ``stripe.StripeClient``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import stripe

from tests.support.live_server import free_port
from tests.support.paths import ROOT

API_KEY = "sk_test_localstripe"
SCRIPT = ROOT / "tests" / "support" / "localstripe_server.py"


@dataclass
class LocalStripe:
    """A localstripe server process; its log goes to ``folder``."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def api(self) -> str:
        """The API base URL."""
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> stripe.StripeClient:
        """A ``stripe`` client pointed at this server."""
        return stripe.StripeClient(API_KEY, base_addresses={"api": self.api})

    def __enter__(self) -> LocalStripe:
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / "localstripe.log").open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(SCRIPT), "--port", str(self.port)],
                cwd=self.folder,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"localstripe exited early:\n{self.log()}")
            try:
                self.sessions()
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        raise RuntimeError(f"localstripe did not start in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        """What the server printed so far."""
        path = self.folder / "localstripe.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def send_webhooks_to(self, url: str, secret: str) -> None:
        """Configure localstripe's webhook endpoint (its ``_config`` API): every event it
        creates is POSTed to ``url``, signed with ``secret`` as Stripe signs."""
        data = urllib.parse.urlencode({"url": url, "secret": secret}).encode()
        address = f"{self.api}/_config/webhooks/shortcodes"
        request = urllib.request.Request(address, data=data)  # noqa: S310 - loopback http
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            assert response.status == 200

    def sessions(self) -> list[dict[str, Any]]:
        """The Checkout and portal session requests received so far."""
        with urllib.request.urlopen(f"{self.api}/_config/test/sessions", timeout=2) as response:  # noqa: S310
            found: list[dict[str, Any]] = json.load(response)
        return found

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
