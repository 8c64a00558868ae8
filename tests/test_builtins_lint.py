"""Lint of the membership builtins: author mistakes are reported with line and column.

Each test writes a page with one mistake in a known place and checks the problem lint reports:
its severity, its message and that line/column point at the mistake itself (inside the attribute
value, for a condition's syntax error).
"""

from __future__ import annotations

import pytest

from shortcodes import Environment, Problem


@pytest.fixture(scope="module")
def env() -> Environment:
    """An environment with the builtins."""
    return Environment()


def errors(env: Environment, page: str) -> list[Problem]:
    """The error-severity problems lint finds in ``page``."""
    return [p for p in env.lint(page) if p.severity == "error"]


def position(page: str, needle: str) -> tuple[int, int]:
    """1-based (line, column) of the first ``needle`` in ``page``."""
    offset = page.index(needle)
    line = page.count("\n", 0, offset) + 1
    return line, offset - (page.rfind("\n", 0, offset) + 1) + 1


def test_unknown_operator_is_an_error_at_the_test_value(env: Environment) -> None:
    page = 'Intro\n\n  [memb_if value1="{{contact._Credits}}" test="=>" value2="50"]x[/memb_if]'
    [problem] = errors(env, page)
    assert problem.message == (
        "[memb_if]: unknown test '=>'; the tests are: = == eq != ne > gt < lt >= ge <= le bw ew contains in !in range !range"
    )
    assert (problem.line, problem.column) == position(page, '=>"')


def test_every_documented_operator_lints_clean(env: Environment) -> None:
    from shortcodes.builtin.compare import OPERATORS

    for op in OPERATORS:
        value2 = "1,5" if "range" in op else "1"
        page = f'[memb_if value1="2" test="{op}" value2="{value2}"]x[/memb_if]'
        assert errors(env, page) == [], op


def test_condition_syntax_error_points_at_the_column_inside_the_attribute(env: Environment) -> None:
    page = "line one\nline two\n[memb_if condition=\"credits() >= and has_tag('Gold')\"]x[/memb_if]"
    [problem] = errors(env, page)
    assert problem.message == (
        "[memb_if] condition, column 14: expected a value after '>=', found 'and'"
    )
    assert (problem.line, problem.column) == position(page, "and has_tag")
    assert problem.snippet.endswith("^")


def test_condition_error_column_survives_backslash_escapes(env: Environment) -> None:
    # Attribute values are backslash-decoded first (WordPress), so the page writes \\' for
    # the condition's \' (a quote inside a string); the page has one character more than the
    # condition before the error, and the caret must still land on the right page column.
    page = "[memb_if condition=\"field('A') == 'it\\\\'s' and\"]x[/memb_if]"
    [problem] = errors(env, page)
    assert problem.message == "[memb_if] condition, column 26: expected a condition after 'and'"
    # The error is at the end of the condition: just before the closing quote.
    line, column = position(page, '"]x')
    assert (problem.line, problem.column) == (line, column)


def test_condition_with_a_variable_is_an_error(env: Environment) -> None:
    page = "[memb_if condition=\"field('A') == '{{contact.FirstName}}'\"]x[/memb_if]"
    [problem] = errors(env, page)
    assert problem.message == (
        "[memb_if]: a condition cannot hold {{variables}} or shortcodes; use field('Name') or credits('_Credits') inside it"
    )
    assert (problem.line, problem.column) == position(page, "field(")


def test_condition_and_value1_together_warn_that_value1_is_ignored(env: Environment) -> None:
    problems = env.lint('[memb_if condition="logged_in()" value1="x"]y[/memb_if]')
    assert [p.severity for p in problems] == ["warning"]
    assert problems[0].message == "[memb_if]: value1 is ignored because condition is given"


def test_malformed_range_is_an_error(env: Environment) -> None:
    page = '[memb_if value1="5" test="range" value2="10"]x[/memb_if]'
    [problem] = errors(env, page)
    assert problem.message == "[memb_if]: range needs value2=\"min,max\", got '10'"
    assert (problem.line, problem.column) == position(page, '10"')


