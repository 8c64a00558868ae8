"""Store reads for the operator: contact lists, a contact's runs, steps, drips, messages and audit trail,
and the site-wide logs of webhooks, deliveries and emails.

Read-only queries over one connection, shared by the admin console (``host/admin.py``) and the
operator CLI (``contacts list``, ``tags list``). Every list is bounded: a page of contacts, the
newest N rows of a log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.engine import Connection, Row

from shortcodes.store import schema

PER_PAGE = 50
LOG_LIMIT = 100


@dataclass(frozen=True, slots=True)
class ContactRow:
    """One line of a contact list."""

    id: int
    email: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ContactList:
    """A page of contacts matching a search, and how many match in all."""

    rows: list[ContactRow]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        """How many pages the matches fill (at least 1)."""
        return max(1, -(-self.total // self.per_page))


def _like(text: str) -> str:
    """``text`` as a LIKE pattern matching it anywhere, its wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def contact_list(
    conn: Connection,
    search: str = "",
    tag_id: int | None = None,
    page: int = 1,
    per_page: int = PER_PAGE,
    now: datetime | None = None,
) -> ContactList:
    """Contacts whose name or email contains ``search`` (case-insensitively) and, with ``tag_id``,
    who hold that tag (unexpired at ``now``); page ``page``, newest id first."""
    t = schema.contacts
    where: list[Any] = []
    if search:
        pattern = _like(search)
        where.append(
            or_(
                func.lower(t.c.email).like(pattern, escape="\\"),
                func.lower(t.c.name).like(pattern, escape="\\"),
            )
        )
    if tag_id is not None:
        ct = schema.contact_tags
        held = select(ct.c.contact_id).where(ct.c.tag_id == tag_id)
        if now is not None:
            held = held.where(or_(ct.c.expires_at.is_(None), ct.c.expires_at > now))
        where.append(t.c.id.in_(held))
    total = conn.execute(select(func.count()).select_from(t).where(*where)).scalar_one()
    query = (
        select(t.c.id, t.c.email, t.c.name, t.c.created_at)
        .where(*where)
        .order_by(t.c.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    rows = [ContactRow(int(r.id), r.email, r.name, r.created_at) for r in conn.execute(query)]
    return ContactList(rows, int(total), page, per_page)


def tag_list(conn: Connection, now: datetime) -> list[Row[Any]]:
    """Every tag with how many contacts hold it now: rows of (id, name, category, holders)."""
    tg, ct = schema.tags, schema.contact_tags
    live = or_(ct.c.expires_at.is_(None), ct.c.expires_at > now)
    holders = (
        select(func.count())
        .where(ct.c.tag_id == tg.c.id, live)
        .correlate(tg)
        .scalar_subquery()
        .label("holders")
    )
    query = select(tg.c.id, tg.c.name, tg.c.category, holders).order_by(tg.c.name_key)
    return list(conn.execute(query))


def held_tags(conn: Connection, contact_id: int, now: datetime) -> list[Row[Any]]:
    """The contact's unexpired tags: rows of (id, name, applied_at, expires_at, source)."""
    tg, ct = schema.tags, schema.contact_tags
    query = (
        select(tg.c.id, tg.c.name, ct.c.applied_at, ct.c.expires_at, ct.c.source)
        .join(tg, tg.c.id == ct.c.tag_id)
        .where(ct.c.contact_id == contact_id, or_(ct.c.expires_at.is_(None), ct.c.expires_at > now))
        .order_by(tg.c.name_key)
    )
    return list(conn.execute(query))


def _newest(conn: Connection, table: Any, *where: Any, limit: int = LOG_LIMIT) -> list[Row[Any]]:
    return list(conn.execute(select(table).where(*where).order_by(table.c.id.desc()).limit(limit)))


def actionset_runs(conn: Connection, contact_id: int, limit: int = LOG_LIMIT) -> list[Row[Any]]:
    """The contact's button runs, newest first."""
    t = schema.actionset_runs
    return _newest(conn, t, t.c.contact_id == contact_id, limit=limit)


def automation_runs(conn: Connection, contact_id: int, limit: int = LOG_LIMIT) -> list[Row[Any]]:
    """The contact's automation rule runs, newest first."""
    t = schema.auto_runs
    return _newest(conn, t, t.c.contact_id == contact_id, limit=limit)


def pending_steps(conn: Connection, contact_id: int, limit: int = LOG_LIMIT) -> list[Row[Any]]:
    """The contact's automation steps still waiting, soonest first."""
    t = schema.auto_steps
    query = (
        select(t)
        .where(t.c.contact_id == contact_id, t.c.status == "pending")
        .order_by(t.c.due_at, t.c.id)
        .limit(limit)
    )
    return list(conn.execute(query))


@dataclass(frozen=True, slots=True)
class DripPosition:
    """A member's drip: when it started, its status, the active time counted, the items out
    (in release order) and when the worker looks next."""

    rule: str
    started_at: datetime
    status: str
    active: timedelta
    released: tuple[str, ...]
    next_at: datetime | None


def drip_positions(
    conn: Connection, contact_id: int, rule: str | None = None
) -> list[DripPosition]:
    """The contact's drips (or its drip of ``rule``), by rule."""
    d, r = schema.drip_states, schema.drip_releases
    where = d.c.contact_id == contact_id
    if rule is not None:
        where &= d.c.rule == rule
    released: dict[str, list[str]] = {}
    query = select(r.c.rule, r.c.item).where(r.c.contact_id == contact_id)
    for name, item in conn.execute(query.order_by(r.c.released_at, r.c.item)):
        released.setdefault(name, []).append(item)
    return [
        DripPosition(
            row.rule,
            row.started_at,
            row.status,
            timedelta(microseconds=int(row.active_us)),
            tuple(released.get(row.rule, ())),
            row.next_at,
        )
        for row in conn.execute(select(d).where(where).order_by(d.c.rule))
    ]


def outbox(
    conn: Connection, kind: str | None = None, contact_id: int | None = None, limit: int = LOG_LIMIT
) -> list[Row[Any]]:
    """Outbox messages (emails or outgoing webhooks), newest first."""
    t = schema.outbox
    where = []
    if kind is not None:
        where.append(t.c.kind == kind)
    if contact_id is not None:
        where.append(t.c.contact_id == contact_id)
    return _newest(conn, t, *where, limit=limit)


def deliveries(conn: Connection, limit: int = LOG_LIMIT) -> list[Row[Any]]:
    """Outbound delivery attempts with their message's kind and target, newest first."""
    d, o = schema.auto_deliveries, schema.outbox
    query = (
        select(d, o.c.kind, o.c.payload)
        .join(o, o.c.id == d.c.outbox_id)
        .order_by(d.c.id.desc())
        .limit(limit)
    )
    return list(conn.execute(query))


def inbound_webhooks(conn: Connection, limit: int = LOG_LIMIT) -> list[Row[Any]]:
    """Signed ``/hooks/*`` events applied (their dedupe records), newest first."""
    t = schema.operations
    return _newest(conn, t, cast(t.c.kind, String).like("webhook:%"), limit=limit)


def stripe_events(conn: Connection, limit: int = LOG_LIMIT) -> list[Row[Any]]:
    """Stripe events received, newest first."""
    t = schema.stripe_events
    query = select(t).order_by(t.c.received_at.desc(), t.c.event_id).limit(limit)
    return list(conn.execute(query))


def audit_trail(
    conn: Connection, contact_id: int | None = None, limit: int = LOG_LIMIT
) -> list[Row[Any]]:
    """Admin changes recorded in the audit trail, newest first (of one contact, when given)."""
    t = schema.audit_log
    where = [] if contact_id is None else [t.c.contact_id == contact_id]
    return _newest(conn, t, *where, limit=limit)
