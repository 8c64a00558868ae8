"""Store test helpers: table dumps that prove "nothing written", row counts, contacts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, func, select

from shortcodes.store import Store
from shortcodes.store import schema as db


def dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every store table, in key order: equal dumps mean nothing was written."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with store.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            order = list(table.primary_key.columns)
            out[table.name] = [tuple(r) for r in conn.execute(select(table).order_by(*order))]
    return out


def row_counts(store: Store, *tables: Table) -> dict[str, int]:
    """How many rows each of ``tables`` holds, by table name."""
    with store.engine.connect() as conn:
        return {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in tables
        }


def buyer(store: Store, email: str = "ann@example.com", credits: int = 0, name: str = "Ann") -> int:
    """A contact with an opening balance; returns its id."""
    contact_id = store.add_contact(email, name)
    if credits:
        store.credit(contact_id, credits, key=f"opening:{email}", reason="opening balance")
    return contact_id


def all_rows(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, by table, in primary-key order: equal before and after means
    nothing was written (sequences aside)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with store.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            order = list(table.primary_key.columns)
            out[table.name] = [tuple(r) for r in conn.execute(select(table).order_by(*order))]
    return out
