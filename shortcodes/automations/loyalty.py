"""Loyalty: points are grants of the ``Points`` credit field, with the loyalty policy.

An award is a grant (source ``loyalty``, promotional) that is *pending* until
``available_after`` has passed (so points for a purchase refunded within the window never
count), then active in the ``Points`` balance until ``expire_after`` from the day it was earned.
Starting and expiring are the store's grant passes (:func:`expiry.start_due`,
:func:`expiry.expire_due`), each a ledger entry in the worker's transaction; spending is a ledger
debit, which takes from the grants expiring first. There is no loyalty-specific lot code: the
points are traced, verified and refunded like any credit.

Stages (Bronze/Silver/Gold by default) follow *lifetime* points: the sum of every loyalty grant
that has started, kept with the stage in ``loyalty_stages``. Events recorded here, in the
transaction of the change: ``points_changed`` (data ``points``, ``points_pending``,
``points_lifetime``: what ``field_above`` rules watch), ``stage_changed`` (``from``, ``to``) and
``referral_approved`` (``referred_id``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shortcodes.automations.rules import LoyaltyConfig
from shortcodes.errors import InsufficientCredits, InsufficientPoints, InvalidInput
from shortcodes.store import contacts, expiry, grants, ledger
from shortcodes.store import schema as db
from shortcodes.store.events import record_event
from shortcodes.store.grants import GrantSpec
from shortcodes.store.session import Actor, Tx

#: The credit field that holds loyalty points.
FIELD = "Points"
#: "Expiring" points in the summary: those of grants that expire within this window.
EXPIRING_WITHIN = timedelta(days=30)
ACTOR = Actor("automation", "loyalty")


@dataclass(frozen=True, slots=True)
class PointsSummary:
    """What a contact's points look like now (for shortcodes, previews and the CLI)."""

    pending: int
    available: int
    lifetime: int
    stage: str
    expiring: int
    next_expiry: datetime | None


def _pending(conn: Connection, contact_id: int) -> int:
    g = db.credit_grants
    query = select(func.coalesce(func.sum(g.c.remaining), 0)).where(
        (g.c.contact_id == contact_id) & (g.c.field == FIELD) & (g.c.status == "pending")
    )
    return int(conn.execute(query).scalar_one())


def _lifetime(conn: Connection, contact_id: int) -> int:
    g = db.credit_grants
    query = select(func.coalesce(func.sum(g.c.amount), 0)).where(
        (g.c.contact_id == contact_id)
        & (g.c.field == FIELD)
        & (g.c.source == "loyalty")
        & (g.c.status != "pending")
    )
    return int(conn.execute(query).scalar_one())


def _stage_row(conn: Connection, contact_id: int) -> Any:
    t = db.loyalty_stages
    return conn.execute(select(t).where(t.c.contact_id == contact_id)).first()


def changed(cfg: LoyaltyConfig) -> expiry.Changed:
    """The callback the grant passes call when a contact's field changed: for ``Points``,
    update lifetime and stage and record ``points_changed`` (and ``stage_changed``)."""

    def after(tx: Tx, contact_id: int, field: str) -> None:
        if field == FIELD:
            _record(tx, cfg, contact_id)

    return after


def _record(tx: Tx, cfg: LoyaltyConfig, contact_id: int) -> None:
    lifetime = _lifetime(tx.conn, contact_id)
    stage = cfg.stage_for(lifetime)
    row = _stage_row(tx.conn, contact_id)
    before = cfg.stage_for(0) if row is None else row.stage
    # Stages never fall back: expiry lowers points, never lifetime (only started grants count).
    t = db.loyalty_stages
    insert_class = postgresql.insert if tx.is_postgres else sqlite.insert
    values = {"contact_id": contact_id, "lifetime": lifetime, "stage": stage, "updated_at": tx.now}
    stmt = insert_class(t).values(values)
    tx.conn.execute(stmt.on_conflict_do_update(index_elements=[t.c.contact_id], set_=dict(values)))
    data = {
        "points": ledger.balance(tx.conn, contact_id, FIELD),
        "points_pending": _pending(tx.conn, contact_id),
        "points_lifetime": lifetime,
    }
    record_event(tx, "points_changed", contact_id, data)
    if stage != before:
        record_event(tx, "stage_changed", contact_id, {"from": before, "to": stage})


