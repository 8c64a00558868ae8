"""Host test fixtures: the demo site on a fresh, seeded SQLite database per test.

Migrating and seeding (five password hashes) happens once per session in a template database;
each test gets its own copy, its own instance folder and its own Flask app, and the ledger must
still verify when the test ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shortcodes.host import create_app
from tests.support.backends import PG_URL, WORKER, pg_unavailable
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


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test (dropped afterwards)."""
    if not PG_URL:
        pg_unavailable("set SHORTCODES_TEST_PG_URL=postgresql://postgres@127.0.0.1:5432/test")
    name = f"host_{WORKER}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(
        PG_URL.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
