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
    assert exc.reason == (
        "unknown trigger 'tag_appplied' (known triggers: tag_applied, tag_removed,"
        " payment_succeeded, payment_failed, refunded, field_above, balance_below,"
        " credits_expiring, stage_changed,"
        " referral_made, referral_approved, login, webhook, unlocked)"
    )
    assert str(exc).startswith("site.toml:9:1: rules.r1.trigger: ")


def test_unknown_step_names_the_step_index_and_the_known_steps() -> None:
    exc = error(
        '[[rules]]\nname = "r2"\ntrigger = "login"\nsteps = [{ do = "wait", for = "1h" }, { do = "teleport" }]\n'
    )
    assert exc.key == "rules.r2.steps[1].do"
    assert exc.reason == (
        "unknown step 'teleport' (known steps: debit, credit, apply_tag, remove_tag, grant,"
        " set_field, send_email, webhook, wait, remove_tag_after, award_points,"
        " remove_points)"
    )


@pytest.mark.parametrize("bad", ["14x", "0d", "-3d", "d14", "1.5d", "", "14 days"])
def test_a_bad_duration_is_refused_with_the_rule_and_key(bad: str) -> None:
    exc = error(
        f'[[rules]]\nname = "lock"\ntrigger = "login"\nsteps = [{{ do = "remove_tag_after", tag = "Lock", after = "{bad}" }}]\n'
    )
    assert exc.key == "rules.lock.steps[0].after"
    assert exc.reason == (
        "a duration is a positive whole number and a unit s, m (minutes), h, d, w, mo (months)"
        f" or y, like '14d' or '4mo'; got {bad!r}"
    )


@pytest.mark.parametrize(
    ("rules", "key", "reason"),
    [
        (
            '[[rules]]\ntrigger = "login"\nsteps = [{ do = "wait", for = "1d" }]\n',
            "rules[0].name",
            "every rule needs a name: letters, digits, '-', '_' and '.'",
        ),
        (
            '[[rules]]\nname = "a"\nsteps = [{ do = "wait", for = "1d" }]\n',
            "rules.a.trigger",
            "missing: every rule needs a trigger, like \"tag_applied('Member')\"",
        ),
        (
            '[[rules]]\nname = "a"\ntrigger = "login"\n',
            "rules.a.steps",
            "missing: every rule needs steps (or a drip)",
        ),
        (
            '[[rules]]\nname = "a"\ntrigger = "login"\nsteps = []\n',
            "rules.a.steps",
            'must list at least one step, like { do = "credit", amount = 50 }',
        ),
        (
            '[[rules]]\nname = "a"\ntrigger = "login"\nsteps = [{ do = "wait" }]\n',
            "rules.a.steps[0].for",
            "step 'wait' needs the argument 'for'",
        ),
        (
            '[[rules]]\nname = "a"\ntrigger = "tag_applied"\nsteps = [{ do = "wait", for = "1d" }]\n',
            "rules.a.trigger.tag",
            "trigger 'tag_applied' needs the argument 'tag'",
        ),
        (
            '[[rules]]\nname = "a"\ntrigger = "field_above(points, lots)"\nsteps = [{ do = "wait", for = "1d" }]\n',
            "rules.a.trigger.value",
            "field_above needs a number to cross, got 'lots'",
        ),
        (
            '[[rules]]\nname = "a"\ntrigger = "login"\nsteps = [{ do = "apply_tag", tag = "Nope" }]\n',
            "rules.a.steps[0].tag",
            "unknown tag 'Nope' (not declared in [tags])",
        ),
        (
            '[[rules]]\nname = "a"\ntrigger = "login"\nsteps = [{ do = "credit", amount = "fifty" }]\n',
            "rules.a.steps[0].amount",
            "an amount is a whole number from 0 to 1000000000000, got 'fifty'",
        ),
        (
            '[[rules]]\nname = "a"\ntrigger = "login"\nsteps = [{ do = "credit", amount = 5, field = "_Gold" }]\n',
            "rules.a.steps[0].field",
            "unknown credit field '_Gold' (declared in [credits]: _Credits)",
        ),
        (
            '[[rules]]\nname = "a"\ntrigger = "login"\nsteps = [{ do = "redirect", url = "/x" }]\n',
            "rules.a.steps[0].do",
            "'redirect' cannot be a step of a rule: it needs a visitor, and rules run in the background",
        ),
        (
            '[[rules]]\nname = "a"\ntrigger = "login"\nwhen = "x"\nsteps = [{ do = "wait", for = "1d" }]\n',
            "rules.a.when",
            "unknown key 'when' (expected one of: conditions, description, drip, name, otherwise, retrigger, steps, trigger)",
        ),
        (
            '[[rules]]\nname = "a"\ntrigger = "login"\nsteps = [{ do = "wait", for = "1d" }]\n[[rules]]\nname = "A"\ntrigger = "login"\nsteps = [{ do = "wait", for = "1d" }]\n',
            "rules.A.name",
            "another rule has this name",
        ),
        (
            '[[rules]]\nname = "a"\ntrigger = "login"\nsteps = [{ do = "wait", for = "1d" }]\notherwise = [{ do = "wait", for = "1d" }]\n',
            "rules.a.otherwise",
            "'otherwise' steps need 'conditions' to be false",
        ),
        (
            '[loyalty]\nexpire_after = "1 year"\n',
            "loyalty.expire_after",
            "a duration is a positive whole number and a unit s, m (minutes), h, d, w, mo (months) or y, like '14d' or '4mo'; got '1 year'",
        ),
        (
            '[loyalty]\nstages = { Bronze = 0, Silver = "lots" }\n',
            "loyalty.stages",
            "write stages as { Bronze = 0, Silver = 500, Gold = 1500 } (points >= 0)",
        ),
        (
            '[automations]\nsmtp = "mail.example.com"\n',
            "automations.smtp",
            "write the server as smtp://host:port (or smtps://)",
        ),
    ],
)
def test_malformed_rules_and_settings_name_their_key(rules: str, key: str, reason: str) -> None:
    exc = error(rules)
    assert (exc.file, exc.key, exc.reason) == ("site.toml", key, reason)
    assert str(exc).startswith("site.toml")


def test_a_malformed_condition_names_its_key_and_column() -> None:
    exc = error(
        '[[rules]]\nname = "a"\ntrigger = "login"\nconditions = "has_tag(\'Member\') and"\nsteps = [{ do = "wait", for = "1d" }]\n'
    )
    assert (exc.file, exc.key) == ("site.toml", "rules.a.conditions")
    assert exc.reason == "column 22: expected a condition after 'and'"


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
