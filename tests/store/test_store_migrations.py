"""Alembic migrations on both databases: they build exactly the store schema, from code, safely."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from shortcodes.store import Store
from shortcodes.store import schema as db
from shortcodes.store.database import make_engine
from shortcodes.store.migrate import current_revision, head_revision

STORE_TABLES = {t.name for t in db.metadata.sorted_tables}


@pytest.fixture
def fresh_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database (a new SQLite file, or a new PostgreSQL schema)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    _, worker_url = request.getfixturevalue("pg_admin")
    name = f"fresh_{uuid.uuid4().hex[:12]}"
    base = make_url(worker_url).difference_update_query(["options"])
    root = create_engine(base)
    with root.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    yield base.update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(False)
    with root.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
    root.dispose()


def _only_store_tables(obj: Any, name: str | None, kind: str, reflected: bool, other: Any) -> bool:
    # Every table is on the one MetaData, so the head migration must build all of them.
    if kind == "table":
        return name in STORE_TABLES
    table = getattr(obj, "table", None)
    return table is None or table.name in STORE_TABLES


def test_upgrade_builds_exactly_the_store_schema(fresh_url: str) -> None:
    with Store.from_url(fresh_url) as store:
        assert current_revision(store.engine) is None
        store.upgrade()
        assert current_revision(store.engine) == head_revision()
        with store.engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"include_object": _only_store_tables, "compare_type": True}
            )
            assert compare_metadata(context, db.metadata) == []
            assert set(inspect(conn).get_table_names()) >= STORE_TABLES


def test_upgrading_again_changes_nothing(fresh_url: str) -> None:
    with Store.from_url(fresh_url) as store:
        store.upgrade()
        store.add_contact("ann@example.com")
        store.upgrade()
        assert store.get_contact("ann@example.com").id == 1


def test_two_processes_upgrading_at_once_both_succeed(fresh_url: str) -> None:
    engines = [make_engine(fresh_url) for _ in range(2)]
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            for future in [pool.submit(Store(e).upgrade) for e in engines]:
                future.result()
        assert current_revision(engines[0]) == head_revision()
    finally:
        for engine in engines:
            engine.dispose()


def test_the_check_constraint_exists_in_the_migrated_database(fresh_url: str) -> None:
    with Store.from_url(fresh_url) as store:
        store.upgrade()
        checks = inspect(store.engine).get_check_constraints("credit_accounts")
        assert any("balance >= 0" in c["sqltext"] for c in checks)
