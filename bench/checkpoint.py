"""Start a measured round from a clean state: every dirty page written out first.

A bulk load writes a lot of WAL, which forces a checkpoint at some moment of whatever runs next;
while it runs, every page a round touches first is also written to the WAL whole. Checkpointing
before each round puts every round, and every tree a benchmark compares, in the same state.
``bench/ledger.py`` calls it, and copies this file beside a baseline's own bench script so that
script's rounds call it too.
"""

from __future__ import annotations

from typing import Any


def checkpoint(store: Any) -> None:
    """PostgreSQL ``CHECKPOINT``; SQLite copies its WAL into the database file and empties it.

    SQLite's is sent on the driver's own connection, outside any transaction (the store begins
    one on every SQLAlchemy connection, and a checkpoint inside one is refused as locked)."""
    engine = store.engine
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("CHECKPOINT")
        return
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        raw.close()
