"""Loyalty: points lots that are earned, become available after a wait, expire, and raise stages.

Each award is a *lot*: ``pending`` until ``available_after`` has passed (so points for a purchase
refunded within the window never count), then ``available`` until ``expire_after`` from the day
it was earned, then ``expired``. Spending takes from the available lots that expire first. The
per-contact totals (``loyalty_accounts``) change in the same transaction as their lots, with a
``loyalty_moves`` row per change (keys unique, so an award or a spend never applies twice).

Stages (Bronze/Silver/Gold by default) follow *lifetime* points, counted when points become
available. Events recorded here, in the transaction of the change: ``points_changed`` (data
``points``, ``points_pending``, ``points_lifetime``: what ``field_above`` rules watch),
``stage_changed`` (``from``, ``to``) and ``referral_approved`` (``referred_id``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from shortcodes.automations.rules import LoyaltyConfig
from shortcodes.errors import InsufficientPoints, InvalidInput
from shortcodes.store import contacts
from shortcodes.store import schema as db
from shortcodes.store.events import record_event
from shortcodes.store.session import Tx

#: "Expiring" points in the summary: those of lots that expire within this window.
EXPIRING_WITHIN = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class PointsSummary:
    """What a contact's points look like now (for shortcodes, previews and the CLI)."""

    pending: int
    available: int
    lifetime: int
    stage: str
    expiring: int
    next_expiry: datetime | None


def _account(tx: Tx, contact_id: int, cfg: LoyaltyConfig) -> Any:
    t = db.loyalty_accounts
    row = tx.conn.execute(select(t).where(t.c.contact_id == contact_id)).first()
    if row is None:
        tx.conn.execute(
            insert(t).values(
                contact_id=contact_id,
                pending=0,
                available=0,
                lifetime=0,
                stage=cfg.stage_for(0),
                updated_at=tx.now,
            )
        )
        row = tx.conn.execute(select(t).where(t.c.contact_id == contact_id)).first()
    return row


def _change(tx: Tx, cfg: LoyaltyConfig, contact_id: int, **delta: int) -> None:
    """Apply deltas to the contact's totals, then record points_changed (and stage_changed)."""
    row = _account(tx, contact_id, cfg)
    pending = row.pending + delta.get("pending", 0)
    available = row.available + delta.get("available", 0)
    lifetime = row.lifetime + delta.get("lifetime", 0)
    stage = cfg.stage_for(lifetime)
    t = db.loyalty_accounts
    tx.conn.execute(
        update(t)
        .where(t.c.contact_id == contact_id)
        .values(
            pending=pending, available=available, lifetime=lifetime, stage=stage, updated_at=tx.now
        )
    )
    data = {"points": available, "points_pending": pending, "points_lifetime": lifetime}
    record_event(tx, "points_changed", contact_id, data)
    if stage != row.stage:
        record_event(tx, "stage_changed", contact_id, {"from": row.stage, "to": stage})


def _move(tx: Tx, contact_id: int, lot_id: int, kind: str, delta: int, key: str) -> None:
    tx.conn.execute(
        insert(db.loyalty_moves).values(
            contact_id=contact_id, lot_id=lot_id, kind=kind, delta=delta, key=key, created_at=tx.now
        )
    )


def earn(
    tx: Tx, cfg: LoyaltyConfig, contact_id: int, points: int, key: str, reason: str = ""
) -> bool:
    """Award ``points`` as a pending lot, once per ``key``; False when the key was used."""
    if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
        raise InvalidInput(f"points must be a positive whole number, got {points!r}")
    contacts.lock_contact(tx, contact_id)
    t = db.loyalty_lots
    if tx.conn.execute(select(t.c.id).where(t.c.key == key)).first() is not None:
        return False
    lot_id = tx.conn.execute(
        insert(t)
        .values(
            contact_id=contact_id,
            key=key,
            points=points,
            remaining=points,
            status="pending",
            reason=reason[:300],
            earned_at=tx.now,
            available_at=cfg.available_after.after(tx.now),
            expires_at=cfg.expire_after.after(tx.now),
        )
        .returning(t.c.id)
    ).scalar_one()
    _move(tx, contact_id, int(lot_id), "earn", points, f"{key}#earn")
    _change(tx, cfg, contact_id, pending=points)
    return True


