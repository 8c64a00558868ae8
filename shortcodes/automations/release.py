"""Drip releases: each member's drip position in the store, moved exactly once.

A drip rule's trigger *starts* a member's drip (:func:`start`, from the dispatcher; a second
trigger never starts it over). From then on a ``drip_states`` row keeps the member's
:class:`~shortcodes.automations.drip.Clock`, and three things move it, each inside one
transaction that holds the row's lock:

- the dispatcher, for each ``tag_applied``/``tag_removed`` event of an access tag
  (:func:`settle_events`): the clock settles at the *event's* time, so a lapse pauses the
  count when it happened, not when the worker noticed;
- the worker's pass (:func:`advance_due`), for rows whose ``next_at`` has come: a release, or
  the end of a grant that gave access (a lapse with no event);
- the preview, inside its rolled-back transaction.

A release (:func:`_release`) inserts the ``drip_releases`` row (unique per rule, member and item:
the one place that says an item went out), records the ``unlocked`` event rules hang emails on,
and starts the run of the item's steps with a dedupe key of its own; the position is saved in the
same transaction. Killed at any moment, the transaction happened completely or not at all, and a
second worker skips the locked row (PostgreSQL) or waits for the lease (SQLite).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from shortcodes.automations import executor
from shortcodes.automations.drip import Access, Clock, Drip, DripItem
from shortcodes.automations.rules import AutomationConfig, Rule, Trigger
from shortcodes.store import schema as db
from shortcodes.store.events import caused_by, record_event
from shortcodes.store.session import Tx

#: Events whose tag may be a drip's access tag (the dispatcher settles drips on them).
ACCESS_EVENTS = ("tag_applied", "tag_removed")
#: What the events of a drip's own changes are called (the preview reads them back).
DRIP_EVENTS = ("drip_started", "drip_paused", "drip_resumed", "unlocked")
#: Settle points one transaction follows for one member at most (a guard, never reached by a
#: drip of sane size: each point releases an item or changes access).
MAX_POINTS = 1000

_d, _r = db.drip_states, db.drip_releases


def drip_rules(config: AutomationConfig) -> list[Rule]:
    """The rules that have a drip, in file order."""
    return [rule for rule in config.rules.values() if rule.drip is not None]


def access(tx: Tx, drip: Drip, contact_id: int) -> Access:
    """The member's access as the clock asks for it, from their access tags' rows now.

    A tag row says since when it is held (``applied_at``) and until when (``expires_at``); a
    removed tag has no row, and its removal is a settle point of its own (the dispatcher's)."""
    ct, t = db.contact_tags, db.tags
    names = [name.casefold() for name in drip.access]
    rows = tx.conn.execute(
        select(ct.c.applied_at, ct.c.expires_at)
        .join(t, t.c.id == ct.c.tag_id)
        .where((ct.c.contact_id == contact_id) & t.c.name_key.in_(names))
    ).all()
    spans = [(row.applied_at, row.expires_at) for row in rows]

    def held_at(at: datetime) -> list[datetime | None]:
        return [end for start, end in spans if start <= at and (end is None or end > at)]

    def until(at: datetime) -> datetime | None:
        ends = held_at(at)
        return None if not ends or None in ends else max(e for e in ends if e is not None)

    return Access(lambda at: bool(held_at(at)), until)


@dataclass
class Position:
    """A member's locked drip row as a clock, with what is needed to move and save it."""

    rule: Rule
    contact_id: int
    clock: Clock
    access: Access

    @property
    def drip(self) -> Drip:
        """The rule's drip."""
        assert self.rule.drip is not None
        return self.rule.drip


def _cause(rule: Rule) -> dict[str, Any]:
    """What a drip's events name as their cause: the drip rule, the start of a chain."""
    return {"rule": rule.name, "run_id": None, "chain": [rule.name]}


def _at(value: datetime) -> str:
    return value.isoformat(sep=" ", timespec="seconds")


def _record(tx: Tx, pos: Position, kind: str, at: datetime, **extra: Any) -> None:
    data = {
        "rule": pos.rule.name,
        "at": _at(at),
        "active_us": pos.clock.banked // timedelta(microseconds=1),
        **extra,
    }
    with caused_by(_cause(pos.rule)):
        record_event(tx, kind, pos.contact_id, data)


# -- starting ----------------------------------------------------------------------------------


def start(tx: Tx, config: AutomationConfig, rule: Rule, contact_id: int, at: datetime) -> bool:
    """Start the member's drip of ``rule`` at ``at`` (the trigger's time), when its conditions
    hold; False when it had started before (it is then only settled) or conditions fail."""
    assert rule.drip is not None
    if not executor.condition_holds(tx, config, rule, contact_id):
        return False
    at = min(at, tx.now)
    dialect_insert = postgresql.insert if tx.is_postgres else sqlite.insert
    row = {
        "rule": rule.name,
        "contact_id": contact_id,
        "started_at": at,
        "since": at,
        "active": False,
        "active_us": 0,
        "next_at": at,
        "status": "running",
    }
    insert = dialect_insert(_d).values(**row).on_conflict_do_nothing().returning(_d.c.rule)
    fresh = tx.conn.execute(insert).first() is not None
    pos = _lock(tx, rule, contact_id)
    if pos is None:
        return False
    if not fresh:
        _settle(tx, pos, at)
        _save(tx, pos)
        return False
    pos.clock.active = pos.access.holds(at)
    pos.clock.plan(pos.access)
    _record(tx, pos, "drip_started", at, active=pos.clock.active)
    _advance(tx, pos, at)
    _save(tx, pos)
    return True


# -- settling on access changes ------------------------------------------------------------------


def settle_events(tx: Tx, config: AutomationConfig, event: Any) -> int:
    """Settle the member's drips whose access tag the event names, at the event's time;
    how many drips it paused or resumed."""
    if event.kind not in ACCESS_EVENTS or event.contact_id is None:
        return 0
    tag = str(event.data.get("tag", "")).casefold()
    changed = 0
    for rule in drip_rules(config):
        assert rule.drip is not None
        if tag not in {name.casefold() for name in rule.drip.access}:
            continue
        pos = _lock(tx, rule, int(event.contact_id))
        if pos is not None:
            changed += _settle(tx, pos, event.created_at)
            _save(tx, pos)
    return changed


def _settle(tx: Tx, pos: Position, at: datetime) -> int:
    """Follow the clock up to ``at``, then look at access at ``at``; 1 on a pause or resume."""
    _advance(tx, pos, at)
    change = pos.clock.settle(at, pos.access)
    if change is not None:
        _record(tx, pos, f"drip_{change}", pos.clock.since)
    pos.clock.plan(pos.access)
    _advance(tx, pos, at)
    return int(change is not None)


# -- the worker's pass -------------------------------------------------------------------------


def advance_due(tx: Tx, config: AutomationConfig, limit: int = 100) -> int:
    """Move up to ``limit`` drips whose ``next_at`` has come (skipping rows another worker
    holds, on PostgreSQL); how many releases, pauses and resumes that made."""
    rules = {rule.name: rule for rule in drip_rules(config)}
    if not rules:
        return 0
    query = (
        select(_d.c.rule, _d.c.contact_id)
        .where((_d.c.next_at <= tx.now) & _d.c.rule.in_(sorted(rules)))
        .order_by(_d.c.next_at)
        .limit(limit)
    )
    if tx.is_postgres:
        query = query.with_for_update(skip_locked=True)
    done = 0
    for row in tx.conn.execute(query).all():
        pos = _lock(tx, rules[row.rule], int(row.contact_id))
        if pos is not None:
            done += _advance(tx, pos, tx.now)
            _save(tx, pos)
    return done


def advance_member(tx: Tx, rule: Rule, contact_id: int) -> int:
    """Move one member's drip of ``rule`` up to now (the preview's step); as :func:`advance_due`."""
    pos = _lock(tx, rule, contact_id)
    if pos is None:
        return 0
    done = _advance(tx, pos, tx.now)
    _save(tx, pos)
    return done


def _advance(tx: Tx, pos: Position, until: datetime) -> int:
    """Follow the clock's settle points up to ``until``: at each, bank the active time, note a
    lapse (a grant that ended), release what is due; how many releases and changes."""
    clock, count = pos.clock, 0
    for _ in range(MAX_POINTS):
        point = clock.next_at
        if point is None or point > until:
            break
        change = clock.settle(point, pos.access)
        if change is not None:
            _record(tx, pos, f"drip_{change}", clock.since)
            count += 1
        for item in clock.due():
            count += _release(tx, pos, item)
        clock.plan(pos.access)
    return count


def _release(tx: Tx, pos: Position, item: DripItem) -> int:
    """Release ``item``: its row, its ``unlocked`` event and the run of its steps; 0 when the
    row existed (it was released before)."""
    dialect_insert = postgresql.insert if tx.is_postgres else sqlite.insert
    clock = pos.clock
    row = {
        "rule": pos.rule.name,
        "contact_id": pos.contact_id,
        "item": item.name,
        "released_at": clock.since,
        "active_us": clock.banked // timedelta(microseconds=1),
    }
    clock.released.add(item.name)
    insert = dialect_insert(_r).values(**row).on_conflict_do_nothing().returning(_r.c.item)
    if tx.conn.execute(insert).first() is None:
        return 0
    _record(tx, pos, "unlocked", clock.since, item=item.name, drip=pos.rule.name)
    if item.steps:
        releases = Rule(pos.rule.name, Trigger("unlocked", {"item": item.name}), item.steps)
        trigger = {"event": "unlocked", "item": item.name, "drip": pos.rule.name}
        key = f"{pos.rule.name}:drip:{pos.contact_id}:{item.name}"
        with caused_by(_cause(pos.rule)):
            executor.start_run(tx, _NO_CONFIG, releases, pos.contact_id, key, trigger)
    return 1


#: Item runs have no conditions, so starting one reads nothing of the site's configuration.
_NO_CONFIG = AutomationConfig()


# -- rows ----------------------------------------------------------------------------------------


def _lock(tx: Tx, rule: Rule, contact_id: int) -> Position | None:
    """The member's drip row of ``rule``, locked (waiting for another holder), as a clock."""
    assert rule.drip is not None
    where = (_d.c.rule == rule.name) & (_d.c.contact_id == contact_id)
    query = select(_d).where(where)
    if tx.is_postgres:
        query = query.with_for_update()
    row = tx.conn.execute(query).first()
    if row is None:
        return None
    released = set(
        tx.conn.execute(
            select(_r.c.item).where((_r.c.rule == rule.name) & (_r.c.contact_id == contact_id))
        ).scalars()
    )
    clock = Clock(
        rule.drip,
        row.since,
        bool(row.active),
        timedelta(microseconds=int(row.active_us)),
        released,
        row.next_at,
    )
    return Position(rule, contact_id, clock, access(tx, rule.drip, contact_id))


def _save(tx: Tx, pos: Position) -> None:
    where = (_d.c.rule == pos.rule.name) & (_d.c.contact_id == pos.contact_id)
    tx.conn.execute(update(_d).where(where).values(**pos.clock.state()))


# -- reading -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DripStatus:
    """A member's drip as the preview and the admin read it."""

    rule: str
    started_at: datetime
    status: str
    active: timedelta
    released: tuple[str, ...]
    next_at: datetime | None


def status(tx: Tx, rule: Rule, contact_id: int) -> DripStatus | None:
    """The member's drip of ``rule``, or None when it has not started."""
    where = (_d.c.rule == rule.name) & (_d.c.contact_id == contact_id)
    row = tx.conn.execute(select(_d).where(where)).first()
    if row is None:
        return None
    released = tuple(
        tx.conn.execute(
            select(_r.c.item)
            .where((_r.c.rule == rule.name) & (_r.c.contact_id == contact_id))
            .order_by(_r.c.released_at, _r.c.item)
        ).scalars()
    )
    active = timedelta(microseconds=int(row.active_us))
    return DripStatus(rule.name, row.started_at, row.status, active, released, row.next_at)


def history(
    tx: Tx, rule: Rule, contact_id: int, after_id: int = 0
) -> Iterator[tuple[int, str, Any]]:
    """(event id, kind, data) of the member's drip events of ``rule``, oldest first."""
    e = db.events
    rows = tx.conn.execute(
        select(e.c.id, e.c.kind, e.c.data)
        .where((e.c.contact_id == contact_id) & e.c.kind.in_(DRIP_EVENTS) & (e.c.id > after_id))
        .order_by(e.c.id)
    )
    for row in rows:
        if row.data.get("rule") == rule.name:
            yield int(row.id), str(row.kind), row.data
