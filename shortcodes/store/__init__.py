"""The store stage: contacts, tags, the credit ledger and actionsets on SQLite or PostgreSQL.

``Store`` is the interface; the modules behind it are ``schema`` (tables), ``engine`` (database
setup), ``session`` (transactions and retries), ``contacts``, ``ledger``, ``runner`` (actionsets),
``events`` (events and outbox), ``idempotency``, ``importer`` (CSV) and ``migrate`` (Alembic).
"""

from __future__ import annotations

from shortcodes.store.events import Event
from shortcodes.store.facade import Store
from shortcodes.store.ledger import Entry, HistoryPage, LedgerResult
from shortcodes.store.runner import RunResult
from shortcodes.store.session import SYSTEM, Actor, Tx
from shortcodes.store.verify import Discrepancy, VerifyReport

__all__ = [
    "SYSTEM",
    "Actor",
    "Discrepancy",
    "Entry",
    "Event",
    "HistoryPage",
    "LedgerResult",
    "RunResult",
    "Store",
    "Tx",
    "VerifyReport",
]
