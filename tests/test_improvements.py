"""The spec's deliberate improvements over WordPress, and DESIGN.md's error and escaping policy.

Text-in, text-out cases live in ``tests/fixtures/improvements.txt``, each beside WordPress's
output for the same input. Behaviour that is not text in, text out (lint, strict mode, handler
failures, one compiled page for many visitors) is tested here.
"""

from __future__ import annotations

import pytest

from shortcodes import Context, ShortcodeRenderError, ShortcodeSyntaxError
from tests.support.fixture_loader import Case, load_cases
from tests.support.wp_handlers import VISITORS, HandlerFailed, make_env, run_case

CASES = load_cases("improvements.txt")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_improvement_case(case: Case) -> None:
    """Each improvement case renders, strips or is found as the spec says (not as WordPress)."""
    actual, expected = run_case(case)
    assert actual == expected


# ---- gates fail closed: lint and strict mode -----------------------------------------------------


def test_lint_reports_an_unclosed_gate_as_an_error_at_its_opener() -> None:
    """An enclosing shortcode left unclosed is a lint error pointing at its opening tag."""
    env, _ = make_env()
    problems = env.lint("intro\n  [gate]secret\n")
    errors = [p for p in problems if p.severity == "error"]
    assert [(p.line, p.column) for p in errors] == [(2, 3)]
    assert "gate" in errors[0].message
    assert errors[0].snippet.startswith("  [gate]secret\n  ^")


def test_lint_is_silent_about_an_unclosed_non_enclosing_tag() -> None:
    """A non-enclosing opener without a closer is ordinary WordPress usage, not an error."""
    env, _ = make_env()
    assert [p for p in env.lint("[footag foo=1] [baztag]x") if p.severity == "error"] == []


def test_strict_mode_raises_for_an_unclosed_gate_with_its_position() -> None:
    """Strict mode turns the unclosed-gate problem into ShortcodeSyntaxError, same position."""
    env, _ = make_env(strict=True)
    with pytest.raises(ShortcodeSyntaxError) as info:
        env.render("ok\n[gate]secret")
    message = (
        "[gate] is never closed; it hides everything after it up to the end of its parent"
        " (add [/gate])"
    )
    assert (info.value.line, info.value.column, info.value.message) == (2, 1, message)
    assert str(info.value) == f"<page>:2:1: error: {message}\n[gate]secret\n^^^^^^"


def test_strict_mode_renders_a_correct_page() -> None:
    """Strict mode raises only for problems: a well-formed page renders as usual."""
    env, _ = make_env(strict=True)
    assert env.render("[gate]x[/gate][footag foo=1]", VISITORS["ann"]) == "xfoo = 1"


def test_lint_warns_about_an_unknown_variable_where_it_is_written() -> None:
    """An unknown {{variable}} renders as '' and lint points at it."""
    env, _ = make_env()
    problems = env.lint('ok\n[footag foo="{{nope.x}}"]')
    assert [(p.line, p.column) for p in problems if "nope.x" in p.message] == [(2, 9)]


# ---- a handler that raises ---------------------------------------------------------------------


def test_a_failing_handler_renders_an_escaped_inline_notice_by_default() -> None:
    """Default mode: the page renders, the failing tag becomes a notice with its message escaped."""
    env, _ = make_env()
    assert str(env.render("before [boom] after")) == (
        'before <span class="shortcode-error">[boom] (line 1, column 8): '
        "&lt;b&gt;boom&lt;/b&gt;</span> after"
    )


def test_a_failing_handler_renders_nothing_when_errors_are_hidden() -> None:
    """Context(show_errors=False) (what visitors get): the failing tag renders as nothing."""
    env, _ = make_env()
    assert env.render("before [boom] after", Context(show_errors=False)) == "before  after"


def test_a_failing_handler_propagates_in_strict_mode() -> None:
    """Strict mode: ShortcodeRenderError says which tag failed where; the handler's own
    exception reaches the caller as its __cause__."""
    env, _ = make_env(strict=True)
    with pytest.raises(ShortcodeRenderError) as info:
        env.render("before [boom] after")
    error = info.value
    assert (error.name, error.line, error.column) == ("boom", 1, 8)
    assert str(error) == "[boom] at line 1, column 8 failed: <b>boom</b>"
    assert isinstance(error.__cause__, HandlerFailed)
    assert str(error.__cause__) == "<b>boom</b>"


def test_a_failing_handler_inside_content_spares_its_parent() -> None:
    """The notice replaces only the failing tag; the enclosing shortcode still renders."""
    env, _ = make_env()
    out = str(env.render("[wrap]a[boom]b[/wrap]", Context(show_errors=False)))
    assert out == "<div>ab</div>"


# ---- parse once, render for many visitors ------------------------------------------------------


def test_one_compiled_page_renders_differently_per_visitor() -> None:
    """compile() parses once; each render reads only its own context (no state leaks across)."""
    env, _ = make_env()
    page = env.compile('[gate]Hi [footag foo="{{contact.FirstName}}"][/gate]|[gate]unclosed')
    assert page.render(VISITORS["ann"]) == "Hi foo = Ann|unclosed"
    assert page.render(None) == "|"
    assert page.render(VISITORS["mallory"]) == (
        "Hi foo = [boom]&lt;script&gt;x&lt;/script&gt;|unclosed"
    )
    assert page.render(VISITORS["ann"]) == "Hi foo = Ann|unclosed"
