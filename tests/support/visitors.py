"""Browser-like visitors: they read the CSRF token and the action buttons off the last page they
got and send them back, the way a browser submits a form.

``Visitor`` drives a Flask test client; ``HttpVisitor`` speaks HTTP to a real server process
(a cookie-keeping client on the standard library that does not follow redirects, so tests see
every status code the server sends). Both log in through the login form, CSRF token included.
"""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from bs4 import BeautifulSoup
from flask.testing import FlaskClient

#: The seeded demo contacts (site/seed.toml): email -> password.
PASSWORDS = {
    "owner@example.com": "owner-pass",
    "rich@example.com": "rich-pass",
    "poor@example.com": "poor-pass",
    "member@example.com": "member-pass",
    "admin@example.com": "admin-pass",
}

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    """The CSRF token of the form(s) on a page."""
    match = _CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def button_fields(html: str, action_id: str) -> dict[str, str]:
    """The hidden fields of the action button for ``action_id`` on a page."""
    form = BeautifulSoup(html, "html.parser").find("form", action=f"/actions/{action_id}")
    assert form is not None, f"no button for {action_id} on the page"
    return {i["name"]: i.get("value", "") for i in form.find_all("input")}


def login_fields(email: str, password: str | None, next_url: str | None) -> dict[str, str]:
    """The login form's fields (without the CSRF token); the demo password when none is given."""
    data = {"email": email, "password": PASSWORDS[email] if password is None else password}
    if next_url is not None:
        data["next"] = next_url
    return data


class PageForms:
    """What a visitor reads from the last page it got: the CSRF token and the action buttons."""

    last: str

    def csrf(self, html: str | None = None) -> str:
        """The CSRF token of the last page (or of ``html``)."""
        return csrf_token(html or self.last)

    def button(self, action_id: str, html: str | None = None) -> dict[str, str]:
        """The hidden fields of the action button for ``action_id`` on the last page."""
        return button_fields(html or self.last, action_id)


@dataclass
class Visitor(PageForms):
    """A browser-like walk through a Flask app with one cookie jar (a test client)."""

    client: FlaskClient
    last: str = ""
    history: list[str] = field(default_factory=list)

    def get(self, url: str, status: int = 200) -> str:
        """GET ``url``, check the status, remember the page; returns its HTML."""
        response = self.client.get(url)
        assert response.status_code == status, (url, response.status_code, response.location)
        self.last = response.get_data(as_text=True)
        self.history.append(url)
        return self.last

    def post(self, url: str, data: dict[str, str] | None = None) -> Any:
        """POST ``data`` as a form with the last page's CSRF token; returns the response."""
        return self.client.post(url, data={**(data or {}), "csrf_token": self.csrf()})

    def login(self, email: str, password: str | None = None, next_url: str | None = None) -> Any:
        """Log in through the form (the demo password unless given); returns the response."""
        self.get("/login")
        return self.post("/login", login_fields(email, password, next_url))

    def click(self, action_id: str, **overrides: str) -> Any:
        """Submit the action button for ``action_id`` found on the last page."""
        data = {**self.button(action_id), **overrides}
        return self.client.post(f"/actions/{action_id}", data=data)

    def flashes(self, html: str | None = None) -> list[str]:
        """The flashed messages shown on a page."""
        soup = BeautifulSoup(html or self.last, "html.parser")
        return [p.get_text() for p in soup.select(".flash")]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class Answer:
    """One HTTP response, read fully."""

    status: int
    headers: Any
    text: str

    @property
    def location(self) -> str:
        """The Location header (empty when there is none)."""
        return str(self.headers.get("Location", ""))


class HttpVisitor(PageForms):
    """A cookie-keeping HTTP client for a live server (thread-safe for concurrent posts)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect()
        )
        self.last = ""

    def request(self, path: str, data: dict[str, str] | None = None) -> Answer:
        """GET (or POST ``data`` as a form) and return the response without following redirects."""
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(self.base + path, data=body)  # noqa: S310 - loopback test URL
        try:
            with self.opener.open(req, timeout=60) as response:
                answer = Answer(response.status, response.headers, response.read().decode())
        except urllib.error.HTTPError as error:
            answer = Answer(error.code, error.headers, error.read().decode())
            error.close()
        if data is None:
            self.last = answer.text
        return answer

    def login_form(self, email: str, password: str | None = None) -> dict[str, str]:
        """Fetch the login page; the filled-in form to post, CSRF token included."""
        self.request("/login")
        return {**login_fields(email, password, None), "csrf_token": self.csrf()}

    def login(self, email: str, password: str | None = None) -> Answer:
        """Log in through the form (the demo password unless given)."""
        return self.request("/login", self.login_form(email, password))
