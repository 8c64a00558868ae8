"""Store events and outbox: what changed, and what must leave the system, in the same transaction.

**Events** are the hook point for automations (issue 6): every tag and ledger operation appends a
row to ``events`` inside the transaction that made the change, so an event exists if and only if
its change committed. A consumer reads them in ``id`` order with a cursor (:func:`events_after`).
Kinds and their ``data``:

- ``tag_applied`` / ``tag_removed``: ``tag_id``, ``tag``, ``expires_at`` (ISO or null), ``source``
- ``balance_changed``: ``field``, ``delta``, ``balance``, ``entry_id``, ``reason``
- ``field_set``: ``field``, ``value``
- ``contact_created``: ``email``
- ``actionset_run``: ``action``, ``run_id``, ``outcome``

The **outbox** holds emails and webhooks produced by actionset steps. A row is written in the
run's transaction and delivered afterwards by the worker; its ``dedupe_key`` is unique, so one
step of one run can never queue its message twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from shortcodes.store import schema
from shortcodes.store.fastpath import Prepared, insert_rows
from shortcodes.store.session import Tx, from_db_time

OutboxKind = Literal["email", "webhook"]


@dataclass(frozen=True, slots=True)
class Event:
    """One recorded change, as automations see it."""

    id: int
    kind: str
    contact_id: int | None
    run_id: int | None
    data: Mapping[str, Any]
    created_at: datetime


# Built once and run on the driver's cursor (see ``fastpath``): these are on every purchase.
_INSERT_EVENT = Prepared(insert(schema.events))
_INSERT_OUTBOX = Prepared(insert(schema.outbox))


#: The automation run whose step is being performed, if any: events recorded meanwhile carry it
#: as ``data["cause"]`` (``rule``, ``run_id``, ``chain``), which the dispatcher reads to stop
#: loops and to keep a rule's own effects from starting it again.
_CAUSE: ContextVar[Mapping[str, Any] | None] = ContextVar("event_cause", default=None)


@contextmanager
def caused_by(cause: Mapping[str, Any]) -> Iterator[None]:
    """Within the block, every recorded event names ``cause`` as what caused it."""
    token = _CAUSE.set(cause)
    try:
        yield
    finally:
        _CAUSE.reset(token)


def current_cause() -> Mapping[str, Any] | None:
    """The cause events recorded now carry (see :func:`caused_by`), or None."""
    return _CAUSE.get()


def record_event(
    tx: Tx,
    kind: str,
    contact_id: int | None,
    data: Mapping[str, Any],
    run_id: int | None = None,
) -> None:
    """Append an event to the current transaction (it commits or vanishes with the change)."""
    _INSERT_EVENT.execute(tx.conn, event_row(tx, kind, contact_id, data, run_id))


def record_events(tx: Tx, rows: list[dict[str, Any]]) -> None:
    """Append several events in one statement (rows as :func:`event_row` makes them)."""
    insert_rows(tx.conn, schema.events, rows)


def event_row(
    tx: Tx, kind: str, contact_id: int | None, data: Mapping[str, Any], run_id: int | None = None
) -> dict[str, Any]:
    """The row :func:`record_event` would insert, for writing later with :func:`record_events`;
    its data names the current cause, if any (:func:`caused_by`)."""
    cause = _CAUSE.get()
    return {
        "kind": kind,
        "contact_id": contact_id,
        "run_id": run_id,
        "data": dict(data) if cause is None else {**data, "cause": dict(cause)},
        "created_at": tx.now,
    }


def enqueue(
    tx: Tx,
    kind: OutboxKind,
    dedupe_key: str,
    payload: Mapping[str, Any],
    contact_id: int | None = None,
    run_id: int | None = None,
) -> None:
    """Queue an outgoing email or webhook in the current transaction, due now."""
    _INSERT_OUTBOX.execute(tx.conn, outbox_row(tx, kind, dedupe_key, payload, contact_id, run_id))


def enqueue_many(tx: Tx, rows: list[dict[str, Any]]) -> None:
    """Queue several messages (rows as :func:`outbox_row` makes them)."""
    insert_rows(tx.conn, schema.outbox, rows)


def outbox_row(
    tx: Tx,
    kind: OutboxKind,
    dedupe_key: str,
    payload: Mapping[str, Any],
    contact_id: int | None = None,
    run_id: int | None = None,
) -> dict[str, Any]:
    """The row :func:`enqueue` would insert, for writing later with :func:`enqueue_many`."""
    return {
        "kind": kind,
        "dedupe_key": dedupe_key,
        "payload": dict(payload),
        "contact_id": contact_id,
        "run_id": run_id,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": tx.now,
        "created_at": tx.now,
    }


def events_after(conn: Connection, after_id: int = 0, limit: int = 100) -> list[Event]:
    """Events with ``id > after_id``, oldest first: the cursor-driven feed automations consume."""
    t = schema.events
    rows = conn.execute(select(t).where(t.c.id > after_id).order_by(t.c.id).limit(limit))
    return [
        Event(r.id, r.kind, r.contact_id, r.run_id, r.data, from_db_time(r.created_at))
        for r in rows
    ]
