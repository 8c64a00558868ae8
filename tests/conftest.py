"""Fixtures shared by every test folder: the storage backend parameter, the SQLite template and
the movable clock."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

from tests.support.backends import migrated_sqlite
from tests.support.clock import MovableClock

# No per-example deadline: a test's speed is measured in bench/, never asserted, and a loaded
# machine (two cores, parallel workers) made a property test miss Hypothesis's default 200 ms.
settings.register_profile("shortcodes", deadline=None)
settings.load_profile("shortcodes")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """The database a storage test runs on: every such test runs once on each."""
    return str(request.param)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies."""
    return migrated_sqlite(tmp_path_factory.mktemp("template") / "template.db")


@pytest.fixture
def clock() -> MovableClock:
    """Business time in store and automations tests: fixed until a test moves it."""
    return MovableClock()
