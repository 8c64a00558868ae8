"""Migration 0002 builds exactly the automations schema, on both databases."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from shortcodes.store import Store
from shortcodes.store import schema as db

AUTO_TABLES = {t.name for t in db.metadata.sorted_tables}


def _only_automation_tables(
    obj: Any, name: str | None, kind: str, reflected: bool, other: Any
) -> bool:
    if kind == "table":
        return name in AUTO_TABLES
    table = getattr(obj, "table", None)
    return table is None or table.name in AUTO_TABLES


def test_migration_0002_matches_the_automations_schema(db_url: str) -> None:
    with Store.from_url(db_url) as store, store.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_object": _only_automation_tables, "compare_type": True}
        )
        assert compare_metadata(context, db.metadata) == []