def _due_lots(tx: Tx, status: str, due: Any, limit: int) -> list[Any]:
    """Lots in ``status`` whose ``due`` time has come, locked (skipping locked ones) on PostgreSQL."""
    t = db.loyalty_lots
    query = (
        select(t.c.id, t.c.contact_id, t.c.remaining)
        .where((t.c.status == status) & (due <= tx.now))
        .order_by(t.c.contact_id, t.c.id)
        .limit(limit)
    )
    return list(
        tx.conn.execute(query.with_for_update(skip_locked=True) if tx.is_postgres else query).all()
    )


def mature(tx: Tx, cfg: LoyaltyConfig, limit: int = 500) -> int:
    """Make pending lots whose wait is over available (and count them as lifetime points)."""
    t = db.loyalty_lots
    rows = _due_lots(tx, "pending", t.c.available_at, limit)
    for row in rows:
        contacts.lock_contact(tx, row.contact_id)
        tx.conn.execute(update(t).where(t.c.id == row.id).values(status="available"))
        _move(tx, row.contact_id, row.id, "available", row.remaining, f"lot:{row.id}#available")
        _change(
            tx, cfg, row.contact_id,
            pending=-row.remaining, available=row.remaining, lifetime=row.remaining,
        )  # fmt: skip
    return len(rows)


def expire(tx: Tx, cfg: LoyaltyConfig, limit: int = 500) -> int:
    """Expire available lots past their date; what was left of them leaves the balance."""
    t = db.loyalty_lots
    rows = _due_lots(tx, "available", t.c.expires_at, limit)
    for row in rows:
        contacts.lock_contact(tx, row.contact_id)
        tx.conn.execute(update(t).where(t.c.id == row.id).values(status="expired", remaining=0))
        if row.remaining:
            _move(tx, row.contact_id, row.id, "expire", -row.remaining, f"lot:{row.id}#expire")
            _change(tx, cfg, row.contact_id, available=-row.remaining)
    return len(rows)


def spend(tx: Tx, cfg: LoyaltyConfig, contact_id: int, points: int, key: str) -> bool:
    """Take ``points`` from the lots expiring first, once per ``key``; False on a replay.

    Raises :class:`InsufficientPoints` (nothing taken) when fewer points are available.
    """
    if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
        raise InvalidInput(f"points must be a positive whole number, got {points!r}")
    contacts.lock_contact(tx, contact_id)
    if tx.conn.execute(
        select(db.loyalty_moves.c.id).where(db.loyalty_moves.c.key == f"{key}#1")
    ).first():
        return False
    t = db.loyalty_lots
    lots = tx.conn.execute(
        select(t.c.id, t.c.remaining)
        .where((t.c.contact_id == contact_id) & (t.c.status == "available") & (t.c.remaining > 0))
        .where(t.c.expires_at > tx.now)
        .order_by(t.c.expires_at, t.c.id)
    ).all()
    have = sum(lot.remaining for lot in lots)
    if have < points:
        raise InsufficientPoints(points, have)
    left = points
    for n, lot in enumerate(lots, start=1):
        take = min(left, lot.remaining)
        tx.conn.execute(update(t).where(t.c.id == lot.id).values(remaining=lot.remaining - take))
        _move(tx, contact_id, lot.id, "spend", -take, f"{key}#{n}")
        left -= take
        if not left:
            break
    _change(tx, cfg, contact_id, available=-points)
    return True


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
    row = conn.execute(
        select(db.loyalty_accounts).where(db.loyalty_accounts.c.contact_id == contact_id)
    ).first()
    t = db.loyalty_lots
    soon = conn.execute(
        select(func.coalesce(func.sum(t.c.remaining), 0), func.min(t.c.expires_at)).where(
            (t.c.contact_id == contact_id)
            & (t.c.status == "available")
            & (t.c.remaining > 0)
            & (t.c.expires_at <= now + EXPIRING_WITHIN)
        )
    ).one()
    if row is None:
        return PointsSummary(0, 0, 0, cfg.stage_for(0), 0, None)
    return PointsSummary(
        int(row.pending), int(row.available), int(row.lifetime), row.stage, int(soon[0]), soon[1]
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
