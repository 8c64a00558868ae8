"""The demo site on a fresh, seeded SQLite database per test: fixtures the host and payments
tests share (their conftests import them).

Migrating and seeding (five password hashes) happens once per session in a template database;
each test gets its own copy, its own instance folder and its own Flask app, and the ledger must
still verify when the test ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shortcodes.host import create_app
from tests.support.host import app_config, make_app, store
from tests.support.visitors import Visitor


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database seeded with the demo contacts, copied by every test."""
    instance = tmp_path_factory.mktemp("template-instance")
    app = create_app(app_config(instance))
    store(app).close()  # disposing the pool checkpoints the WAL into the file
    return instance / "shortcodes.db"


@pytest.fixture
def app(template_db: Path, tmp_path: Path) -> Iterator[Flask]:
    """The demo site on a fresh seeded database; the ledger must verify afterwards."""
    application = make_app(template_db, tmp_path / "instance")
    yield application
    report = store(application).verify()
    store(application).close()
    assert report.ok, report.problems


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of ``app``."""
    return app.test_client()


@pytest.fixture
def visitor(client: FlaskClient) -> Visitor:
    """An anonymous visitor with its own cookie jar."""
    return Visitor(client)
