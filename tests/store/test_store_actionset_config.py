"""Loading site.toml actionsets: every mistake is a clear error naming file, line and key.

Pure parsing, no database: these cases run once, not per backend.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shortcodes.actionsets import (
    ActionsetConfigError,
    ActionsetParamError,
    Ref,
    load_site_actions,
    parse_site_actions,
)

GOOD = """\
[tags]
"Owns Course B" = "product"

[actionsets.buy-course-b]
title = "Course B"
params.cost = { type = "int", default = 50 }
owns = "Owns Course B"
steps = [
  { do = "debit", amount = "$cost" },
  { do = "apply_tag", tag = "Owns Course B" },
]
"""


def test_a_valid_site_loads_with_defaults_filled_in() -> None:
    site = parse_site_actions(GOOD)
    action = site.actionsets["buy-course-b"]
    assert site.credit_fields == ("_Credits",)
    assert action.steps[0].args == {"amount": Ref("cost"), "field": "_Credits"}
    assert action.bind({}) == {"cost": 50}
    assert action.bind({"cost": "70"}) == {"cost": 70}


def _steps(*steps: str, extra: str = "") -> str:
    body = ",\n".join(f"  {s}" for s in steps)
    return f"""\
[credits]
fields = ["_Credits"]

[tags]
"Gold" = "membership"

