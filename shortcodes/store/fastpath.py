"""Store fast path: the few statements of a purchase, run straight on the driver's cursor.

A purchase is a handful of short statements (three on PostgreSQL, see ``runner``); SQLAlchemy's
per-call execution machinery costs more client CPU than the driver itself, and on a small machine
the client shares its cores with the database.
:class:`Prepared` compiles a SQLAlchemy Core statement once per dialect and parameter set (the
same SQL SQLAlchemy would send, with the same bind conversions for JSON and datetimes) and then
executes it on the raw DBAPI cursor of the caller's connection, inside the caller's transaction.
Driver errors are wrapped into SQLAlchemy's exception classes, so retries and error handling
see exactly what they would see from ``Connection.execute``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable

_Plan = tuple[str, tuple[str, ...] | None, dict[str, Callable[[Any], Any]], Any]


class Prepared:
    """A prebuilt statement with a compiled plan per (dialect, parameter names)."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._plans: dict[tuple[str, tuple[str, ...]], _Plan] = {}

    def _plan(self, dialect: Dialect, names: tuple[str, ...]) -> _Plan:
        key = (dialect.name, names)
        plan = self._plans.get(key)
        if plan is None:
            compiled = self.statement.compile(dialect=dialect, column_keys=list(names))  # type: ignore[attr-defined]
            order = tuple(compiled.positiontup) if dialect.positional else None
            processors = {}
            for name, bind in compiled.binds.items():
                processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
                if processor is not None:
                    processors[name] = processor
            plan = (compiled.string, order, processors, compiled)
            self._plans[key] = plan
        return plan

    def _values(self, plan: _Plan, params: Mapping[str, Any]) -> Any:
        _, order, processors, compiled = plan
        # construct_params adds the values of literal binds (``balance - 6``) to the caller's.
        values = {
            name: processors[name](value) if name in processors else value
            for name, value in compiled.construct_params(params).items()
        }
        return [values[name] for name in order] if order is not None else values

    def _cursor(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        plan = self._plan(conn.dialect, tuple(params))
        cursor = conn.connection.cursor()
        try:
            cursor.execute(plan[0], self._values(plan, params))
        except conn.dialect.loaded_dbapi.Error as exc:
            cursor.close()
            raise _wrap(conn, plan[0], params, exc) from exc
        return cursor

    def first(self, conn: Connection, params: Mapping[str, Any]) -> Sequence[Any] | None:
        """Execute and return the first row (a tuple) or None."""
        cursor = self._cursor(conn, params)
        try:
            row: Sequence[Any] | None = cursor.fetchone()
            return row
        finally:
            cursor.close()

    def scalar(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        """Execute and return the first column of the first row, or None."""
        row = self.first(conn, params)
        return None if row is None else row[0]

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> None:
        """Execute for its effect."""
        self._cursor(conn, params).close()

    def executemany(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute once per row (all rows must have the same keys)."""
        plan = self._plan(conn.dialect, tuple(rows[0]))
        cursor = conn.connection.cursor()
        try:
            cursor.executemany(plan[0], [self._values(plan, r) for r in rows])
        except conn.dialect.loaded_dbapi.Error as exc:
            raise _wrap(conn, plan[0], rows[0], exc) from exc
        finally:
            cursor.close()


def _wrap(conn: Connection, sql: str, params: Mapping[str, Any], exc: Exception) -> DBAPIError:
    return DBAPIError.instance(  # type: ignore[return-value]
        sql, dict(params), exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
    )


def insert_many(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], key: str
) -> list[int]:
    """Insert ``rows`` with one executemany and answer their ids, in the order of ``rows``.

    The ids are read back by ``key``, a unique column every row sets: one more statement, where
    ``INSERT ... RETURNING`` with many rows is sent one row at a time by SQLite's driver.
    """
    if not rows:
        return []
    conn.execute(insert(table), list(rows))
    column = table.c[key]
    ids: dict[Any, int] = {}
    keys = [row[key] for row in rows]
    for start in range(0, len(keys), 5000):
        chunk = keys[start : start + 5000]
        query = select(column, table.c.id).where(column.in_(chunk))
        ids.update((k, int(i)) for k, i in conn.execute(query))
    return [ids[k] for k in keys]
