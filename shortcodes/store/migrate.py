"""Store migrations runner: bring a database to the newest schema with Alembic, from code.

The migration scripts live in ``shortcodes/migrations`` (package data). :func:`upgrade` runs them
on the store's own engine, inside one transaction that holds a lock, so two processes upgrading
at once (two gunicorn workers starting) take turns instead of both creating tables.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

#: An arbitrary constant: the PostgreSQL advisory lock that serializes schema upgrades.
_UPGRADE_LOCK = 0x5C0DE5


def alembic_config() -> Config:
    """An Alembic configuration pointing at the packaged migration scripts."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database behind ``engine`` to ``revision`` (default: the newest).

    SQLite alters a table by rebuilding it (copy, drop, rename), and dropping a table that
    others reference fails while foreign keys are enforced; so, as SQLite's own procedure for
    table changes says, they are off during the upgrade (the pragma only takes effect outside
    a transaction) and checked before it commits: a broken reference rolls it all back."""
    config = alembic_config()
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            _foreign_keys(conn, on=False)
        try:
            with conn.begin():
                if not sqlite:
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _UPGRADE_LOCK})
                config.attributes["connection"] = conn
                command.upgrade(config, revision)
                if sqlite and (broken := conn.exec_driver_sql("PRAGMA foreign_key_check").all()):
                    raise RuntimeError(f"the upgrade would break foreign keys: {broken[:5]}")
        finally:
            if sqlite:
                _foreign_keys(conn, on=True)


def _foreign_keys(conn: Connection, *, on: bool) -> None:
    """SQLite: enforce foreign keys or not, on this connection, outside any transaction (the
    driver-level connection runs in autocommit, see ``database``)."""
    raw = conn.connection.dbapi_connection
    assert raw is not None
    raw.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None before the first upgrade)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision the package ships."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
