"""Store engine setup: choose the database from a URL and make SQLite and PostgreSQL behave alike.

SQLite (the embedded default, a file in the instance folder) runs in WAL mode with a busy timeout,
foreign keys on, and every write transaction opened with ``BEGIN IMMEDIATE``: writers from any
thread or process then queue for the write lock instead of failing half-way with "database is
locked". PostgreSQL (psycopg 3) is chosen with ``SHORTCODES_DATABASE_URL`` (or ``DATABASE_URL``);
its writers serialize per contact with ``SELECT ... FOR UPDATE`` and retry serialization failures
(see ``session``).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
import weakref
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.pool import ConnectionPoolEntry

#: How long a SQLite writer waits for the write lock before giving up (seconds).
SQLITE_BUSY_TIMEOUT = 60.0

#: Execution option read by the ``begin`` hook: "IMMEDIATE" for writes, "DEFERRED" for reads.
SQLITE_BEGIN = "shortcodes_sqlite_begin"


#: Where the environment names the database, first match wins: the host's own variable, then the
#: hosting platforms' conventional one. The host and the CLI both go through :func:`default_url`.
DATABASE_URL_VARIABLES = ("SHORTCODES_DATABASE_URL", "DATABASE_URL")


def environ_url(environ: Mapping[str, str] | None = None) -> str:
    """The database URL the environment names (see :data:`DATABASE_URL_VARIABLES`), or ""."""
    source = os.environ if environ is None else environ
    for name in DATABASE_URL_VARIABLES:
        value = source.get(name, "").strip()
        if value:
            return value
    return ""


def default_url(
    instance_path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> str:
    """The database URL: the environment's (:func:`environ_url`), else ``shortcodes.db`` in the
    instance folder. ``environ`` defaults to the process environment."""
    return environ_url(environ) or f"sqlite:///{Path(instance_path) / 'shortcodes.db'}"


def normalize_url(url: str) -> str:
    """Pick psycopg 3 for PostgreSQL URLs that name no driver (``postgres://`` included)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """Create the engine for ``url`` with the dialect-specific setup this module describes."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, pool_size)
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_timeout=120)
    raise ValueError(f"unsupported database URL {parsed!r}: use sqlite:/// or postgresql://")


def _sqlite_engine(url: str, pool_size: int) -> Engine:
    database = make_url(url).database or ""
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=120,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT, "check_same_thread": False},
    )
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    if database and database != ":memory:":
        _WRITE_LOCKS[engine] = SqliteWriteLock(database)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Take transaction control away from the sqlite3 module so our BEGIN is the one that runs.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT * 1000)}")
    finally:
        cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode=WAL``, retried while another process holds the database: SQLite
    answers "database is locked" to that switch at once, without waiting on the busy timeout,
    so processes opening a new file together would fail at random."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT
    delay = 0.01
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _sqlite_on_begin(connection: Connection) -> None:
    # IMMEDIATE takes the write lock up front, so two writers never both read and then deadlock
    # upgrading; reads opt into DEFERRED and run beside a writer thanks to WAL.
    mode = connection.get_execution_options().get(SQLITE_BEGIN, "IMMEDIATE")
    connection.exec_driver_sql(f"BEGIN {mode}")


class SqliteWriteLock:
    """An exclusive ``flock`` on ``<database>.lock`` held around each SQLite write transaction.

    SQLite's own busy handler polls with sleeps of up to 100 ms, so eight processes contending
    for the write lock spend most of their time asleep while it is free. A blocking ``flock``
    wakes the next writer the moment the lock is released, and the kernel drops it when a process
    dies, even by SIGKILL. The file is opened per transaction: flocks on different descriptors
    exclude each other, within one process too, and no descriptor outlives its transaction.
    The database's own locking still guarantees correctness; this only makes writers queue.
    """

    def __init__(self, database: str) -> None:
        self.path = f"{database}.lock"

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the lock for the duration of the ``with`` block."""
        with open(self.path, "ab") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


_WRITE_LOCKS: weakref.WeakKeyDictionary[Engine, SqliteWriteLock] = weakref.WeakKeyDictionary()


def write_lock(engine: Engine) -> AbstractContextManager[None]:
    """What to hold around a write transaction: the SQLite file lock, or nothing."""
    lock = _WRITE_LOCKS.get(engine)
    return nullcontext() if lock is None else lock.hold()


def dispose(engine: Engine) -> None:
    """Close the engine's pooled connections and forget its SQLite write lock."""
    _WRITE_LOCKS.pop(engine, None)
    engine.dispose()
