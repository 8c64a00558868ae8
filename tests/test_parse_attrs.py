"""parse_attrs: WordPress shortcode_parse_atts on attribute text, case by case.

The cases live in ``tests/fixtures/attrs.txt``; the expected result is written as ``[key, value]``
pairs so that order, and int keys for positional items, are part of what is checked.
"""

from __future__ import annotations

import json

import pytest

from shortcodes import parse_attrs
from tests.support.fixture_loader import Case, load_cases
from tests.support.wp_handlers import make_env

CASES = load_cases("attrs.txt")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_parse_attrs_case(case: Case) -> None:
    """parse_attrs returns exactly the expected items, in source order, as a dict."""
    result = parse_attrs(case.input)
    assert isinstance(result, dict)
    assert [list(item) for item in result.items()] == json.loads(case.expected)


# A case's text can stand inside a tag when it holds no bracket and does not end in "/" (which
# would be the self-closing marker) - then the handler must see what parse_attrs returns.
TAG_SAFE = [c for c in CASES if not set("[]") & set(c.input) and not c.input.endswith("/")]


@pytest.mark.parametrize("case", TAG_SAFE, ids=[c.id for c in TAG_SAFE])
def test_a_handler_sees_what_parse_attrs_returns(case: Case) -> None:
    """The attributes a handler gets are parse_attrs of the tag's attribute text."""
    env, recorder = make_env()
    env.render(f"[test-shortcode-tag {case.input}]")
    assert [c.attrs for c in recorder.calls] == [list(parse_attrs(case.input).items())]
