"""The one error policy: strict raises, preview shows the escaped notice, visitors the fallback.

Every failure of a shortcode while rendering goes through ``CompiledShortcode.fail``. These tests
prove that the builtin gates use it too (strict mode used not to reach them) and that
``ShortcodeRenderError`` is what strict mode raises, chained to the cause.
"""

from __future__ import annotations

import logging

import pytest
from markupsafe import Markup

from shortcodes import (
    Attribute,
    Contact,
    Context,
    Environment,
    Shortcode,
    ShortcodeRenderError,
    ShortcodeSyntaxError,
    Tag,
)
from shortcodes.errors import ActionButtonError, AttributeValueError, GateError

ANN = Contact(
    7,
    "ann@example.com",
    tags=[Tag(7, "Gold")],
    fields={"Op": "=>", "Eq": "eq", "NoTags": " , ", "Neg": "maybe"},
)
PREVIEW = Context(contact=ANN)
VISITOR = Context(contact=ANN, show_errors=False)

#: memb_if with an operator that comes from contact data: lint cannot judge it, rendering can.
BROKEN_IF = (
    'intro\n  [memb_if value1="1" test="{{contact.Op}}" value2="1"]'
    "PASS-TEXT[else]fail text[/memb_if] outro"
)
UNKNOWN_TEST = (
    "unknown test '=>'; the tests are: = == eq != ne > gt < lt >= ge <= le bw ew contains "
    "in !in range !range"
)
ESCAPED_UNKNOWN_TEST = (
    "unknown test &#39;=&gt;&#39;; the tests are: = == eq != ne &gt; gt &lt; lt &gt;= ge "
    "&lt;= le bw ew contains in !in range !range"
)
#: memb_has_any_tag whose list, read from contact data, names no tag.
BROKEN_TAGS = (
    '[memb_has_any_tag tagid="{{contact.NoTags}}"]PASS-TEXT[else]fail text[/memb_has_any_tag]'
)


def boom(sc: Shortcode, ctx: Context) -> str:
    """A handler that always raises, with HTML in its message."""
    raise ZeroDivisionError("<b>no</b> division")


@pytest.fixture
def env() -> Environment:
    return Environment()


@pytest.fixture
def strict() -> Environment:
    return Environment(strict=True)


# -- gates: strict mode reaches them -------------------------------------------------------------


def test_strict_mode_raises_for_a_gate_with_a_broken_operator(strict: Environment) -> None:
    """The gate no longer picks its fail branch silently: ShortcodeRenderError, from GateError."""
    with pytest.raises(ShortcodeRenderError) as info:
        strict.render(BROKEN_IF, PREVIEW)
    error = info.value
    assert (error.name, error.line, error.column) == ("memb_if", 2, 3)
    assert str(error) == f"[memb_if] at line 2, column 3 failed: {UNKNOWN_TEST}"
    assert isinstance(error.__cause__, GateError)
    assert str(error.__cause__) == UNKNOWN_TEST


def test_strict_mode_raises_for_a_tag_gate_whose_list_names_no_tag(strict: Environment) -> None:
    with pytest.raises(ShortcodeRenderError) as info:
        strict.render(BROKEN_TAGS, PREVIEW)
    assert (info.value.name, info.value.line, info.value.column) == ("memb_has_any_tag", 1, 1)
    assert isinstance(info.value.__cause__, GateError)
    assert str(info.value.__cause__) == 'the tag list is empty: give tagid="Tag name or id, ..."'


def test_strict_mode_raises_for_a_gate_whose_not_does_not_read(strict: Environment) -> None:
    """not="{{contact.Neg}}" giving "maybe" fails the gate in strict mode too."""
    page = '[memb_if value1="1" value2="1" not="{{contact.Neg}}"]PASS-TEXT[else]fail[/memb_if]'
    with pytest.raises(ShortcodeRenderError) as info:
        strict.render(page, PREVIEW)
    assert str(info.value.__cause__) == "attribute not='maybe' is not yes or no"


