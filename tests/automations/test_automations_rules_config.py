"""Bad rules are refused on load with an error naming the file, line, rule and key."""

from __future__ import annotations

import pytest

from shortcodes.automations import parse_automations
from shortcodes.errors import ConfigError
from shortcodes.membership import vocabulary as vocab

HEAD = """\
[credits]
fields = ["_Credits"]

[tags]
"Member" = "membership"
"Lock" = "library"
"""


def load(rules: str) -> None:
    parse_automations(HEAD + rules, "site.toml")


def error(rules: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(rules)
    return info.value


def test_unknown_trigger_names_the_rule_the_key_and_the_known_triggers() -> None:
    exc = error(
        '[[rules]]\nname = "r1"\ntrigger = "tag_appplied(Member)"\nsteps = [{ do = "wait", for = "1d" }]\n'
    )
    assert exc.key == "rules.r1.trigger"
    assert "unknown trigger 'tag_appplied'" in str(exc)
    assert "tag_applied" in str(exc)
    assert str(exc).startswith("site.toml:9:1: rules.r1.trigger: unknown trigger")


def test_unknown_step_names_the_step_index_and_the_known_steps() -> None:
    exc = error(
        '[[rules]]\nname = "r2"\ntrigger = "login"\nsteps = [{ do = "wait", for = "1h" }, { do = "teleport" }]\n'
    )
    assert exc.key == "rules.r2.steps[1].do"
    assert "unknown step 'teleport'" in str(exc)
    assert "remove_tag_after" in str(exc)


@pytest.mark.parametrize("bad", ["14x", "0d", "-3d", "d14", "1.5d", "", "14 days"])
def test_a_bad_duration_is_refused_with_the_rule_and_key(bad: str) -> None:
    exc = error(
        f'[[rules]]\nname = "lock"\ntrigger = "login"\nsteps = [{{ do = "remove_tag_after", tag = "Lock", after = "{bad}" }}]\n'
    )
    assert exc.key == "rules.lock.steps[0].after"
    assert "a duration is a positive whole number and a unit" in str(exc)


@pytest.mark.parametrize(
    ("rules", "key", "words"),
    [
        (
            '[[rules]]\ntrigger = "login"\nsteps = [{ do = "wait", for = "1d" }]\n',
            "rules[0].name",
            "needs a name",
        ),
        (
            '[[rules]]\nname = "a"\nsteps = [{ do = "wait", for = "1d" }]\n',
            "rules.a.trigger",
            "missing",
        ),
        ('[[rules]]\nname = "a"\ntrigger = "login"\n', "rules.a.steps", "missing"),
        ('[[rules]]\nname = "a"\ntrigger = "login"\nsteps = []\n', "rules.a.steps", "at least one step"),
        (
            '[[rules]]\nname = "a"\ntrigger = "login"\nsteps = [{ do = "wait" }]\n',
            "rules.a.steps[0].for",
            "needs the argument 'for'",
        ),
        (
            '[[rules]]\nname = "a"\ntrigger = "tag_applied"\nsteps = [{ do = "wait", for = "1d" }]\n',
            "rules.a.trigger.tag",
            "needs the argument 'tag'",
        ),
        (
            '[[rules]]\nname = "a"\ntrigger = "field_above(points, lots)"\nsteps = [{ do = "wait", for = "1d" }]\n',
            "rules.a.trigger.value",
            "needs a number",
        ),
        (
            '[[rules]]\nname = "a"\ntrigger = "login"\nsteps = [{ do = "apply_tag", tag = "Nope" }]\n',
            "rules.a.steps[0].tag",
            "unknown tag 'Nope'",
        ),
        (
            '[[rules]]\nname = "a"\ntrigger = "login"\nsteps = [{ do = "credit", amount = "fifty" }]\n',
            "rules.a.steps[0].amount",
            "whole number",
        ),
        (
            '[[rules]]\nname = "a"\ntrigger = "login"\nsteps = [{ do = "credit", amount = 5, field = "_Gold" }]\n',
            "rules.a.steps[0].field",
            "unknown credit field",
        ),
        (
            '[[rules]]\nname = "a"\ntrigger = "login"\nsteps = [{ do = "redirect", url = "/x" }]\n',
            "rules.a.steps[0].do",
            "needs a visitor",
        ),
        (
            '[[rules]]\nname = "a"\ntrigger = "login"\nconditions = "has_tag(\'Member\') and"\nsteps = [{ do = "wait", for = "1d" }]\n',
            "rules.a.conditions",
            "column",
        ),
        (
            '[[rules]]\nname = "a"\ntrigger = "login"\nwhen = "x"\nsteps = [{ do = "wait", for = "1d" }]\n',
            "rules.a.when",
            "unknown key",
        ),
        (
            '[[rules]]\nname = "a"\ntrigger = "login"\nsteps = [{ do = "wait", for = "1d" }]\n[[rules]]\nname = "A"\ntrigger = "login"\nsteps = [{ do = "wait", for = "1d" }]\n',
            "rules.A.name",
            "another rule",
        ),
        (
            '[[rules]]\nname = "a"\ntrigger = "login"\nsteps = [{ do = "wait", for = "1d" }]\notherwise = [{ do = "wait", for = "1d" }]\n',
            "rules.a.otherwise",
            "need 'conditions'",
        ),
        ('[loyalty]\nexpire_after = "1 year"\n', "loyalty.expire_after", "duration"),
        ('[loyalty]\nstages = { Bronze = 0, Silver = "lots" }\n', "loyalty.stages", "write stages"),
        ('[automations]\nsmtp = "mail.example.com"\n', "automations.smtp", "smtp://"),
    ],
)
def test_malformed_rules_and_settings_name_their_key(rules: str, key: str, words: str) -> None:
    exc = error(rules)
    assert exc.key == key
    assert words in str(exc)
    assert str(exc).startswith("site.toml")


def test_a_valid_file_loads_every_trigger_form_and_keeps_steps_as_json() -> None:
    config = parse_automations(
        HEAD
        + """
[[rules]]
name = "text-form"
trigger = "field_above(Points, 200)"
steps = [{ do = "apply_tag", tag = "member" }, { do = "grant", tag = "Lock", for = "4mo" }]

[[rules]]
name = "table-form"
trigger = { on = "payment_succeeded", product = "monthly" }
conditions = "not has_tag('Member')"
steps = [{ do = "credit", amount = 50 }]
otherwise = [{ do = "send_email", template = "no" }]
""",
        "site.toml",
    )
    assert config.rules["text-form"].trigger.args == {"field": "Points", "value": 200}
    assert config.rules["text-form"].steps[1].to_json() == {
        "do": "grant",
        "tag": "Lock",
        "for": "4mo",
    }
    assert config.rules["table-form"].steps[0].to_json() == {
        "do": "credit",
        "amount": 50,
        "field": "_Credits",
    }
    assert [r.name for r in config.rules_for("payment_succeeded")] == ["table-form"]


def test_durations_cover_minutes_to_calendar_months() -> None:
    from datetime import datetime

    assert vocab.duration("90m").seconds == 5400
    assert vocab.duration("2w").seconds == 14 * 86400
    assert vocab.duration("4mo").after(datetime(2026, 10, 31)) == datetime(2027, 2, 28)
    assert vocab.duration("1y").after(datetime(2028, 2, 29)) == datetime(2029, 2, 28)


def test_the_demo_site_rules_load() -> None:
    from pathlib import Path

    from shortcodes.automations import load_automations

    config = load_automations(Path(__file__).resolve().parents[2] / "site" / "site.toml")
    assert "all-access-monthly-credits" in config.rules
