"""The demo site's own rules (site/site.toml), on SQLite and PostgreSQL with a moved clock: the
masterclass arrives as a drip (a welcome when it is bought, then a lesson a day of ownership,
each sent once), and payments earn loyalty points that wait out the refund window."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from shortcodes.automations import AutomationConfig, loyalty, parse_automations
from shortcodes.membership import vocabulary as vocab
from shortcodes.store import Actor
from shortcodes.store import schema as db
from shortcodes.store.session import Tx
from tests.support.automations import Harness
from tests.support.paths import SITE


@pytest.fixture(scope="module")
def config() -> AutomationConfig:
    """The demo site's own rules, tags and actionsets."""
    path = SITE / "site.toml"
    return parse_automations(path.read_text(encoding="utf-8"), str(path))


def sent(harness: Harness) -> list[str]:
    """The templates of every queued email, oldest first."""
    return [row.payload["template"] for row in harness.outbox()]


def test_the_demo_masterclass_sends_a_welcome_then_a_lesson_a_day_each_once(
    harness: Harness,
) -> None:
    ann = harness.contact("ann@example.com", credits=300)
    bought = harness.store.run_actionset("buy-masterclass", ann, {}, "n-1", Actor("visitor", "a"))
    assert bought.message == "Unlocked Masterclass — 100 credits left"
    harness.drain()
    assert sent(harness) == ["masterclass-day-1"]
    harness.advance(hours=23, minutes=59)
    assert sent(harness) == ["masterclass-day-1"]
    harness.advance(minutes=1)
    assert sent(harness) == ["masterclass-day-1", "masterclass-day-2"]
    harness.advance(days=1)
    harness.advance(days=30)
    assert sent(harness) == ["masterclass-day-1", "masterclass-day-2", "masterclass-day-3"]
    # Released by the drip, once each, a day of ownership apart.
    r = db.drip_releases
    with harness.store.engine.connect() as conn:
        rows = conn.execute(select(r.c.item, r.c.active_us).order_by(r.c.active_us)).all()
    day = 86_400 * 10**6
    assert [tuple(row) for row in rows] == [
        ("masterclass-welcome", 0),
        ("masterclass-lesson-2", day),
        ("masterclass-lesson-3", 2 * day),
    ]


def points(harness: Harness, contact_id: int) -> tuple[int, int]:
    """(pending, available) loyalty points of the contact now."""

    def read(tx: Tx) -> tuple[int, int]:
        window = vocab.duration("30d")
        found = loyalty.summary(tx.conn, harness.config.loyalty, contact_id, tx.now, window)
        return found.pending, found.available

    return harness.store.run_in_transaction(read)


def test_a_demo_payment_earns_25_points_available_after_the_14_day_refund_window(
    harness: Harness,
) -> None:
    ann = harness.contact("ann@example.com")
    harness.event("payment_succeeded", ann, {"product": "credits-50", "payment_id": "p1"})
    harness.drain()
    assert points(harness, ann) == (25, 0)
    harness.advance(days=13, hours=23)
    assert points(harness, ann) == (25, 0)
    harness.advance(hours=1)
    assert points(harness, ann) == (0, 25)


def test_a_demo_refund_within_the_window_cancels_the_payments_points_before_they_arrive(
    harness: Harness,
) -> None:
    ann = harness.contact("ann@example.com")
    harness.event("payment_succeeded", ann, {"product": "credits-50", "payment_id": "p1"})
    harness.event("payment_succeeded", ann, {"product": "credits-120", "payment_id": "p2"})
    harness.advance(days=3)
    harness.event("refunded", ann, {"product": "credits-120", "payment_id": "p2"})
    harness.drain()
    assert points(harness, ann) == (25, 0)
    harness.advance(days=30)
    assert points(harness, ann) == (0, 25)
