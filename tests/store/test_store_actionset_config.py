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


# (site.toml text, expected key, expected (line, column), a fragment of the message)
CASES = [
    pytest.param("[actionsets.x\nsteps = 1\n", "", (1, 14), "not valid TOML", id="malformed toml"),
    pytest.param(
        _steps('{ do = "debit", amount = 1 }', '{ do = "fly" }'),
        "actionsets.act.steps[1].do",
        (12, 5),
        "unknown step 'fly'",
        id="unknown step",
    ),
    pytest.param(
        _steps('{ do = "debit", amount = -5 }'),
        "actionsets.act.steps[0].amount",
        (11, 19),
        "whole number",
        id="negative amount",
    ),
    pytest.param(
        _steps('{ do = "credit", amount = 2.5 }'),
        "actionsets.act.steps[0].amount",
        (11, 20),
        "got 2.5",
        id="non-integer amount",
    ),
    pytest.param(
        _steps('{ do = "debit", amount = "fifty" }'),
        "actionsets.act.steps[0].amount",
        (11, 19),
        "'fifty'",
        id="text amount",
    ),
    pytest.param(
        _steps('{ do = "debit", field = "_Gold", amount = 1 }'),
        "actionsets.act.steps[0].field",
        (11, 19),
        "unknown credit field '_Gold'",
        id="unknown credit field",
    ),
    pytest.param(
        _steps('{ do = "apply_tag", tag = "Platinum" }'),
        "actionsets.act.steps[0].tag",
        (11, 23),
        "unknown tag 'Platinum'",
        id="unknown tag",
    ),
    pytest.param(
        _steps('{ do = "set_field", field = "_credits", value = 9 }'),
        "actionsets.act.steps[0].field",
        (11, 23),
        "credit balance",
        id="set_field on a balance",
    ),
    pytest.param(
        _steps('{ do = "grant", tag = "Gold" }'),
        "actionsets.act.steps[0].for",
        (11, 3),
        "needs the argument 'for'",
        id="missing argument",
    ),
    pytest.param(
        _steps('{ do = "grant", tag = "Gold", for = "forever" }'),
        "actionsets.act.steps[0].for",
        (11, 33),
        "duration",
        id="bad duration",
    ),
    pytest.param(
        _steps('{ do = "apply_tag", tag = "Gold", colour = "red" }'),
        "actionsets.act.steps[0].colour",
        (11, 37),
        "no argument 'colour'",
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
        "is a tag parameter",
        id="parameter of the wrong type",
    ),
    pytest.param(
        _steps('{ do = "webhook", url = "/hook" }'),
        "actionsets.act.steps[0].url",
        (11, 21),
        "absolute http",
        id="webhook to a site path",
    ),
    pytest.param(
        _steps('{ do = "redirect", url = "/x" }', extra='colour = "red"\n'),
        "actionsets.act.colour",
        (10, 1),
        "unknown key",
        id="unknown actionset key",
    ),
    pytest.param(
        "[actionsets.act]\ntitle = 'x'\nsteps = []\n",
        "actionsets.act.steps",
        (3, 1),
        "at least one step",
        id="no steps",
    ),
    pytest.param(
        _steps('{ tag = "Gold" }'), "actionsets.act.steps[0]", (11, 3), '"do" naming', id="step without do"
    ),
    pytest.param(
        "[actionsets.act]\nparams.cost = { type = 'float' }\n"
        "steps = [{ do = 'redirect', url = '/' }]\n",
        "actionsets.act.params.cost.type",
        (2, 17),
        "declare a parameter",
        id="bad parameter type",
    ),
    pytest.param(
        "[actionsets.act]\nparams.cost = { type = 'int', default = -1 }\n"
        "steps = [{ do = 'debit', amount = '$cost' }]\n",
        "actionsets.act.params.cost.default",
        (2, 31),
        "whole number",
        id="negative parameter default",
    ),
    pytest.param(
        _steps('{ do = "redirect", url = "/x" }', extra='requires = ["Gold", "Platinum"]\n'),
        "actionsets.act.requires[1]",
        (10, 21),
        "unknown tag 'Platinum'",
        id="requires an unknown tag",
    ),
    pytest.param(
        _steps('{ do = "redirect", url = "/x" }', extra="blocked_by = 5\n"),
        "actionsets.act.blocked_by",
        (10, 1),
        "tag name or a list",
        id="blocked_by not a list",
    ),
    pytest.param(
        "[credits]\nfields = ['has space']\n",
        "credits.fields[0]",
        (2, 11),
        "not a field name",
        id="bad credit fields",
    ),
    pytest.param("[tags]\n'123' = 'x'\n", "tags.123", (2, 1), "be a number: '123'", id="numeric tag name"),
]


@pytest.mark.parametrize(("text", "key", "where", "fragment"), CASES)
def test_config_mistakes_name_file_line_column_and_key(
    text: str, key: str, where: tuple[int, int], fragment: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "site/site.toml")
    error = info.value
    assert (error.file, error.key, (error.line, error.column)) == ("site/site.toml", key, where)
    assert fragment in str(error)
    line, column = where
    assert str(error).startswith(f"site/site.toml:{line}:{column}: ")


def test_a_missing_site_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nothere\.toml: cannot read"):
        load_config_file(tmp_path / "nothere.toml")


@pytest.mark.parametrize(
    ("given", "fragment"),
    [
        ({"cost": "fifty"}, "whole number"),
        ({"cost": "-5"}, "whole number"),
        ({"cost": 2.5}, "whole number"),
        ({"cost": True}, "whole number"),
        ({"price": "5"}, "no parameter 'price'"),
    ],
)
def test_button_parameters_are_checked(given: dict[str, object], fragment: str) -> None:
    action = parse_config(GOOD).actions.actionsets["buy-course-b"]
    with pytest.raises(ActionsetParamError, match=fragment):
        action.bind(given)