def test_strict_mode_still_raises_syntax_errors_for_a_broken_condition(strict: Environment) -> None:
    """A condition lint can read is a page error: ShortcodeSyntaxError when compiling, as before."""
    with pytest.raises(ShortcodeSyntaxError) as info:
        strict.render('[memb_if condition="has_tag("]x[/memb_if]')
    assert (info.value.line, info.value.column) == (1, 29)
    assert info.value.message == (
        "[memb_if] condition, column 9: expected a quoted name or a number in has_tag()"
    )


def test_strict_mode_still_raises_syntax_errors_for_an_unknown_operator(
    strict: Environment,
) -> None:
    with pytest.raises(ShortcodeSyntaxError) as info:
        strict.render('[memb_if value1="1" test="=>" value2="1"]x[/memb_if]')
    assert (info.value.line, info.value.column) == (1, 27)
    assert info.value.message == f"[memb_if]: {UNKNOWN_TEST}"


def test_strict_mode_renders_a_gate_whose_dynamic_operator_is_known(strict: Environment) -> None:
    """Strict mode raises only for a failure: the same tag with a real operator renders."""
    page = BROKEN_IF.replace("{{contact.Op}}", "{{contact.Eq}}")
    assert strict.render(page, PREVIEW) == "intro\n  PASS-TEXT outro"


# -- gates: preview and visitors -----------------------------------------------------------------


def test_preview_shows_the_escaped_notice_then_the_fail_branch(env: Environment) -> None:
    assert str(env.render(BROKEN_IF, PREVIEW)) == (
        'intro\n  <span class="shortcode-error">[memb_if] (line 2, column 3): '
        f"{ESCAPED_UNKNOWN_TEST}</span>fail text outro"
    )


def test_visitors_get_the_fail_branch_of_a_broken_gate(env: Environment) -> None:
    out = str(env.render(BROKEN_IF, VISITOR))
    assert out == "intro\n  fail text outro"
    assert "PASS-TEXT" not in out


def test_visitors_get_the_fail_branch_of_a_broken_tag_gate(env: Environment) -> None:
    assert env.render(BROKEN_TAGS, VISITOR) == "fail text"


def test_not_does_not_turn_a_broken_gate_into_a_pass(env: Environment) -> None:
    page = BROKEN_IF.replace('value2="1"]', 'value2="1" not="yes"]')
    assert env.render(page, VISITOR) == "intro\n  fail text outro"


def test_a_gate_whose_not_does_not_read_shows_neither_branch(env: Environment) -> None:
    """With the negation unknown, neither branch is known to be safe: the fallback is nothing."""
    page = '[memb_if value1="1" value2="1" not="{{contact.Neg}}"]PASS-TEXT[else]fail[/memb_if]'
    assert env.render(page, VISITOR) == ""
    assert str(env.render(page, PREVIEW)) == (
        '<span class="shortcode-error">[memb_if] (line 1, column 1): '
        "attribute not=&#39;maybe&#39; is not yes or no</span>"
    )


def test_a_broken_gate_without_content_says_no(env: Environment) -> None:
    page = '[memb_if value1="1" test="{{contact.Op}}" value2="1"][/memb_if]'
    assert env.render(page, VISITOR) == "No"


# -- any handler ---------------------------------------------------------------------------------


def test_strict_mode_raises_render_error_from_a_failing_handler() -> None:
    env = Environment(builtins=False, strict=True)
    env.add_shortcode("boom", boom)
    with pytest.raises(ShortcodeRenderError) as info:
        env.render("one\ntwo [boom] three")
    error = info.value
    assert (error.name, error.line, error.column) == ("boom", 2, 5)
    assert str(error) == "[boom] at line 2, column 5 failed: <b>no</b> division"
    assert isinstance(error.__cause__, ZeroDivisionError)
    assert str(error.__cause__) == "<b>no</b> division"


