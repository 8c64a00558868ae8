"""Loading site.toml actionsets: every mistake is a clear error naming file, line and key.

Pure parsing, no database: these cases run once, not per backend.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shortcodes.errors import ActionsetParamError, ConfigError
from shortcodes.membership.config import load_config_file, parse_config
from shortcodes.membership.steps import Ref

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
    site = parse_config(GOOD).actions
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


# (site.toml text, expected key, expected (line, column), the exact message)
CASES = [
    pytest.param(
        "[actionsets.x\nsteps = 1\n",
        "",
        (1, 14),
        "not valid TOML: Expected ']' at the end of a table declaration",
        id="malformed toml",
    ),
    pytest.param(
        _steps('{ do = "debit", amount = 1 }', '{ do = "fly" }'),
        "actionsets.act.steps[1].do",
        (12, 5),
        "unknown step 'fly' (known steps: debit, credit, apply_tag, remove_tag, grant, set_field, send_email, webhook, redirect)",
        id="unknown step",
    ),
    pytest.param(
        _steps('{ do = "debit", amount = -5 }'),
        "actionsets.act.steps[0].amount",
        (11, 19),
        "an amount is a whole number from 0 to 1000000000000, got -5",
        id="negative amount",
    ),
    pytest.param(
        _steps('{ do = "credit", amount = 2.5 }'),
        "actionsets.act.steps[0].amount",
        (11, 20),
        "an amount is a whole number from 0 to 1000000000000, got 2.5",
        id="non-integer amount",
    ),
    pytest.param(
        _steps('{ do = "debit", amount = "fifty" }'),
        "actionsets.act.steps[0].amount",
        (11, 19),
        "an amount is a whole number from 0 to 1000000000000, got 'fifty'",
        id="text amount",
    ),
    pytest.param(
        _steps('{ do = "debit", field = "_Gold", amount = 1 }'),
        "actionsets.act.steps[0].field",
        (11, 19),
        "unknown credit field '_Gold' (declared in [credits]: _Credits)",
        id="unknown credit field",
    ),
    pytest.param(
        _steps('{ do = "apply_tag", tag = "Platinum" }'),
        "actionsets.act.steps[0].tag",
        (11, 23),
        "unknown tag 'Platinum' (not declared in [tags])",
        id="unknown tag",
    ),
    pytest.param(
        _steps('{ do = "set_field", field = "_credits", value = 9 }'),
        "actionsets.act.steps[0].field",
        (11, 23),
        "field '_credits' is a credit balance: change it with credit/debit, never by setting it",
        id="set_field on a balance",
    ),
    pytest.param(
        _steps('{ do = "grant", tag = "Gold" }'),
        "actionsets.act.steps[0].for",
        (11, 3),
        "step 'grant' needs the argument 'for'",
        id="missing argument",
    ),
    pytest.param(
        _steps('{ do = "grant", tag = "Gold", for = "forever" }'),
        "actionsets.act.steps[0].for",
        (11, 33),
        "a duration is a positive whole number and a unit s, m (minutes), h, d, w, mo (months) or y, like '14d' or '4mo'; got 'forever'",
        id="bad duration",
    ),
    pytest.param(
        _steps('{ do = "apply_tag", tag = "Gold", colour = "red" }'),
        "actionsets.act.steps[0].colour",
        (11, 37),
        "step 'apply_tag' takes no argument 'colour'",
        id="unknown argument",
    ),
    pytest.param(
        _steps('{ do = "debit", amount = "$price" }'),
        "actionsets.act.steps[0].amount",
        (11, 19),
        "'$price' names no declared parameter",
        id="undeclared parameter",
    ),
    pytest.param(
        _steps('{ do = "debit", amount = "$who" }'),
        "actionsets.act.steps[0].amount",
        (11, 19),
        "'$who' is a tag parameter; this needs an int parameter",
        id="parameter of the wrong type",
    ),
    pytest.param(
        _steps('{ do = "webhook", url = "/hook" }'),
        "actionsets.act.steps[0].url",
        (11, 21),
        "needs an absolute http(s) url, got '/hook'",
        id="webhook to a site path",
    ),
    pytest.param(
        _steps('{ do = "redirect", url = "/x" }', extra='colour = "red"\n'),
        "actionsets.act.colour",
        (10, 1),
        "unknown key 'colour' (expected one of: blocked_by, message, owns, params, refused, requires, steps, title)",
        id="unknown actionset key",
    ),
    pytest.param(
        "[actionsets.act]\ntitle = 'x'\nsteps = []\n",
        "actionsets.act.steps",
        (3, 1),
        'must list at least one step, like { do = "debit", amount = 50 }',
        id="no steps",
    ),
    pytest.param(
        _steps('{ tag = "Gold" }'),
        "actionsets.act.steps[0]",
        (11, 3),
        'a step is a table with "do" naming what it does',
        id="step without do",
    ),
    pytest.param(
        "[actionsets.act]\nparams.cost = { type = 'float' }\n"
        "steps = [{ do = 'redirect', url = '/' }]\n",
        "actionsets.act.params.cost.type",
        (2, 17),
        'declare a parameter as { type = "int" | "tag" | "str", default = ... }',
        id="bad parameter type",
    ),
    pytest.param(
        "[actionsets.act]\nparams.cost = { type = 'int', default = -1 }\n"
        "steps = [{ do = 'debit', amount = '$cost' }]\n",
        "actionsets.act.params.cost.default",
        (2, 31),
        "parameter 'cost' of 'act': an amount is a whole number from 0 to 1000000000000, got -1",
        id="negative parameter default",
    ),
    pytest.param(
        _steps('{ do = "redirect", url = "/x" }', extra='requires = ["Gold", "Platinum"]\n'),
        "actionsets.act.requires[1]",
        (10, 21),
        "unknown tag 'Platinum' (not declared in [tags])",
        id="requires an unknown tag",
    ),
    pytest.param(
        _steps('{ do = "redirect", url = "/x" }', extra="blocked_by = 5\n"),
        "actionsets.act.blocked_by",
        (10, 1),
        "must be a tag name or a list of tag names, got a number",
        id="blocked_by not a list",
    ),
    pytest.param(
        "[credits]\nfields = ['has space']\n",
        "credits.fields[0]",
        (2, 11),
        "not a field name (letters, digits and '_', like '_Credits'): 'has space'",
        id="bad credit fields",
    ),
    pytest.param(
        "[tags]\n'123' = 'x'\n",
        "tags.123",
        (2, 1),
        "a tag name cannot contain a comma, start with '-' or be a number: '123'",
        id="numeric tag name",
    ),
]


@pytest.mark.parametrize(("text", "key", "where", "reason"), CASES)
def test_config_mistakes_name_file_line_column_key_and_reason(
    text: str, key: str, where: tuple[int, int], reason: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "site/site.toml")
    error = info.value
    assert (error.file, error.key, (error.line, error.column)) == ("site/site.toml", key, where)
    assert error.reason == reason
    line, column = where
    assert str(error) == f"site/site.toml:{line}:{column}: " + (f"{key}: " if key else "") + reason


def test_a_missing_site_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nothere\.toml: cannot read"):
        load_config_file(tmp_path / "nothere.toml")


COST = "parameter 'cost' of 'buy-course-b': an amount is a whole number from 0 to 1000000000000"


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
    action = parse_config(GOOD).actions.actionsets["buy-course-b"]
    with pytest.raises(ActionsetParamError) as info:
        action.bind(given)
    assert str(info.value) == message
