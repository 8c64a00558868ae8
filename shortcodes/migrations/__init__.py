"""Store migrations: the Alembic environment and versions (run by ``shortcodes.store.migrate``)."""
