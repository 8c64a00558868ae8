"""Test support: the two databases every storage test runs on (like MarkupSafe's two backends).

PostgreSQL comes from ``SHORTCODES_TEST_PG_URL``. Without it PostgreSQL cases skip with the
reason, unless ``SHORTCODES_REQUIRE_PG=1`` (CI), where they fail. Each xdist worker gets its own
schema, so parallel workers never see each other's rows.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import pytest
from sqlalchemy import Engine, Table, create_engine, text
from sqlalchemy.engine import make_url

from shortcodes.store import Store
from shortcodes.store.database import make_engine, normalize_url
from shortcodes.store.migrate import upgrade

PG_URL = os.environ.get("SHORTCODES_TEST_PG_URL", "").strip()
REQUIRE_PG = os.environ.get("SHORTCODES_REQUIRE_PG", "") == "1"
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


def pg_unavailable(reason: str) -> NoReturn:
    """Skip a PostgreSQL case with ``reason``, or fail it when PostgreSQL is required."""
    if REQUIRE_PG:
        pytest.fail(f"SHORTCODES_REQUIRE_PG=1 but PostgreSQL is unusable: {reason}")
    pytest.skip(f"PostgreSQL case skipped: {reason}")


def migrated_sqlite(path: Path) -> Path:
    """Create and migrate a SQLite file at ``path`` (tests copy it: migrating is the slow part)."""
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
    finally:
        engine.dispose()  # closing the last connection checkpoints the WAL into the file
    return path


def worker_schema(prefix: str) -> Iterator[tuple[Engine, str]]:
    """This worker's own migrated PostgreSQL schema: (engine, URL selecting it); dropped after."""
    if not PG_URL:
        pg_unavailable("set SHORTCODES_TEST_PG_URL=postgresql://postgres@127.0.0.1:5432/test")
    schema_name = f"{prefix}_{WORKER}_{os.getpid()}".lower()
    base = make_url(normalize_url(PG_URL))
    url = base.update_query_dict({"options": f"-csearch_path={schema_name}"})
    url_text = url.render_as_string(hide_password=False)
    root = create_engine(base)
    try:
        with root.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema_name}"'))
    except Exception as exc:  # any connection failure means "no usable PostgreSQL"
        root.dispose()
        pg_unavailable(f"cannot connect to {base.render_as_string()}: {exc}")
    engine = make_engine(url_text, pool_size=2)
    upgrade(engine)
    yield engine, url_text
    engine.dispose()
    with root.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema_name}" CASCADE'))
    root.dispose()


def empty_database_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, tables: Iterable[Table]
) -> str:
    """A URL to an empty, migrated database of ``backend``, for one test.

    SQLite: a private copy of the ``sqlite_template`` fixture. PostgreSQL: the ``pg_admin``
    fixture's schema (this worker's own) with ``tables`` emptied.
    """
    if backend == "sqlite":
        path = tmp_path / "store.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    engine, url = request.getfixturevalue("pg_admin")
    names = ", ".join(t.name for t in tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    return str(url)


def verified_store(db_url: str, site: Any, clock: Callable[[], datetime]) -> Iterator[Store]:
    """A store with ``site``'s tags created; its ledger must verify when the test ends."""
    with Store.from_url(db_url, site=site, clock=clock, pool_size=8) as st:
        st.sync_tags()
        yield st
        report = st.verify()
        assert report.ok, f"ledger does not verify after the test: {report.problems}"
