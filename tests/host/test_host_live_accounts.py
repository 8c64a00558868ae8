"""Accounts against a real server process (``python server.py``, what ``./dev serve`` runs): a
stranger signs up, the in-process automation worker writes the verification email to the
instance outbox, the link logs them in, and a cookie copied before logout is refused after it.
On SQLite and PostgreSQL."""

from __future__ import annotations

import email
import http.cookiejar
import re
import time
from pathlib import Path

import pytest

from shortcodes.store.facade import Store
from tests.support.live_server import LiveServer
from tests.support.visitors import HttpVisitor

pytestmark = pytest.mark.slow


def wait_for_mail(outbox: Path, to: str, timeout: float = 60.0) -> email.message.Message:
    """The first ``.eml`` the server's own worker wrote to ``to`` (polling: delivery is async)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(outbox.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes())
            if message["To"] == to:
                return message
        time.sleep(0.2)
    raise AssertionError(f"no email to {to} in {outbox} after {timeout}s")


def link_path(message: email.message.Message) -> str:
    """The site path of the one link in an account email."""
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    (url,) = re.findall(r"https?://\S+", payload.decode())
    return re.sub(r"^https?://[^/]+", "", url)


def confirm(visitor: HttpVisitor, path: str) -> int:
    """Open an emailed confirm link and press its button; the status of the POST."""
    page = visitor.request(path)
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token is not None, page.text
    form = {"token": token.group(1), "csrf_token": visitor.csrf()}
    return visitor.request(path.split("?")[0], form).status


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new database of each kind for the server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'instance' / 'shortcodes.db'}"
    return str(request.getfixturevalue("pg_database"))


def test_a_stranger_joins_through_the_emailed_link_and_leaves_for_real(
    tmp_path: Path, database: str
) -> None:
    instance = tmp_path / "instance"
    with LiveServer(instance, database) as server:
        nina = HttpVisitor(server.url)
        nina.request("/signup")
        form = {"name": "Nina", "email": "nina@example.com", "password": "nina-pass-1",
                "csrf_token": nina.csrf()}  # fmt: skip
        assert nina.request("/signup", form).status == 200
        mail = wait_for_mail(instance / "outbox", "nina@example.com")
        assert confirm(nina, link_path(mail)) == 303
        assert nina.request("/account").status == 200
        stolen = [(c.name, c.value) for c in nina.jar]
        nina.request("/")
        assert nina.request("/logout", {"csrf_token": nina.csrf()}).status == 303
        thief = HttpVisitor(server.url)
        for name, value in stolen:
            thief.jar.set_cookie(_cookie(name, value))
        assert thief.request("/account").status == 302
    with Store.from_url(database) as store:
        assert store.get_contact("nina@example.com").field("Name") == "Nina"
        assert store.accounts().session_count(store.contact_id("nina@example.com")) == 0


def _cookie(name: str, value: str) -> http.cookiejar.Cookie:
    """A cookie for the server's host, as the browser kept it."""
    return http.cookiejar.Cookie(
        0, name, value, None, False, "127.0.0.1", False, False, "/", True, False, None, True,
        None, None, {},
    )  # fmt: skip
