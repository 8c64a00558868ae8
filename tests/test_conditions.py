"""Tests for the condition language of ``[memb_if condition="..."]`` (shortcodes/conditions.py).

The spec cases (every condition against every kind of contact, and every syntax error with its
exact message and column) live in tests/fixtures/conditions.txt; this module loads them and adds
the properties no table can cover: arbitrary text never raises anything but
ConditionSyntaxError, and evaluation never raises.
"""

from __future__ import annotations

import dataclasses
import operator
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shortcodes import condition_syntax, conditions
from shortcodes.conditions import (
    MAX_CONDITION_LENGTH,
    MAX_NESTING,
    Condition,
    as_number,
    compare_values,
    compile_condition,
)
from shortcodes.context import Contact, Context, Tag
from shortcodes.errors import ConditionSyntaxError, ShortcodeError

FIXTURES = Path(__file__).parent / "fixtures" / "conditions.txt"

CONTACTS: dict[str, Context] = {
    "ann": Context(
        contact=Contact(
            7,
            "ann@example.com",
            [Tag(123, "Owns Course B"), Tag(7, "Gold")],
            {"FirstName": "Ann", "_Credits": 60, "Code": "007"},
        )
    ),
    "bob": Context(
        contact=Contact(
            8,
            "bob@example.com",
            [Tag(5, "Silver")],
            {"FirstName": "Bob", "_Credits": "30", "Country": "NZ"},
        )
    ),
    "cara": Context(contact=Contact(9, "cara@example.com", [], {"FirstName": "", "_Credits": ""})),
    "dan": Context(
        contact=Contact(10, "dan@example.com", [], {"FirstName": "Dan", "_Credits": 50})
    ),
    "anon": Context(),
}


@dataclass(frozen=True)
class Case:
    """One fixture case: title, condition text, expected lines, and the line it starts on."""

    title: str
    condition: str
    expected: list[str]
    line: int


def load_cases(path: Path) -> list[Case]:
    """Read ``title / . / condition / . / expected / .`` blocks (markdown-it-py's fixture shape)."""
    lines = path.read_text("utf-8").splitlines()
    cases: list[Case] = []
    i = 0
    while i < len(lines):
        if not lines[i].strip() or lines[i].startswith("#"):
            i += 1
            continue
        assert lines[i + 1] == ".", f"{path.name}:{i + 2}: expected '.' after the title"
        end_input = lines.index(".", i + 2)
        end_expected = lines.index(".", end_input + 1)
        condition = "\n".join(lines[i + 2 : end_input])
        cases.append(Case(lines[i], condition, lines[end_input + 1 : end_expected], i + 1))
        i = end_expected + 1
    return cases


CASES = load_cases(FIXTURES)
OUTCOME_CASES = [c for c in CASES if not c.expected[0].startswith("error")]
ERROR_CASES = [c for c in CASES if c.expected[0].startswith("error")]


def test_fixture_file_has_both_kinds_of_case() -> None:
    """Guards the loader: a broken fixture file must not silently yield zero cases."""
    assert len(OUTCOME_CASES) >= 30
    assert len(ERROR_CASES) >= 30


@pytest.mark.parametrize("case", OUTCOME_CASES, ids=[c.title for c in OUTCOME_CASES])
def test_condition_outcome_for_every_contact(case: Case) -> None:
    expected = dict(line.split(": ", 1) for line in case.expected)
    assert sorted(expected) == sorted(CONTACTS), f"line {case.line}: list every contact once"
    condition = compile_condition(case.condition)
    got = {name: str(condition.evaluate(ctx)) for name, ctx in CONTACTS.items()}
    assert got == expected


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c.title for c in ERROR_CASES])
def test_syntax_error_message_and_column(case: Case) -> None:
    with pytest.raises(ConditionSyntaxError) as info:
        compile_condition(case.condition)
    error = info.value
    assert f"error at column {error.column}: {error.message}" == case.expected[0]


# --- the error type ---------------------------------------------------------------------------