def earn(
    tx: Tx, cfg: LoyaltyConfig, contact_id: int, points: int, key: str, reason: str = ""
) -> bool:
    """Award ``points`` as a pending grant, once per ``key``; False when the key was used."""
    if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
        raise InvalidInput(f"points must be a positive whole number, got {points!r}")
    contacts.lock_contact(tx, contact_id)
    spec = GrantSpec(
        "loyalty",
        "promotional",
        starts_at=cfg.available_after.after(tx.now),
        expires_at=cfg.expire_after.after(tx.now),
    )

    def perform(op_id: int) -> ledger.LedgerResult:
        values = grants.row_values(
            tx, contact_id, FIELD, points, spec, reason or "loyalty points", operation_id=op_id
        )
        if values["status"] == "pending":
            grants.create(tx, values, None)
        else:  # no waiting period: the points are available at once

            def made(entry_id: int) -> None:
                grants.create(tx, values, entry_id)

            ledger.apply_delta(
                tx, contact_id, FIELD, points, f"op:points:{key}#1",
                reason=reason or "loyalty points", actor=ACTOR, operation_id=op_id, moves=made,
            )  # fmt: skip
        _record(tx, cfg, contact_id)
        return ledger.LedgerResult((), {})

    params = {"contact": contact_id, "points": points}
    result = ledger.keyed(tx, f"points:{key}", "earn", contact_id, params, ACTOR, perform)
    return not result.replayed


def mature(tx: Tx, cfg: LoyaltyConfig, limit: int = 200) -> int:
    """Start pending grants whose wait is over (every field; points also count as lifetime)."""
    return expiry.start_due(tx, limit, changed(cfg))


def expire(tx: Tx, cfg: LoyaltyConfig, limit: int = 200) -> int:
    """Expire grants past their date (every field); what was left leaves the balance."""
    return expiry.expire_due(tx, limit, changed(cfg))


def spend(tx: Tx, cfg: LoyaltyConfig, contact_id: int, points: int, key: str) -> bool:
    """Take ``points`` from the grants expiring first, once per ``key``; False on a replay.

    Raises :class:`InsufficientPoints` (nothing taken) when fewer points are available.
    """
    if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
        raise InvalidInput(f"points must be a positive whole number, got {points!r}")
    contacts.lock_contact(tx, contact_id)

    def perform(op_id: int) -> ledger.LedgerResult:
        try:
            entry_id, after = ledger.apply_delta(
                tx, contact_id, FIELD, -points, f"op:points:{key}#1",
                reason="points spent", actor=ACTOR, operation_id=op_id,
            )  # fmt: skip
        except InsufficientCredits as exc:
            raise InsufficientPoints(points, int(exc.balance)) from None
        _record(tx, cfg, contact_id)
        return ledger.LedgerResult((entry_id,), {FIELD: after})

    params = {"contact": contact_id, "points": -points}
    result = ledger.keyed(tx, f"points:{key}", "spend", contact_id, params, ACTOR, perform)
    return not result.replayed


def approve_referral(tx: Tx, referrer: int | str, referred: int | str) -> bool:
    """Record that ``referrer`` brought ``referred``; once per referred contact.

    Raises ``referral_approved`` for the referrer; False when this contact was already referred.
    """
    referrer_id = contacts.lock_contact(tx, referrer)
    referred_id = contacts.lock_contact(tx, referred)
    if referrer_id == referred_id:
        raise InvalidInput("a contact cannot refer themselves")
    t = db.loyalty_referrals
    if tx.conn.execute(select(t.c.referrer_id).where(t.c.referred_id == referred_id)).first():
        return False
    tx.conn.execute(
        insert(t).values(referred_id=referred_id, referrer_id=referrer_id, approved_at=tx.now)
    )
    record_event(tx, "referral_approved", referrer_id, {"referred_id": referred_id})
    return True


def summary(conn: Connection, cfg: LoyaltyConfig, contact_id: int, now: datetime) -> PointsSummary:
    """Pending, available, lifetime points, the stage, and what expires within 30 days."""
    g = db.credit_grants
    soon = conn.execute(
        select(func.coalesce(func.sum(g.c.remaining), 0), func.min(g.c.expires_at)).where(
            (g.c.contact_id == contact_id)
            & (g.c.field == FIELD)
            & (g.c.status == "active")
            & (g.c.remaining > 0)
            & (g.c.expires_at > now)
            & (g.c.expires_at <= now + EXPIRING_WITHIN)
        )
    ).one()
    row = _stage_row(conn, contact_id)
    lifetime = 0 if row is None else int(row.lifetime)
    return PointsSummary(
        _pending(conn, contact_id),
        ledger.balance(conn, contact_id, FIELD),
        lifetime,
        cfg.stage_for(lifetime) if row is None else row.stage,
        int(soon[0]),
        soon[1],
    )


def fields(conn: Connection, cfg: LoyaltyConfig, contact_id: int, now: datetime) -> dict[str, Any]:
    """The points as contact fields (``Points``, ``PointsPending``, ...) for conditions and pages."""
    s = summary(conn, cfg, contact_id, now)
    return {
        "Points": s.available,
        "PointsPending": s.pending,
        "PointsLifetime": s.lifetime,
        "PointsExpiring": s.expiring,
        "Stage": s.stage,
    }
