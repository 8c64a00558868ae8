"""Host test fixtures: the demo site (shared with the payments tests, see
``tests/support/demo_fixtures.py``) and a fresh PostgreSQL database per test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.support.backends import PG_URL, WORKER, pg_unavailable
from tests.support.demo_fixtures import app, client, template_db, visitor  # noqa: F401


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
