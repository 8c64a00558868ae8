"""The demo site's masterclass arrives as a drip (``masterclass-drip`` in site/site.toml): a
welcome when it is bought, then a lesson a day of ownership, each sent once, on SQLite and
PostgreSQL with a moved clock."""

from __future__ import annotations

import pytest

from shortcodes.automations import AutomationConfig, parse_automations
from shortcodes.store import Actor
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
