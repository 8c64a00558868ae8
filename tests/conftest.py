"""Fixtures shared by every test folder: the storage backend parameter and the SQLite template."""

from __future__ import annotations

from pathlib import Path

import pytest
from backends import migrated_sqlite


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """The database a storage test runs on: every such test runs once on each."""
    return str(request.param)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies."""
    return migrated_sqlite(tmp_path_factory.mktemp("template") / "template.db")
