"""Credit alerts end to end on SQLite and PostgreSQL: ``balance_below`` fires on each change that
crosses the threshold downwards; ``credits_expiring`` fires once per grant and rule; the worker
expires what is left as a ledger entry."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from shortcodes.automations import AutomationConfig, parse_automations
from shortcodes.errors import ConfigError
from shortcodes.store.grants import GrantSpec
from tests.support.automations import Harness

ALERTS_TOML = """\
[credits]
fields = ["_Credits", "Cash"]

[credits.policy.Cash]
decimals = 2

[[rules]]
name = "low-balance"
trigger = "balance_below(_Credits, 20)"
steps = [{ do = "send_email", template = "low-balance" }]

[[rules]]
name = "low-cash"
trigger = "balance_below(Cash, 2.5)"
steps = [{ do = "send_email", template = "low-cash" }]

[[rules]]
name = "expiring"
trigger = "credits_expiring(_Credits, 7d)"
steps = [{ do = "send_email", template = "credits-expiring" }]
"""


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> AutomationConfig:
    """A site with the two alert triggers (and a field with decimals)."""
    path: Path = tmp_path_factory.mktemp("alerts") / "site.toml"
    path.write_text(ALERTS_TOML, encoding="utf-8")
    return parse_automations(ALERTS_TOML, str(path))


def test_balance_below_fires_on_every_change_that_crosses_the_threshold_downwards(
    harness: Harness,
) -> None:
    ann = harness.contact("ann@example.com", credits=30)
    store = harness.store
    for change in (-5, -10, -2, +20, -20, -1):  # 25, 15 (cross), 13, 33, 13 (cross), 12
        if change > 0:
            store.credit(ann, change)
        else:
            store.debit(ann, -change)
    harness.drain()
    assert len(harness.runs("low-balance")) == 2
    assert [e["template"] for e in harness.emails()] == ["low-balance", "low-balance"]


def test_balance_below_compares_decimal_fields_exactly(harness: Harness) -> None:
    ann = harness.contact("ann@example.com")
    harness.store.credit(ann, "2.50", "Cash")
    harness.store.debit(ann, "0.01", "Cash")  # 2.49 < 2.5: crossed
    harness.store.credit(ann, "0.01", "Cash")  # back to 2.50, which is not below 2.5
    harness.store.debit(ann, "0.50", "Cash")  # 2.00: crossed again
    harness.drain()
    assert len(harness.runs("low-cash")) == 2


def test_credits_expiring_fires_once_per_grant_then_the_worker_expires_it(
    harness: Harness,
) -> None:
    ann = harness.contact("ann@example.com")
    now = harness.clock()
    harness.store.credit(ann, 40, reason="bonus", grant=GrantSpec(expires_at=now + timedelta(10)))
    harness.store.credit(ann, 15, reason="forever")
    harness.drain()
    assert harness.runs("expiring") == []
    harness.advance(days=4)  # 6 days left: within 7
    harness.advance(days=1)
    runs = harness.runs("expiring")
    assert len(runs) == 1
    trigger = runs[0].data["trigger"]
    assert (trigger["event"], trigger["field"], trigger["amount"]) == (
        "credits_expiring",
        "_Credits",
        "40",
    )
    assert trigger["expires_at"] == "2026-01-11 12:00:00"
    assert [e["template"] for e in harness.emails()] == ["credits-expiring"]
    harness.advance(days=6)
    assert harness.store.balance(ann) == 15
    expired = harness.store.history(ann).entries[0]
    assert (expired.delta, expired.balance_after) == (-40, 15)
    assert len(harness.runs("expiring")) == 1
    assert harness.runs("low-balance")  # the expiry took the balance below 20: an alert too


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        ("balance_below(_Credits)", "needs the argument 'value'"),
        ("balance_below(_Credits, lots)", "balance_below needs a number to cross, got 'lots'"),
        ("credits_expiring(_Credits, soon)", "duration"),
        ("credits_expiring()", "needs the argument 'field'"),
    ],
)
def test_malformed_alert_triggers_are_config_errors(trigger: str, message: str) -> None:
    text = f'[credits]\nfields = ["_Credits"]\n\n[[rules]]\nname = "x"\ntrigger = "{trigger}"\n'
    text += 'steps = [{ do = "send_email", template = "t" }]\n'
    with pytest.raises(ConfigError) as caught:
        parse_automations(text, "site.toml")
    assert "site.toml:6:" in str(caught.value)
    assert message in str(caught.value)
