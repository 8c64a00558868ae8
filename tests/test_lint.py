"""Lint and strict mode: every problem has line, column, a caret snippet and a clear message."""

from __future__ import annotations

import pytest

from shortcodes import Attribute, Environment, ShortcodeSyntaxError
from tests.support.fixture_loader import Case, load_cases

CASES = load_cases("errors.txt")


def make_env(strict: bool = False) -> Environment:
    """The environment errors.txt is written against."""
    env = Environment(builtins=False, strict=strict)
    env.add_shortcode(
        "memb_if", lambda sc, ctx: sc.render_branch(True), enclosing=True,
        else_markers=["else", "else_memb_if"],
    )  # fmt: skip
    env.add_shortcode("memb_contact", lambda sc, ctx: "x")
    env.add_shortcode(
        "cb",
        lambda sc, ctx: "cb",
        attributes=[Attribute("cost", int, required=True), Attribute("name")],
    )
    return env


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_lint_case(case: Case) -> None:
    """Each page lints to exactly the listed problems, in page order."""
    problems = make_env().lint(case.input)
    assert "\n".join(p.format() for p in problems) == case.expected


@pytest.mark.parametrize("case", [c for c in CASES if "error:" in c.expected], ids=lambda c: c.id)
def test_strict_mode_raises_the_first_error_with_its_position(case: Case) -> None:
    """In strict mode the first error-severity problem is raised with the same line and column."""
    first = next(p for p in make_env().lint(case.input) if p.severity == "error")
    with pytest.raises(ShortcodeSyntaxError) as info:
        make_env(strict=True).compile(case.input)
    assert (info.value.line, info.value.column, info.value.message) == (
        first.line, first.column, first.message,
    )  # fmt: skip


def test_warnings_alone_do_not_fail_strict_mode() -> None:
    """A stray closer is a warning: strict mode still compiles and renders the page."""
    assert make_env(strict=True).render("a [/memb_if] b") == "a [/memb_if] b"


def test_nesting_beyond_the_cap_is_reported_and_rendered_as_text() -> None:
    """Gates nested past max_depth: lint names the cap, the page renders without recursion."""
    env = Environment(builtins=False, max_depth=5)
    env.add_shortcode("g", lambda sc, ctx: sc.render_content(), enclosing=True)
    page = "[g]" * 8 + "core" + "[/g]" * 8
    messages = [p.message for p in env.lint(page)]
    assert "[g] is nested deeper than 5 levels; it is shown as text" in messages
    assert env.render(page) == "[g][g][g]core[/g][/g][/g]"


def test_long_lines_are_clipped_around_the_problem_in_the_snippet() -> None:
    """A problem deep in a 5,000-character line shows a short snippet with the caret under it."""
    page = "x" * 5000 + "[/memb_if]"
    problem = make_env().lint(page)[0]
    line, caret = problem.snippet.split("\n")
    assert len(line) <= 121
    assert line[caret.index("^") :].startswith("[/memb_if]")