def test_syntax_error_is_a_shortcode_error_with_offset_and_source() -> None:
    with pytest.raises(ShortcodeError) as info:
        compile_condition("credits() >= ")
    error = info.value
    assert isinstance(error, ConditionSyntaxError)
    assert (error.column, error.offset, error.condition) == (13, 12, "credits() >= ")
    assert str(error) == "column 13: expected a value after '>='"


def test_syntax_error_maps_onto_the_page_as_a_lint_problem() -> None:
    page = 'Intro\n[memb_if condition="logged_in() and has_tga(1)"]Hi[/memb_if]'
    value_offset = page.index("logged_in")
    with pytest.raises(ConditionSyntaxError) as info:
        compile_condition(page[value_offset : page.index('"]')])
    problem = info.value.to_problem(page, value_offset, source_name="catalog.md")
    assert (problem.line, problem.column) == (2, 37)
    assert problem.format() == (
        "catalog.md:2:37: error: unknown function 'has_tga' (did you mean has_tag?)\n"
        '[memb_if condition="logged_in() and has_tga(1)"]Hi[/memb_if]\n'
        "                                    ^"
    )


def test_blank_condition_is_the_empty_condition_error() -> None:
    with pytest.raises(ConditionSyntaxError, match=r"^column 1: empty condition"):
        compile_condition(" \t\n ")