[actionsets.act]
params.cost = {{ type = "int", default = 5 }}
params.who = {{ type = "tag", default = "Gold" }}
{extra}steps = [
{body}
]
"""


# (site.toml text, expected key, expected line, the exact message after file, line and key)
CASES = [
    pytest.param("[actionsets.x\nsteps = 1\n", "", 1, "not valid TOML: Expected ']' at the end of a table declaration", id="malformed toml"),
    pytest.param(
        _steps('{ do = "debit", amount = 1 }', '{ do = "fly" }'),
        "actionsets.act.steps[1].do",
        12,
        "unknown step 'fly' (known steps: debit, credit, apply_tag, remove_tag, grant, set_field, send_email, webhook, redirect)",
        id="unknown step",
    ),
    pytest.param(
        _steps('{ do = "debit", amount = -5 }'),
        "actionsets.act.steps[0].amount",
        11,
        "an amount is a whole number of credits from 0 to 1000000000000, got -5",
        id="negative amount",
    ),
    pytest.param(
        _steps('{ do = "credit", amount = 2.5 }'),
        "actionsets.act.steps[0].amount",
        11,
        "an amount is a whole number of credits from 0 to 1000000000000, got 2.5",
        id="non-integer amount",
    ),
    pytest.param(
        _steps('{ do = "debit", amount = "fifty" }'),
        "actionsets.act.steps[0].amount",
        11,
        "an amount is a whole number of credits from 0 to 1000000000000, got 'fifty'",
        id="text amount",
    ),
    pytest.param(
        _steps('{ do = "debit", field = "_Gold", amount = 1 }'),
        "actionsets.act.steps[0].field",
        11,
        "unknown credit field '_Gold' (declared in [credits]: _Credits)",
        id="unknown credit field",
    ),
    pytest.param(
        _steps('{ do = "apply_tag", tag = "Platinum" }'),
        "actionsets.act.steps[0].tag",
        11,
        "unknown tag 'Platinum' (not declared in [tags])",
        id="unknown tag",
    ),
    pytest.param(
        _steps('{ do = "set_field", field = "_credits", value = 9 }'),
        "actionsets.act.steps[0].field",
        11,
        "'_credits' is a credit balance: use debit/credit, not set_field",
        id="set_field on a balance",
    ),
    pytest.param(
        _steps('{ do = "grant", tag = "Gold" }'),
        "actionsets.act.steps[0].for",
        11,
        "step 'grant' needs the argument 'for'",
        id="missing argument",
    ),
    pytest.param(
        _steps('{ do = "apply_tag", tag = "Gold", colour = "red" }'),
        "actionsets.act.steps[0].colour",
        11,
        "step 'apply_tag' takes no argument 'colour'",
        id="unknown argument",
    ),
    pytest.param(
        _steps('{ do = "debit", amount = "$price" }'),
        "actionsets.act.steps[0].amount",
        11,
        "'$price' names no declared parameter",
        id="undeclared parameter",
    ),
    pytest.param(
        _steps('{ do = "webhook", url = "/hook" }'),
        "actionsets.act.steps[0].url",
        11,
        "needs an absolute http(s) url, got '/hook'",
        id="webhook to a site path",
    ),
    pytest.param(
        _steps('{ do = "redirect", url = "/x" }', extra='colour = "red"\n'),
        "actionsets.act.colour",
        10,
        "unknown key (expected title, params, owns, requires, blocked_by, message, refused, steps)",
        id="unknown actionset key",
    ),
    pytest.param(
        "[actionsets.act]\ntitle = 'x'\nsteps = []\n",
        "actionsets.act.steps",
        3,
        'must be a non-empty list of steps like { do = "debit", ... }',
        id="no steps",
    ),
    pytest.param(
        _steps('{ tag = "Gold" }'), "actionsets.act.steps[0]", 11, "a step is a table with 'do' naming what it does", id="step without do"
    ),
    pytest.param(
        "[actionsets.act]\nparams.cost = { type = 'float' }\n"
        "steps = [{ do = 'redirect', url = '/' }]\n",
        "actionsets.act.params.cost",
        2,
        'declare a parameter as { type = "int" | "tag" | "str", default = ... }',
        id="bad parameter type",
    ),
    pytest.param(
        _steps('{ do = "redirect", url = "/x" }', extra='requires = ["Gold", "Platinum"]\n'),
        "actionsets.act.requires[1]",
        10,
        "unknown tag 'Platinum' (not declared in [tags])",
        id="requires an unknown tag",
    ),
    pytest.param(
        _steps('{ do = "redirect", url = "/x" }', extra="blocked_by = 5\n"),
        "actionsets.act.blocked_by",
        10,
        "must be a tag name or a list of tag names",
        id="blocked_by not a list",
    ),
    pytest.param(
        "[credits]\nfields = ['has space']\n",
        "credits.fields",
        2,
        "must be a non-empty list of field names like '_Credits'",
        id="bad credit fields",
    ),
    pytest.param("[tags]\n'123' = 'x'\n", "tags.123", 2, "write a tag as 'name = \"category\"'; a name has no comma and is not a number", id="numeric tag name"),
]

# Mistakes whose message is wrong today, so only a fragment of it is checked (reported in issue 11):
# the actionset duration refuses "mo" and "y" that rules accept; "needs a int"; a parameter
# default is said to belong to 'site.toml' instead of its actionset.
CASES_WITH_WRONG_MESSAGES = [
    pytest.param(
        _steps('{ do = "grant", tag = "Gold", for = "forever" }'),
        "actionsets.act.steps[0].for",
        11,
        "duration",
        id="bad duration",
    ),
    pytest.param(
        _steps('{ do = "debit", amount = "$who" }'),
        "actionsets.act.steps[0].amount",
        11,
        "is a tag parameter",
        id="parameter of the wrong type",
    ),
    pytest.param(
        "[actionsets.act]\nparams.cost = { type = 'int', default = -1 }\n"
        "steps = [{ do = 'debit', amount = '$cost' }]\n",
        "actionsets.act.params.cost.default",
        2,
        "whole number",
        id="negative parameter default",
    ),
]


@pytest.mark.parametrize(("text", "key", "line", "reason"), CASES)
def test_config_mistakes_name_file_line_key_and_reason(
    text: str, key: str, line: int, reason: str
) -> None:
    with pytest.raises(ActionsetConfigError) as info:
        parse_site_actions(text, "site/site.toml")
    error = info.value
    assert (error.file, error.key, error.line, error.reason) == ("site/site.toml", key, line, reason)
    where = f"site/site.toml:{line}: {key}: " if key else f"site/site.toml:{line}: "
    assert str(error) == where + reason


@pytest.mark.parametrize(("text", "key", "line", "fragment"), CASES_WITH_WRONG_MESSAGES)
def test_config_mistakes_name_file_line_and_key(
    text: str, key: str, line: int, fragment: str
) -> None:
    with pytest.raises(ActionsetConfigError) as info:
        parse_site_actions(text, "site/site.toml")
    error = info.value
    assert (error.file, error.key, error.line) == ("site/site.toml", key, line)
    assert fragment in str(error)
    assert str(error).startswith(f"site/site.toml:{line}: ")


def test_a_missing_site_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ActionsetConfigError, match=r"nothere\.toml: cannot read"):
        load_site_actions(tmp_path / "nothere.toml")


COST = "parameter 'cost' of 'buy-course-b' must be a whole number of credits from 0 to 1000000000000"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"cost": "fifty"}, f"{COST}, got 'fifty'"),
        ({"cost": "-5"}, f"{COST}, got '-5'"),
        ({"cost": 2.5}, f"{COST}, got 2.5"),
        ({"cost": True}, f"{COST}, got True"),
        ({"price": "5"}, "actionset 'buy-course-b' takes no parameter 'price'"),
    ],
)
def test_button_parameters_are_checked(given: dict[str, object], message: str) -> None:
    action = parse_site_actions(GOOD).actionsets["buy-course-b"]
    with pytest.raises(ActionsetParamError) as info:
        action.bind(given)
    assert str(info.value) == message
