"""Host test helpers: demo logins, app factories on a copied database, and a browser-like visitor.

``Visitor`` drives a Flask test client like a browser would: it logs in, reads CSRF tokens and
action buttons from the pages it got, and posts them back.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bs4 import BeautifulSoup
from flask import Flask
from flask.testing import FlaskClient

from shortcodes.host import create_app
from shortcodes.store.store import Store

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "site"
SECRET = "host-tests-secret-key"

#: The seeded demo contacts (site/seed.toml): email -> password.
PASSWORDS = {
    "owner@example.com": "owner-pass",
    "rich@example.com": "rich-pass",
    "poor@example.com": "poor-pass",
    "member@example.com": "member-pass",
    "admin@example.com": "admin-pass",
}


def app_config(instance: Path, **extra: Any) -> dict[str, Any]:
    """The settings of a test app whose database lives in ``instance``."""
    return {
        "TESTING": True,
        "SECRET_KEY": SECRET,
        "INSTANCE_PATH": instance,
        "SITE_DIR": SITE,
        "DATABASE_URL": f"sqlite:///{instance / 'shortcodes.db'}",
        **extra,
    }


def store(app: Flask) -> Store:
    """The store of a host app."""
    found: Store = app.extensions["shortcodes"].store
    return found


def make_app(template_db: Path, instance: Path, **extra: Any) -> Flask:
    """A host app on a private copy of the seeded template database."""
    instance.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template_db, instance / "shortcodes.db")
    return create_app(app_config(instance, **extra))


@dataclass
class Visitor:
    """A browser-like walk through the site with one cookie jar."""

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

    def csrf(self, html: str | None = None) -> str:
        """The CSRF token of the last page (or of ``html``)."""
        match = re.search(r'name="csrf_token" value="([^"]+)"', html or self.last)
        assert match, "no CSRF token on the page"
        return match.group(1)

    def login(self, email: str, password: str | None = None) -> Any:
        """Log in through the form; returns the response."""
        self.get("/login")
        return self.client.post(
            "/login",
            data={
                "email": email,
                "password": password or PASSWORDS[email],
                "csrf_token": self.csrf(),
            },
        )

    def button(self, action_id: str, html: str | None = None) -> dict[str, str]:
        """The hidden fields of the action button for ``action_id`` on the last page."""
        soup = BeautifulSoup(html or self.last, "html.parser")
        form = soup.find("form", action=f"/actions/{action_id}")
        assert form is not None, f"no button for {action_id} on the page"
        return {i["name"]: i.get("value", "") for i in form.find_all("input")}

    def click(self, action_id: str, **overrides: str) -> Any:
        """Submit the action button for ``action_id`` found on the last page."""
        data = {**self.button(action_id), **overrides}
        return self.client.post(f"/actions/{action_id}", data=data)

    def flashes(self, html: str | None = None) -> list[str]:
        """The flashed messages shown on a page."""
        soup = BeautifulSoup(html or self.last, "html.parser")
        return [p.get_text() for p in soup.select(".flash")]


def logged_in(app: Flask, email: str) -> Visitor:
    """A new visitor logged in as ``email``."""
    who = Visitor(app.test_client())
    response = who.login(email)
    assert response.status_code == 303, response.get_data(as_text=True)
    return who


def counts(app: Flask) -> dict[str, int]:
    """How many ledger entries, runs and webhook operations the database holds."""
    from sqlalchemy import func, select

    from shortcodes.store import schema

    with store(app).engine.connect() as conn:
        return {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (
                schema.ledger_entries,
                schema.actionset_runs,
                schema.operations,
                schema.contact_tags,
            )
        }