def test_a_failure_nested_in_a_gate_is_raised_once_with_its_own_position(
    strict: Environment,
) -> None:
    """The inner tag's ShortcodeRenderError passes through the gate unwrapped."""
    strict.add_shortcode("boom", boom)
    with pytest.raises(ShortcodeRenderError) as info:
        strict.render('[memb_has_any_tag tagid="Gold"]\n [boom][/memb_has_any_tag]', PREVIEW)
    assert (info.value.name, info.value.line, info.value.column) == ("boom", 2, 2)
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_preview_shows_a_failing_handler_as_an_escaped_notice() -> None:
    env = Environment(builtins=False)
    env.add_shortcode("boom", boom)
    assert str(env.render("a [boom] b")) == (
        'a <span class="shortcode-error">[boom] (line 1, column 3): '
        "&lt;b&gt;no&lt;/b&gt; division</span> b"
    )


def test_a_registered_fallback_is_what_visitors_see() -> None:
    """add_shortcode(fallback=...) is the shortcode's safe fallback: alone for visitors, after
    the notice in preview, never in strict mode."""
    env = Environment(builtins=False)
    env.add_shortcode("boom", boom, fallback=lambda sc: Markup("<i>unavailable</i>"))
    assert env.render("[boom]", Context(show_errors=False)) == "<i>unavailable</i>"
    assert str(env.render("[boom]")) == (
        '<span class="shortcode-error">[boom] (line 1, column 1): &lt;b&gt;no&lt;/b&gt; '
        "division</span><i>unavailable</i>"
    )


def test_a_fallback_that_returns_plain_text_is_escaped() -> None:
    env = Environment(builtins=False)
    env.add_shortcode("boom", boom, fallback=lambda sc: "<i>a & b</i>")
    assert env.render("[boom]", Context(show_errors=False)) == "&lt;i&gt;a &amp; b&lt;/i&gt;"


def test_a_fallback_that_raises_renders_nothing() -> None:
    env = Environment(builtins=False)
    env.add_shortcode("boom", boom, fallback=lambda sc: str(1 // 0))
    assert env.render("a[boom]b", Context(show_errors=False)) == "ab"


def test_an_action_button_without_a_signer_raises_in_strict_mode(strict: Environment) -> None:
    with pytest.raises(ShortcodeRenderError) as info:
        strict.render('[memb_actionset_button action_id="buy"]', PREVIEW)
    assert isinstance(info.value.__cause__, ActionButtonError)
    assert str(info.value.__cause__) == "cannot sign the button: the context carries no signer"


def test_a_declared_attribute_that_does_not_convert_raises_in_strict_mode() -> None:
    """Lint cannot see a {{variable}}: the conversion fails while rendering, and strict raises."""
    env = Environment(builtins=False, strict=True)
    env.add_shortcode(
        "m", lambda sc, ctx: str(sc.attrs["count"]), attributes=[Attribute("count", int)]
    )
    with pytest.raises(ShortcodeRenderError) as info:
        env.render('[m count="{{contact.Neg}}"]', PREVIEW)
    assert str(info.value.__cause__) == "attribute count='maybe' is not a whole number"


# -- logging -------------------------------------------------------------------------------------


def test_an_author_mistake_is_logged_as_a_warning_without_a_traceback(
    env: Environment, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="shortcodes"):
        env.render(BROKEN_IF, VISITOR)
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == f"shortcode [memb_if] at line 2, column 3: {UNKNOWN_TEST}"
    assert record.exc_info is None


def test_a_crashing_handler_is_logged_as_an_error_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = Environment(builtins=False)
    env.add_shortcode("boom", boom)
    with caplog.at_level(logging.INFO, logger="shortcodes"):
        env.render("[boom]", Context(show_errors=False))
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "shortcode [boom] at line 1, column 1 failed: <b>no</b> division"
    assert record.exc_info is not None
    assert record.exc_info[0] is ZeroDivisionError


def test_author_errors_are_value_errors_too() -> None:
    """GateError and friends stay ValueErrors, so callers that caught ValueError still do."""
    assert issubclass(GateError, ValueError)
    assert issubclass(AttributeValueError, ValueError)
    assert issubclass(ActionButtonError, ValueError)