def test_condition_over_the_length_limit_is_refused_before_parsing() -> None:
    text = "true or " * (MAX_CONDITION_LENGTH // 8) + "true"
    with pytest.raises(ConditionSyntaxError, match="condition is too long") as info:
        compile_condition(text)
    assert info.value.column == MAX_CONDITION_LENGTH + 1


def test_nesting_deeper_than_the_limit_is_an_error_not_a_recursion_crash() -> None:
    with pytest.raises(ConditionSyntaxError, match="nested too deeply"):
        compile_condition("not " * (MAX_NESTING + 5) + "true")
    # Just inside the limit still compiles and evaluates.
    assert compile_condition("not " * (MAX_NESTING - 1) + "true").evaluate(Context()) is (
        (MAX_NESTING - 1) % 2 == 0
    )


def test_many_parentheses_around_one_test_are_fine() -> None:
    deep = "(" * 200 + "logged_in()" + ")" * 200
    assert compile_condition(deep).evaluate(CONTACTS["ann"]) is True


def test_long_flat_or_chain_compiles_to_one_node() -> None:
    text = " or ".join(["has_tag('Gold')"] * 100)
    condition = compile_condition(text)
    assert isinstance(condition.root, conditions.Or)
    assert len(condition.root.operands) == 100


# --- the AST ----------------------------------------------------------------------------------


def _walk(node: object) -> list[object]:
    found = [node]
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            for item in value if isinstance(value, tuple) else (value,):
                found.extend(_walk(item))
    return found


def test_ast_is_frozen_dataclasses_of_plain_values_without_lark_objects() -> None:
    condition = compile_condition(
        "(credits('_Credits') >= 50 or field('x') != 'y') and not has_all_tags(1, 'b') "
        "or logged_in() == true"
    )
    nodes = _walk(condition)
    # Every node kind of the expression was walked.
    assert {type(n).__name__ for n in nodes if dataclasses.is_dataclass(n)} == {
        "Condition", "Or", "And", "Not", "Compare", "Credits", "FieldValue", "Text", "TagTest",
        "LoggedIn", "Truth",
    }  # fmt: skip
    for node in nodes:
        assert "lark" not in type(node).__module__, node
        if dataclasses.is_dataclass(node):
            assert not hasattr(node, "__dict__"), f"{type(node).__name__} is not slotted"
            first = dataclasses.fields(node)[0].name
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(node, first, None)


def test_nodes_carry_their_source_span() -> None:
    condition = compile_condition("logged_in() and field('Name') == 'Ann'")
    root = condition.root
    assert isinstance(root, conditions.And)
    compare = root.operands[1]
    assert isinstance(compare, conditions.Compare)
    assert condition.source[compare.start : compare.end] == "field('Name') == 'Ann'"
    assert condition.source[compare.left.start : compare.left.end] == "field('Name')"


def test_compiling_the_same_text_twice_returns_the_same_condition() -> None:
    assert compile_condition("has_tag('Gold')") is compile_condition("has_tag('Gold')")


def test_grammar_is_loaded_once_per_process() -> None:
    assert condition_syntax._parser() is condition_syntax._parser()


@pytest.mark.parametrize("module", [conditions, condition_syntax])
def test_module_never_calls_eval_or_exec(module: ModuleType) -> None:
    source = Path(str(module.__file__)).read_text("utf-8")
    assert not re.search(r"(?<![\w.])(eval|exec|compile)\(", source)


def test_evaluate_accepts_none_as_an_anonymous_visitor() -> None:
    condition = compile_condition("not logged_in() and credits() == ''")
    assert condition.evaluate(None) is True
    assert condition.evaluate(Context(contact=None)) is True


# --- comparison semantics shared with memb_if -------------------------------------------------


@pytest.mark.parametrize(
    ("left", "op", "right", "expected"),
    [
        ("10", ">", "9", True),
        ("007", "=", "7", True),
        ("1e1", "==", "10", True),
        (" 5 ", "==", "5", True),
        ("2.50", "==", "2.5", True),
        ("+3", "==", "3", True),
        (".5", "<", "1", True),
        ("", ">=", "50", False),
        ("", "<", "50", True),
        ("", "==", "0", False),
        ("abc", "==", "ABC", True),
        ("b", ">", "a", True),
        ("10", ">", "9a", False),
        ("nan", "==", "nan", True),
        ("inf", ">", "1", True),
        ("0x10", "==", "16", False),
        ("١٠", "==", "10", False),
        ("1e999999999999999", ">", "1e999999999999998", True),
        ("1e9999999999999999", ">", "2", False),
    ],
)
def test_compare_values_table(left: str, op: str, right: str, expected: bool) -> None:
    assert compare_values(left, op, right) is expected


def test_compare_values_can_be_case_sensitive() -> None:
    assert compare_values("Gold", "==", "gold") is True
    assert compare_values("Gold", "==", "gold", case_insensitive=False) is False


def test_compare_values_refuses_an_unknown_operator() -> None:
    with pytest.raises(ValueError, match="unknown comparison operator 'bw'"):
        compare_values("a", "bw", "b")


def test_as_number_reads_php_style_numbers_only() -> None:
    assert as_number("007") == Decimal(7)
    assert as_number("-1.5e2") == Decimal(-150)
    for text in ["", " ", "1,000", "1e", "e1", "--1", "NaN", "Infinity", "1_000", "٣"]:
        assert as_number(text) is None, text


OPS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@given(
    a=st.integers(-(10**30), 10**30),
    b=st.integers(-(10**30), 10**30),
    op=st.sampled_from(sorted(OPS)),
    zeros=st.integers(0, 3),
)
def test_numeric_strings_compare_as_numbers(a: int, b: int, op: str, zeros: int) -> None:
    padded = ("-" if a < 0 else "") + "0" * zeros + str(abs(a))
    assert compare_values(padded, op, str(b)) is OPS[op](a, b)


@given(st.text(), st.text(), st.sampled_from(sorted(OPS)))
def test_compare_values_is_total_on_any_text(left: str, right: str, op: str) -> None:
    assert isinstance(compare_values(left, op, right), bool)


# --- properties over arbitrary input ----------------------------------------------------------

FRAGMENTS = [
    "has_tag", "has_any_tag", "has_all_tags", "field", "credits", "logged_in", "foo", "Gold",
    "(", ")", ",", "'Gold'", '"x y"', "'-Gold'", "''", "'", '"', "5", "-2.5", "'1e1'", "'007'",
    "and", "or", "not", "AND", "true", "false", "==", "=", "!=", "<", "<=", ">", ">=", "<>",
    "&&", "||", "!", "$", "\\", " ", "\n", "é", "١",
]  # fmt: skip


def _compile_or_error(text: str) -> Condition | ConditionSyntaxError:
    try:
        return compile_condition(text)
    except ConditionSyntaxError as error:
        return error


def _assert_compiles_or_fails_cleanly(text: str) -> None:
    outcome = _compile_or_error(text)
    if isinstance(outcome, ConditionSyntaxError):
        assert outcome.message
        assert 1 <= outcome.column <= len(text) + 1
        return
    for ctx in CONTACTS.values():
        assert isinstance(outcome.evaluate(ctx), bool)


@settings(max_examples=300)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=14).flatmap(
    lambda parts: st.sampled_from(["", " "]).map(lambda sep: sep.join(parts))
))  # fmt: skip
def test_token_soup_compiles_or_raises_only_condition_syntax_error(text: str) -> None:
    _assert_compiles_or_fails_cleanly(text)


