"""Loyalty: points are grants of the ``Points`` credit field, with the loyalty policy.

An award is a grant (source ``loyalty``, promotional) that is *pending* until
``available_after`` has passed (so points for a purchase returned within the window can be
cancelled before they count, see :func:`remove`), then active in the ``Points`` balance until ``expire_after`` from the day it was earned.
Starting and expiring are the store's grant passes (:func:`expiry.start_due`,
:func:`expiry.expire_due`), each a ledger entry in the worker's transaction; spending is a ledger
debit, which takes from the grants expiring first. There is no loyalty-specific lot code: the
points are traced, verified and refunded like any credit.

An award may set its own wait (``"now"``: available at once). Removing points (:func:`remove`)
first lowers pending awards, newest first, so the points of a returned order never become
available; the rest is a ledger debit with its reason. It takes what the contact has, up to the
amount: a balance never goes below zero (the ledger's check constraint refuses it for every
field), and the answer says how many points were taken.

Stages (Bronze/Silver/Gold by default) follow *lifetime* points: every loyalty point that
entered the balance, kept with the stage in ``loyalty_stages``. A referral is recorded in
``loyalty_referrals``, once per referred contact: *made* (:func:`make_referral`), then
*approved* (:func:`approve_referral`; approving one never made records both). Events recorded
here, in the transaction of the change: ``points_changed`` (data ``points``, ``points_pending``,
``points_lifetime``: what ``field_above`` rules watch), ``stage_changed`` (``from``, ``to``),
``referral_made`` and ``referral_approved`` (``referred_id``, for the referrer).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shortcodes.automations.rules import LoyaltyConfig
from shortcodes.errors import InsufficientCredits, InsufficientPoints, InvalidInput
from shortcodes.membership import vocabulary as vocab
from shortcodes.store import contacts, entries, expiry, grants, ledger
from shortcodes.store import schema as db
from shortcodes.store.events import record_event
from shortcodes.store.grants import GrantSpec
from shortcodes.store.idempotency import once
from shortcodes.store.session import Actor, Tx

#: The credit field that holds loyalty points.
FIELD = "Points"
#: "Expiring" points in the summary: those of grants that expire within this window.
EXPIRING_WITHIN = vocab.duration("30d")
ACTOR = Actor("automation", "loyalty")
#: How long an award stays pending: a duration, "now", or None for ``[loyalty] available_after``.
Wait = vocab.Duration | Literal["now"] | None


@dataclass(frozen=True, slots=True)
class PointsSummary:
    """What a contact's points look like now (for shortcodes, previews and the CLI):
    ``expiring`` counts the available points whose grants expire within ``within``."""

    pending: int
    available: int
    lifetime: int
    stage: str
    expiring: int
    next_expiry: datetime | None
    within: vocab.Duration = EXPIRING_WITHIN
    #: When the next pending points become available (None when nothing is pending).
    next_available: datetime | None = None


@dataclass(frozen=True, slots=True)
class Removal:
    """What :func:`remove` did: the points asked for, those taken (``from_pending`` of them
    from pending awards), and the available points after it."""

    requested: int
    removed: int
    from_pending: int
    available: int
    replayed: bool = False


def _pending(conn: Connection, contact_id: int) -> int:
    g = db.credit_grants
    query = select(func.coalesce(func.sum(g.c.remaining), 0)).where(
        (g.c.contact_id == contact_id) & (g.c.field == FIELD) & (g.c.status == "pending")
    )
    return int(conn.execute(query).scalar_one())


def _lifetime(conn: Connection, contact_id: int) -> int:
    """Every loyalty point that entered the balance (the ``grant`` moves of loyalty grants):
    an award counts once it starts, and only what was left of it when it did."""
    g, m = db.credit_grants, db.grant_moves
    query = (
        select(func.coalesce(func.sum(m.c.delta), 0))
        .select_from(m.join(g, m.c.grant_id == g.c.id))
        .where(
            (g.c.contact_id == contact_id)
            & (g.c.field == FIELD)
            & (g.c.source == "loyalty")
            & (m.c.kind == "grant")
        )
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
    row = _stage_row(tx.conn, contact_id)
    # Points earned before grants existed (migration 0009 keeps them as the baseline).
    lifetime = _lifetime(tx.conn, contact_id) + (0 if row is None else int(row.baseline))
    stage = cfg.stage_for(lifetime)
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


def _check_points(points: Any) -> int:
    if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
        raise InvalidInput(f"points must be a positive whole number, got {points!r}")
    if points > ledger.MAX_AMOUNT:
        raise InvalidInput(f"points must be at most {ledger.MAX_AMOUNT}, got {points}")
    return points


def earn(
    tx: Tx,
    cfg: LoyaltyConfig,
    contact_id: int,
    points: int,
    key: str,
    reason: str = "",
    *,
    wait: Wait = None,
    actor: Actor = ACTOR,
) -> bool:
    """Award ``points`` once per ``key``: a grant pending for ``wait`` (None: the site's
    ``available_after``; ``"now"``: available at once). False when the key was used."""
    _check_points(points)
    contacts.lock_contact(tx, contact_id)
    wait = cfg.available_after if wait is None else wait
    spec = GrantSpec(
        "loyalty",
        "promotional",
        starts_at=None if isinstance(wait, str) else wait.after(tx.now),  # a str is "now"
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

            entries.apply_delta(
                tx, contact_id, FIELD, points, f"op:points:{key}#1",
                reason=reason or "loyalty points", actor=actor, operation_id=op_id, moves=made,
            )  # fmt: skip
        _record(tx, cfg, contact_id)
        return ledger.LedgerResult((), {})

    params = {"contact": contact_id, "points": points, "wait": str(wait)}
    result = ledger.keyed(tx, f"points:{key}", "earn", contact_id, params, actor, perform)
    return not result.replayed


def remove(
    tx: Tx,
    cfg: LoyaltyConfig,
    contact_id: int,
    points: int,
    key: str,
    reason: str,
    actor: Actor = ACTOR,
) -> Removal:
    """Take up to ``points`` back, once per ``key``: first from pending awards, newest first
    (points for a returned order never become available), then from the available points as
    one ledger entry with ``reason`` (the grants expiring first go first). Never below zero:
    with fewer points the contact loses what they have; with none, nothing is written."""
    _check_points(points)
    if not reason.strip():
        raise InvalidInput("removing points needs a reason (the ledger shows it)")
    contacts.lock_contact(tx, contact_id)

    def perform(op_id: int) -> dict[str, Any]:
        cancelled = _cancel_pending(tx, contact_id, points)
        take = min(points - cancelled, grants.usable(tx.conn, contact_id, FIELD, tx.now))
        entry_ids: list[int] = []
        if take:
            entry_id, _ = entries.apply_delta(
                tx, contact_id, FIELD, -take, f"op:points:{key}#1",
                reason=reason, actor=actor, operation_id=op_id,
            )  # fmt: skip
            entry_ids.append(entry_id)
        if cancelled or take:
            _record(tx, cfg, contact_id)
        return {"entry_ids": entry_ids, "removed": cancelled + take, "from_pending": cancelled}

    params = {"contact": contact_id, "points": -points, "reason": reason}
    done, replayed = once(tx, f"points:{key}", "remove", contact_id, params, actor, perform)
    available = ledger.balance(tx.conn, contact_id, FIELD)
    return Removal(points, int(done["removed"]), int(done["from_pending"]), available, replayed)


def _cancel_pending(tx: Tx, contact_id: int, points: int) -> int:
    """Lower the contact's pending awards by up to ``points``, newest first; how many. A pending
    grant is not in the balance yet, so this writes no ledger entry: the worker starts what is
    left of it (an award cancelled whole is marked expired and never starts)."""
    g = db.credit_grants
    rows = tx.conn.execute(
        select(g.c.id, g.c.remaining)
        .where(
            (g.c.contact_id == contact_id)
            & (g.c.field == FIELD)
            & (g.c.status == "pending")
            & (g.c.remaining > 0)
        )
        .order_by(g.c.id.desc())
    ).all()
    left = points
    for grant_id, remaining in rows:
        take = min(left, int(remaining))
        status = "expired" if take == remaining else "pending"
        tx.conn.execute(
            update(g)
            .where(g.c.id == grant_id)
            .values(remaining=g.c.remaining - take, status=status)
        )
        left -= take
        if not left:
            break
    return points - left


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
            entry_id, after = entries.apply_delta(
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


def make_referral(tx: Tx, referrer: int | str, referred: int | str) -> bool:
    """Record that ``referrer`` brought ``referred`` (not yet approved), once per referred
    contact, raising ``referral_made`` for the referrer. False when it was already recorded for
    this referrer; :class:`InvalidInput` when another contact referred them first."""
    referrer_id, referred_id = _pair(tx, referrer, referred)
    row = _referral(tx, referred_id)
    if row is not None:
        _same_referrer(row, referrer_id)
        return False
    t = db.loyalty_referrals
    tx.conn.execute(
        insert(t).values(referred_id=referred_id, referrer_id=referrer_id, made_at=tx.now)
    )
    record_event(tx, "referral_made", referrer_id, {"referred_id": referred_id})
    return True


def approve_referral(tx: Tx, referrer: int | str | None, referred: int | str) -> bool:
    """Approve the referral of ``referred`` (by ``referrer``; None: whoever made it), once per
    referred contact, raising ``referral_approved`` for the referrer. A referral never made is
    made and approved at once (both events). False when it was approved already."""
    if referrer is None:
        referred_id = contacts.lock_contact(tx, referred)
        row = _referral(tx, referred_id)
        if row is None:
            raise InvalidInput("no referral of this contact was made; name the referrer")
        referrer_id = int(row.referrer_id)
    else:
        referrer_id, referred_id = _pair(tx, referrer, referred)
        row = _referral(tx, referred_id)
    if row is None:
        make_referral(tx, referrer_id, referred_id)
    else:
        _same_referrer(row, referrer_id)
        if row.approved_at is not None:
            return False
    t = db.loyalty_referrals
    tx.conn.execute(update(t).where(t.c.referred_id == referred_id).values(approved_at=tx.now))
    record_event(tx, "referral_approved", referrer_id, {"referred_id": referred_id})
    return True


def _pair(tx: Tx, referrer: int | str, referred: int | str) -> tuple[int, int]:
    """The two contacts of a referral, locked in id order (so two referrals never deadlock)."""
    first = contacts.resolve_contact(tx.conn, referrer)
    second = contacts.resolve_contact(tx.conn, referred)
    if first == second:
        raise InvalidInput("a contact cannot refer themselves")
    contacts.lock_contacts(tx, (first, second))
    return first, second


def _referral(tx: Tx, referred_id: int) -> Any:
    t = db.loyalty_referrals
    return tx.conn.execute(select(t).where(t.c.referred_id == referred_id)).first()


def _same_referrer(row: Any, referrer_id: int) -> None:
    if int(row.referrer_id) != referrer_id:
        raise InvalidInput(f"contact {row.referred_id} was referred by another contact")


def summary(
    conn: Connection,
    cfg: LoyaltyConfig,
    contact_id: int,
    now: datetime,
    within: vocab.Duration = EXPIRING_WITHIN,
) -> PointsSummary:
    """Pending, available and lifetime points, the stage, what expires ``within`` from ``now``
    (30 days by default) and when pending points next become available (times naive UTC)."""
    g = db.credit_grants
    mine = (g.c.contact_id == contact_id) & (g.c.field == FIELD)
    soon = conn.execute(
        select(func.coalesce(func.sum(g.c.remaining), 0), func.min(g.c.expires_at)).where(
            mine
            & (g.c.status == "active")
            & (g.c.remaining > 0)
            & (g.c.expires_at > now)
            & (g.c.expires_at <= within.after(now))
        )
    ).one()
    pending = conn.execute(
        select(func.coalesce(func.sum(g.c.remaining), 0), func.min(g.c.starts_at)).where(
            mine & (g.c.status == "pending")
        )
    ).one()
    row = _stage_row(conn, contact_id)
    lifetime = 0 if row is None else int(row.lifetime)
    return PointsSummary(
        int(pending[0]),
        ledger.balance(conn, contact_id, FIELD),
        lifetime,
        cfg.stage_for(lifetime) if row is None else row.stage,
        int(soon[0]),
        soon[1],
        within,
        pending[1],
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
