"""Documentation test fixtures: a database of each backend for the tutorials' sites."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from shortcodes.store import schema
from tests.support.backends import empty_database_url, worker_schema


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[tuple[Engine, str]]:
    """An engine on this worker's own docs schema and the URL selecting it."""
    yield from worker_schema("docs")


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to an empty, migrated database of the backend under test."""
    return empty_database_url(backend, request, tmp_path, schema.metadata.sorted_tables)
