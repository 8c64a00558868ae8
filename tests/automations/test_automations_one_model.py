"""One membership model: actionsets and rules share one step registry, one vocabulary and one
outbox payload. Each case here was a drift bug between the two copies that came before."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shortcodes.errors import ConfigError
from shortcodes.membership.config import SiteConfig, parse_config
from shortcodes.membership.steps import STEPS
from shortcodes.store import Store
from tests.support.automations import Harness
from tests.support.clock import MovableClock

SITE = """\
[credits]
fields = ["_Credits", "_Gems"]

[tags]
"Trial" = "access"
"Start" = "trigger"

[actionsets.month-pass]
title = "A month's pass"
steps = [
  { do = "grant", tag = "Trial", for = "1mo" },
  { do = "debit", amount = 0 },
  { do = "send_email", template = "hello" },
  { do = "webhook", url = "https://crm.example.com/hook" },
]

[[rules]]
name = "month-pass"
trigger = "tag_applied('Start')"
steps = [
  { do = "grant", tag = "Trial", for = "1mo" },
  { do = "credit", amount = 0 },
  { do = "send_email", template = "hello" },
  { do = "webhook", url = "https://crm.example.com/hook" },
]
"""


@pytest.fixture
def site() -> SiteConfig:
    return parse_config(SITE, "site.toml")


@pytest.fixture
def model(db_url: str, site: SiteConfig, clock: MovableClock, tmp_path: Path) -> Iterator[Harness]:
    with Store.from_url(db_url, site=site.actions, clock=clock, pool_size=4) as store:
        store.sync_tags()
        yield Harness(store, site.automations, clock, tmp_path / "instance")
        assert store.verify().ok


def test_a_grant_for_a_month_loads_in_an_actionset_and_in_a_rule(site: SiteConfig) -> None:
    button = site.actions.actionsets["month-pass"].steps[0]
    rule = site.automations.rules["month-pass"].steps[0]
    assert button.to_json() == rule.to_json() == {"do": "grant", "tag": "Trial", "for": "1mo"}


def test_a_month_grant_from_a_button_and_from_a_rule_ends_on_the_same_day(
    model: Harness, clock: MovableClock
) -> None:
    ann, bob = model.contact("ann@example.com"), model.contact("bob@example.com")
    assert model.store.run_actionset("month-pass", ann).outcome == "done"
    model.store.apply_tag(bob, "Start")  # records the tag_applied event the rule reacts to
    model.drain()
    assert "Trial" in model.tags(ann)
    assert "Trial" in model.tags(bob)
    clock.advance(days=30)  # January has 31 days: the month is not over yet
    assert "Trial" in model.tags(ann)
    assert "Trial" in model.tags(bob)
    clock.advance(days=2)
    assert "Trial" not in model.tags(ann)
    assert "Trial" not in model.tags(bob)


def test_an_amount_of_zero_moves_nothing_from_a_button_or_a_rule(model: Harness) -> None:
    ann = model.contact("ann@example.com", credits=7)
    model.store.run_actionset("month-pass", ann)
    model.store.apply_tag(ann, "Start")
    model.drain()
    history = model.store.history(ann, "_Credits").entries
    assert [(e.delta, e.reason) for e in history] == [(7, "opening balance")]


def test_emails_and_webhooks_have_one_payload_shape_from_buttons_and_rules(model: Harness) -> None:
    ann = model.contact("ann@example.com", credits=5)
    model.store.run_actionset("month-pass", ann)
    model.store.apply_tag(ann, "Start")
    model.drain()
    common = {
        "contact_id": ann,
        "email": "ann@example.com",
        "balances": {"_Credits": 5, "_Gems": 0},
    }
    button_email, rule_email = (dict(r.payload) for r in model.outbox("email"))
    button_hook, rule_hook = (dict(r.payload) for r in model.outbox("webhook"))
    for payload in (button_email, rule_email, button_hook, rule_hook):
        assert {k: payload[k] for k in common} == common
    assert (button_email["template"], button_email["subject"]) == ("hello", "")
    assert (rule_email["template"], rule_email["subject"]) == ("hello", "")
    assert (button_hook["event"], rule_hook["event"]) == (
        "actionset.month-pass",
        "rule.month-pass",
    )
    assert button_hook["url"] == rule_hook["url"] == "https://crm.example.com/hook"
    assert (button_email["action"], button_email["title"]) == ("month-pass", "A month's pass")
    assert (rule_email["rule"], rule_email["step"]) == ("month-pass", 2)


_ARGS = {
    "debit": '{ do = "debit", amount = 1 }',
    "credit": '{ do = "credit", amount = 1 }',
    "apply_tag": '{ do = "apply_tag", tag = "Trial" }',
    "remove_tag": '{ do = "remove_tag", tag = "Trial" }',
    "grant": '{ do = "grant", tag = "Trial", for = "2w" }',
    "set_field": '{ do = "set_field", field = "Level", value = 3 }',
    "send_email": '{ do = "send_email", template = "t" }',
    "webhook": '{ do = "webhook", url = "https://x.example/h" }',
    "redirect": '{ do = "redirect", url = "/thanks" }',
    "wait": '{ do = "wait", for = "1d" }',
    "remove_tag_after": '{ do = "remove_tag_after", tag = "Trial", after = "3d" }',
    "award_points": '{ do = "award_points", points = 5 }',
    "remove_points": '{ do = "remove_points", points = 5, reason = "returned" }',
}


def test_every_registered_step_kind_has_a_case_here() -> None:
    assert set(_ARGS) == set(STEPS)


@pytest.mark.parametrize("kind", sorted(_ARGS))
@pytest.mark.parametrize("where", ["actionset", "rule"])
def test_a_step_kind_loads_exactly_where_the_registry_allows_it(kind: str, where: str) -> None:
    head = '[tags]\n"Trial" = "access"\n'
    if where == "actionset":
        text = f"{head}[actionsets.a]\nsteps = [{_ARGS[kind]}]\n"
        key = "actionsets.a.steps[0].do"
    else:
        text = f'{head}[[rules]]\nname = "r"\ntrigger = "login"\nsteps = [{_ARGS[kind]}]\n'
        key = "rules.r.steps[0].do"
    if where in STEPS[kind].allowed:
        parse_config(text)
        return
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert (info.value.key, info.value.line) == (key, text.count("\n"))
    article = "an actionset" if where == "actionset" else "a rule"
    assert info.value.reason.startswith(f"{kind!r} cannot be a step of {article}: ")
