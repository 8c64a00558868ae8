"""Store test helpers: a movable clock, table dumps that prove "nothing written", contacts."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from shortcodes.store import Store
from shortcodes.store import schema as db


class MovableClock:
    """A clock tests move by hand (``advance``); thread-safe."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, **delta: float) -> None:
        """Move time forward by ``timedelta(**delta)``."""
        with self._lock:
            self.now += timedelta(**delta)


def dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every store table, in key order: equal dumps mean nothing was written."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with store.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            order = list(table.primary_key.columns)
            out[table.name] = [tuple(r) for r in conn.execute(select(table).order_by(*order))]
    return out


def buyer(store: Store, email: str = "ann@example.com", credits: int = 0) -> int:
    """A contact with an opening balance; returns its id."""
    contact_id = store.add_contact(email, "Ann")
    if credits:
        store.credit(contact_id, credits, key=f"opening:{email}", reason="opening balance")
    return contact_id