@given(st.text(max_size=60))
def test_arbitrary_text_compiles_or_raises_only_condition_syntax_error(text: str) -> None:
    _assert_compiles_or_fails_cleanly(text)


FIELD_NAMES = ["_Credits", "FirstName", "Code", "Points"]
field_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.decimals(),
    st.text(max_size=12),
    st.from_regex(r"\A\s*[+-]{0,2}[0-9²١]{0,6}(\.[0-9]*)?([eE][+-]?[0-9]{1,20})?\s*\Z"),
)
contacts = st.one_of(
    st.none(),
    st.builds(
        Contact,
        id=st.integers(1, 10**6),
        email=st.text(max_size=10),
        tags=st.lists(st.builds(Tag, st.integers(0, 50), st.text(max_size=8)), max_size=4),
        fields=st.dictionaries(st.sampled_from(FIELD_NAMES), field_values, max_size=4),
    ),
)

quoted = st.text(max_size=8).map(lambda s: "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'")
tag_ref = st.one_of(st.integers(0, 50).map(str), st.sampled_from(["'Gold'", "'Silver'", "'7'"]))
value = st.one_of(
    st.integers(-100, 100).map(str),
    st.sampled_from(["1.5", "'007'", "'1e1'", "''"]),
    quoted,
    st.sampled_from(FIELD_NAMES).map(lambda n: f"field('{n}')"),
    st.sampled_from(FIELD_NAMES).map(lambda n: f"credits('{n}')"),
    st.just("credits()"),
)
test_atom = st.one_of(
    st.sampled_from(["true", "false", "logged_in()"]),
    tag_ref.map(lambda r: f"has_tag({r})"),
    st.lists(tag_ref, min_size=1, max_size=3).map(lambda rs: f"has_any_tag({', '.join(rs)})"),
    st.lists(tag_ref, min_size=1, max_size=3).map(lambda rs: f"has_all_tags({', '.join(rs)})"),
    st.tuples(value, st.sampled_from(["==", "=", "!=", "<", "<=", ">", ">="]), value).map(" ".join),
)
valid_conditions = st.recursive(
    test_atom,
    lambda inner: st.one_of(
        inner.map(lambda c: f"not ({c})"),
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
            lambda t: f"({t[0]}) {t[1]} ({t[2]})"
        ),
    ),
    max_leaves=8,
)


@settings(max_examples=200)
@given(valid_conditions, contacts)
def test_valid_conditions_compile_and_evaluation_never_raises(
    text: str, contact: Contact | None
) -> None:
    assert isinstance(compile_condition(text).evaluate(Context(contact=contact)), bool)


@given(valid_conditions, valid_conditions, contacts)
def test_not_and_or_agree_with_python_logic(a: str, b: str, contact: Contact | None) -> None:
    ctx = Context(contact=contact)
    x, y = compile_condition(a).evaluate(ctx), compile_condition(b).evaluate(ctx)
    assert compile_condition(f"not ({a})").evaluate(ctx) is (not x)
    assert compile_condition(f"({a}) and ({b})").evaluate(ctx) is (x and y)
    assert compile_condition(f"({a}) or ({b})").evaluate(ctx) is (x or y)


@given(contacts)
def test_anonymous_and_missing_balances_never_pass_a_numeric_minimum(
    contact: Contact | None,
) -> None:
    ctx = Context(contact=contact)
    has_balance = compile_condition("credits() != ''").evaluate(ctx)
    if not has_balance:
        assert compile_condition("credits() >= 0").evaluate(ctx) is False
        assert compile_condition("credits() >= -1000000").evaluate(ctx) is False
