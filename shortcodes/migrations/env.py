"""Store migrations environment: Alembic runs the versions on the store's connection.

``shortcodes.store.migrate.upgrade`` passes its open connection in ``config.attributes``; run
through the ``alembic`` command instead, the database comes from ``SHORTCODES_DATABASE_URL`` (or
``DATABASE_URL``).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from shortcodes.store.database import environ_url, make_engine
from shortcodes.store.schema import metadata


def run(connection: Connection) -> None:
    """Run the pending versions on ``connection`` (batch mode lets SQLite alter tables)."""
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    """Use the caller's connection when given one, else open the environment's database URL."""
    given = context.config.attributes.get("connection")
    if given is not None:
        run(given)
        return
    url = environ_url() or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set SHORTCODES_DATABASE_URL to the database to upgrade")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            run(conn)
    finally:
        engine.dispose()


main()