def test_unknown_variable_is_reported(env: Environment) -> None:
    page = '\n[memb_if value1="{{contact._Credits}}" value2="{{visitor.name}}"]x[/memb_if]'
    [problem] = [p for p in env.lint(page) if "unknown variable" in p.message]
    assert problem.line == 2
    assert problem.message == (
        "[memb_if]: unknown variable {{visitor.name}}; it renders as an empty string"
    )


def test_not_that_is_not_yes_or_no_is_an_error(env: Environment) -> None:
    [problem] = errors(env, '[memb_has_any_tag tagid="Gold" not="maybe"]x[/memb_has_any_tag]')
    assert problem.message == "[memb_has_any_tag]: attribute not='maybe' is not yes or no"


def test_tag_gate_without_tagid_is_an_error_at_the_tag(env: Environment) -> None:
    page = "ok\n[memb_has_all_tags]x[/memb_has_all_tags]"
    [problem] = errors(env, page)
    assert problem.message == '[memb_has_all_tags] needs tagid="Tag name or id"'
    assert (problem.line, problem.column) == (2, 1)


def test_empty_tag_list_is_an_error(env: Environment) -> None:
    [problem] = errors(env, '[memb_has_any_tag tagid=" , "]x[/memb_has_any_tag]')
    assert problem.message == (
        '[memb_has_any_tag]: the tag list is empty: give tagid="Tag name or id, ..."'
    )


def test_two_spellings_of_tagid_warn(env: Environment) -> None:
    problems = env.lint('[memb_has_any_tag tagid="A" tag_ids="B"]x[/memb_has_any_tag]')
    assert [p.severity for p in problems] == ["warning"]
    assert problems[0].message == "[memb_has_any_tag]: tag_ids is ignored because tagid is given"


def test_missing_action_id_is_an_error_with_line_and_column(env: Environment) -> None:
    page = 'Buy it:\n   [memb_actionset_button button_text="Go"]'
    [problem] = errors(env, page)
    assert problem.message == '[memb_actionset_button] needs action_id="name of an actionset"'
    assert (problem.line, problem.column) == (2, 4)


def test_action_id_that_is_no_actionset_name_is_an_error(env: Environment) -> None:
    [problem] = errors(env, '[buy_actionset_button action_id="../admin"]')
    assert problem.message == (
        "[buy_actionset_button]: action_id '../admin' is not an actionset name"
    )


def test_redirect_off_the_site_is_an_error(env: Environment) -> None:
    page = '[memb_actionset_button action_id="a" redirect_url="https://evil.example/"]'
    [problem] = errors(env, page)
    assert problem.message == (
        "[memb_actionset_button]: redirect_url 'https://evil.example/' is not a path on this site (it must start with '/')"
    )


def test_memb_contact_without_fields_is_an_error(env: Environment) -> None:
    [problem] = errors(env, "[memb_contact default=x]")
    assert problem.message == '[memb_contact] needs fields="FirstName"'


def test_credit_history_limit_must_be_a_number(env: Environment) -> None:
    [problem] = errors(env, '[credit_history limit="ten"]')
    assert problem.message == "[credit_history]: attribute limit='ten' is not a whole number"


def test_unclosed_gate_is_an_error(env: Environment) -> None:
    problems = errors(env, '[memb_has_any_tag tagid="Gold"]gold only')
    assert any("is never closed" in p.message for p in problems)


def test_spec_example_page_has_no_errors(env: Environment) -> None:
    page = """[memb_has_any_tag tagid="Owns Course B"]
  <a href="/courses/b">Open Course B</a>
[else_memb_has_any_tag]
  [memb_if value1="{{contact._Credits}}" test=">=" value2="50"]
    [memb_actionset_button action_id="buy-course-b" button_text="Unlock for 50 credits"]
  [else_memb_if]
    <a href="/credits">You have [memb_contact fields="_Credits"] credits. Buy more</a>
  [/memb_if]
[/memb_has_any_tag]"""
    assert errors(env, page) == []
