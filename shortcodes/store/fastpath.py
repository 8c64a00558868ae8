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

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    Table,
    Text,
    any_,
    bindparam,
    cast,
    column,
    func,
    insert,
    literal,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
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
        _announce(conn, cursor, plan[0], params, many=False)
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

    def all(self, conn: Connection, params: Mapping[str, Any]) -> list[Sequence[Any]]:
        """Execute and return every row (tuples)."""
        cursor = self._cursor(conn, params)
        try:
            rows: list[Sequence[Any]] = cursor.fetchall()
            return rows
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
        _announce(conn, cursor, plan[0], rows, many=True)
        try:
            cursor.executemany(plan[0], [self._values(plan, r) for r in rows])
        except conn.dialect.loaded_dbapi.Error as exc:
            raise _wrap(conn, plan[0], rows[0], exc) from exc
        finally:
            cursor.close()


def _announce(conn: Connection, cursor: Any, sql: str, params: Any, *, many: bool) -> None:
    """Fire the engine's ``before_cursor_execute`` listeners (tracing, statement counters), as
    SQLAlchemy's own execution would: a statement sent past that machinery is still seen. One
    truth test when nothing listens."""
    listeners = conn.dispatch.before_cursor_execute
    if listeners:
        listeners(conn, cursor, sql, params, None, many)


def _wrap(conn: Connection, sql: str, params: Mapping[str, Any], exc: Exception) -> DBAPIError:
    return DBAPIError.instance(  # type: ignore[return-value]
        sql, dict(params), exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
    )


# -- many rows, one statement ----------------------------------------------------------------
# psycopg's executemany sends one execution per row (pipelined): for a thousand rows that is a
# thousand statements for the server to run. On PostgreSQL these helpers send the rows as one
# JSON array and let the server expand it (``jsonb_populate_recordset`` with the table's own row
# type, so every value is converted by the column's type): one statement for any number of
# rows. SQLite, in-process, runs an executemany, which costs no round trips.


def _rows_json(rows: Sequence[Mapping[str, Any]]) -> str:
    return json.dumps([dict(r) for r in rows], default=_json_value, separators=(",", ":"))


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot send {type(value).__name__} as a row value")


def _expanded(conn: Connection, table: Table, columns: Sequence[str], rows: Any) -> Any:
    """The rows as a table ``v`` with ``columns``, typed by ``table``'s own row type."""
    rowtype: Any = literal_column("NULL::" + conn.dialect.identifier_preparer.quote(table.name))
    document = cast(literal(_rows_json(rows), Text), JSONB)
    expanded = func.jsonb_populate_recordset(rowtype, document)
    return expanded.table_valued(*(column(c) for c in columns)).alias("v")


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (all with the same keys) with one statement."""
    if not rows:
        return
    columns = list(rows[0])
    if conn.dialect.name != "postgresql":
        _plain_insert(table).executemany(conn, rows)
        return
    v = _expanded(conn, table, columns, rows)
    conn.execute(insert(table).from_select(columns, select(*(v.c[c] for c in columns))))


@cache
def _plain_insert(table: Table) -> Prepared:
    """``INSERT INTO table``, prepared once per table (its plans per column set)."""
    return Prepared(insert(table))


def upsert_rows(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], keys: Sequence[str]
) -> None:
    """Insert ``rows``, or where a row with the same ``keys`` exists, set its other columns."""
    if not rows:
        return
    columns = list(rows[0])
    others = [c for c in columns if c not in keys]
    if conn.dialect.name != "postgresql":
        lite = sqlite.insert(table)
        update_ = {c: lite.excluded[c] for c in others}
        conn.execute(
            lite.on_conflict_do_update(index_elements=list(keys), set_=update_), list(rows)
        )
        return
    v = _expanded(conn, table, columns, rows)
    pg = postgresql.insert(table).from_select(columns, select(*(v.c[c] for c in columns)))
    pg = pg.on_conflict_do_update(
        index_elements=list(keys), set_={c: pg.excluded[c] for c in others}
    )
    conn.execute(pg)


def update_rows(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], key: str = "id"
) -> None:
    """Set the other columns of each row found by ``key`` (all rows with the same keys)."""
    if not rows:
        return
    columns = list(rows[0])
    others = [c for c in columns if c != key]
    if conn.dialect.name != "postgresql":
        stmt = (
            update(table)
            .where(table.c[key] == bindparam(f"b_{key}"))
            .values({c: bindparam(f"b_{c}") for c in others})
        )
        conn.execute(stmt, [{f"b_{k}": v for k, v in r.items()} for r in rows])
        return
    v = _expanded(conn, table, columns, rows)
    conn.execute(update(table).where(table.c[key] == v.c[key]).values({c: v.c[c] for c in others}))


def insert_many(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], key: str
) -> list[int]:
    """Insert ``rows`` with one statement (:func:`insert_rows`) and answer their ids, in the
    order of ``rows``, matched by ``key``, a unique column every row sets. PostgreSQL returns
    them from the insert; SQLite's driver would send a many-row ``INSERT ... RETURNING`` one row
    at a time, so there they are read back by key, one more statement."""
    if not rows:
        return []
    keys = [row[key] for row in rows]
    ids: dict[Any, int] = {}
    if conn.dialect.name == "postgresql":
        columns = list(rows[0])
        v = _expanded(conn, table, columns, rows)
        statement = insert(table).from_select(columns, select(*(v.c[c] for c in columns)))
        found = conn.execute(statement.returning(table.c[key], table.c.id))
        ids.update((k, int(i)) for k, i in found)
        return [ids[k] for k in keys]
    insert_rows(conn, table, rows)
    for start in range(0, len(keys), 5000):
        chunk = keys[start : start + 5000]
        ids.update(
            (k, int(i))
            for k, i in conn.execute(
                select(table.c[key], table.c.id).where(among(conn, table.c[key], chunk))
            )
        )
    return [ids[k] for k in keys]


def among(conn: Connection, col: Any, values: Sequence[Any]) -> Any:
    """``col IN values``; on PostgreSQL ``col = ANY(array)``, one parameter however many values
    (a thousand placeholders cost the driver more than the server)."""
    if conn.dialect.name != "postgresql":
        return col.in_(list(values))
    return col == any_(cast(literal(list(values), ARRAY(col.type)), ARRAY(col.type)))
