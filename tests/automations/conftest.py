"""Automations test fixtures: every case on SQLite and on PostgreSQL, with a movable clock.

The same pattern as the store's tests (both use ``tests.support.backends``): ``backend`` is parametrized
``["sqlite", "postgresql"]``; SQLite cases copy a migrated template file, PostgreSQL cases use this
xdist worker's own schema (migrated once, emptied before each test). PostgreSQL comes from
``SHORTCODES_TEST_PG_URL``; without it those cases skip, unless ``SHORTCODES_REQUIRE_PG=1``, where
they fail. Every test's ledger must still verify when it ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from shortcodes.automations import AutomationConfig, parse_automations
from shortcodes.store import Store
from shortcodes.store import schema as db
from tests.support.automations import SITE_TOML, Harness
from tests.support.backends import empty_database_url, verified_store, worker_schema
from tests.support.clock import MovableClock


@pytest.fixture(scope="session")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test site as a folder (site.toml, an empty pages folder, one email template)."""
    root = tmp_path_factory.mktemp("autosite")
    (root / "site.toml").write_text(SITE_TOML, encoding="utf-8")
    (root / "pages").mkdir()
    (root / "emails").mkdir()
    (root / "emails" / "monthly-credits.txt").write_text(
        "Subject: {{ balances['_Credits'] }} credits are waiting\n\n"
        "Hello {{ email }}, your balance is now {{ balances['_Credits'] }} credits.\n",
        encoding="utf-8",
    )
    return root


@pytest.fixture(scope="session")
def config(site_dir: Path) -> AutomationConfig:
    """The test site's rules, loyalty settings, credit fields and tags."""
    return parse_automations(SITE_TOML, str(site_dir / "site.toml"))


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[tuple[Engine, str]]:
    """An engine on this worker's own automations schema and the URL selecting it."""
    yield from worker_schema("auto")


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to an empty, migrated database of the backend under test."""
    tables = db.metadata.sorted_tables
    return empty_database_url(backend, request, tmp_path, tables)


@pytest.fixture
def store(db_url: str, config: AutomationConfig, clock: MovableClock) -> Iterator[Store]:
    """A store with the test site's tags; its ledger must verify when the test ends."""
    yield from verified_store(db_url, config.actions, clock)


@pytest.fixture
def harness(store: Store, config: AutomationConfig, clock: MovableClock, tmp_path: Path) -> Harness:
    """The store, config, clock and an instance folder together."""
    return Harness(store, config, clock, tmp_path / "instance")
