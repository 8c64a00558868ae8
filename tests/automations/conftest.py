"""Automations test fixtures: every case on SQLite and on PostgreSQL, with a movable clock.

The same pattern as the store's tests (``tests/store/conftest.py``): ``backend`` is parametrized
``["sqlite", "postgresql"]``; SQLite cases copy a migrated template file, PostgreSQL cases use this
xdist worker's own schema (migrated once, emptied before each test). PostgreSQL comes from
``SHORTCODES_TEST_PG_URL``; without it those cases skip, unless ``SHORTCODES_REQUIRE_PG=1``, where
they fail. Every test's ledger must still verify when it ends.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from auto_helpers import SITE_TOML, Harness, MovableClock
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from shortcodes.automations import AutomationConfig, parse_automations
from shortcodes.automations import schema as auto
from shortcodes.store import Store
from shortcodes.store import schema as db
from shortcodes.store.engine import make_engine, normalize_url
from shortcodes.store.migrate import upgrade

PG_URL = os.environ.get("SHORTCODES_TEST_PG_URL", "").strip()
REQUIRE_PG = os.environ.get("SHORTCODES_REQUIRE_PG", "") == "1"
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


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
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file each test copies."""
    path = tmp_path_factory.mktemp("autotemplate") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return path


def _pg_unavailable(reason: str) -> None:
    if REQUIRE_PG:
        pytest.fail(f"SHORTCODES_REQUIRE_PG=1 but PostgreSQL is unusable: {reason}")
    pytest.skip(f"PostgreSQL case skipped: {reason}")


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[tuple[Engine, str]]:
    """An engine on this worker's own schema and the URL selecting it; dropped at the end."""
    if not PG_URL:
        _pg_unavailable("set SHORTCODES_TEST_PG_URL=postgresql://postgres@127.0.0.1:5432/test")
    schema_name = f"auto_{WORKER}_{os.getpid()}".lower()
    base = make_url(normalize_url(PG_URL))
    url = base.update_query_dict({"options": f"-csearch_path={schema_name}"})
    url_text = url.render_as_string(hide_password=False)
    root = create_engine(base)
    try:
        with root.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema_name}"'))
    except Exception as exc:  # any connection failure means "no usable PostgreSQL"
        root.dispose()
        _pg_unavailable(f"cannot connect to {base.render_as_string()}: {exc}")
    engine = make_engine(url_text, pool_size=2)
    upgrade(engine)
    yield engine, url_text
    engine.dispose()
    with root.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema_name}" CASCADE'))
    root.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """The database every automations test runs on, once each."""
    return str(request.param)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to an empty, migrated database of the backend under test."""
    if backend == "sqlite":
        path = tmp_path / "auto.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    engine, url = request.getfixturevalue("pg_admin")
    names = [t.name for t in auto.metadata.sorted_tables] + [
        t.name for t in db.metadata.sorted_tables
    ]
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
    return str(url)


@pytest.fixture
def clock() -> MovableClock:
    """Business time, fixed until a test moves it."""
    return MovableClock()


@pytest.fixture
def store(db_url: str, config: AutomationConfig, clock: MovableClock) -> Iterator[Store]:
    """A store with the test site's tags; its ledger must verify when the test ends."""
    with Store.from_url(db_url, site=config.actions, clock=clock, pool_size=8) as st:
        st.sync_tags()
        yield st
        report = st.verify()
        assert report.ok, f"ledger does not verify after the test: {report.problems}"


@pytest.fixture
def harness(store: Store, config: AutomationConfig, clock: MovableClock, tmp_path: Path) -> Harness:
    """The store, config, clock and an instance folder together."""
    return Harness(store, config, clock, tmp_path / "instance")
