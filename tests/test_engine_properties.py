"""Engine properties that must hold for any text an author can type (hypothesis).

Generated pages are built from the pieces that make shortcodes hard - brackets, slashes, quotes,
registered names and near misses, escapes, the Memberium stand-ins, variables, odd spaces - mixed
with arbitrary text, so hypothesis explores malformed tags rather than plain prose.
"""

from __future__ import annotations

import contextlib
import re

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from shortcodes import Environment, ShortcodeSyntaxError, parse_attrs
from tests.support.wp_handlers import VISITORS, make_env

ENV, _RECORDER = make_env()
NAMES = sorted(ENV.shortcodes)

SYNTAX = ["[", "]", "[/", "/", "/]", "[[", "]]", '"', "'", "=", " ", "\n", "\t", "\\", "\u00a0"]
STAND_INS = ["<:", ":>", "{{::", "::}}", "{{", "}}", "{{contact.FirstName}}", "{{nope}}"]
NEAR_MISSES = ["FOOTAG", "footagx", "foot", "ag", "hyphen-baz", "dumptag_x", "nope", "else", "é"]
PIECES = st.sampled_from(SYNTAX + STAND_INS + NEAR_MISSES + NAMES + ["a=", "x", "1"])
PAGES = st.lists(st.one_of(PIECES, st.text(max_size=4)), max_size=40).map("".join)
PAGES_WITHOUT_NAMES = st.lists(
    st.one_of(st.sampled_from(SYNTAX + STAND_INS + NEAR_MISSES + ["a=", "x"]), st.text(max_size=4)),
    max_size=40,
).map("".join)

# Conservative: a registered name right after "[" followed by anything but an ASCII name
# character might be a tag, so such pages are left out of the byte-identical property.
_TAG_START = re.compile(r"\[(?:" + "|".join(re.escape(n) for n in NAMES) + r")(?![A-Za-z0-9_-])")

PROPERTY = settings(max_examples=300, deadline=None)


@PROPERTY
@given(PAGES)
def test_any_text_renders_without_raising_in_the_default_mode(page: str) -> None:
    """Nothing an author types makes render raise (failing handlers become notices)."""
    for ctx in (None, VISITORS["ann"]):
        assert isinstance(str(ENV.render(page, ctx)), str)


@PROPERTY
@given(PAGES_WITHOUT_NAMES)
def test_text_without_a_registered_shortcode_comes_back_byte_identical(page: str) -> None:
    """Unknown tags, stray brackets, stand-ins and variables outside tags are page text."""
    assume(not _TAG_START.search(page))
    assert str(ENV.render(page)) == page


@PROPERTY
@given(PAGES)
def test_compile_then_render_equals_render(page: str) -> None:
    """A compiled page renders exactly like a cold render, for every visitor."""
    template = ENV.compile(page)
    for ctx in (None, VISITORS["ann"], VISITORS["mallory"]):
        assert template.render(ctx) == ENV.render(page, ctx)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(PAGES)
# Removing the inner tag must not join the text around it into a new one.
@example("[foot[footag]ag]")
def test_strip_never_leaves_a_registered_tag_behind(page: str) -> None:
    """After strip, no registered shortcode remains (escaped [[tag]] excepted: it unescapes)."""
    assume("[[" not in page)
    stripped = ENV.strip(page)
    assert [n for n in NAMES if ENV.has_shortcode(stripped, n)] == []


@PROPERTY
@given(PAGES)
def test_lint_never_raises_and_points_inside_the_page(page: str) -> None:
    """lint reports problems for any text, each at a line and column that exist."""
    lines = page.split("\n")
    for problem in ENV.lint(page):
        assert 1 <= problem.line <= len(lines)
        assert 1 <= problem.column <= len(lines[problem.line - 1]) + 1


def _strict_env() -> Environment:
    env, _ = make_env(strict=True)
    env.remove_shortcode("boom")  # a handler that raises on purpose is not a syntax error
    return env


STRICT = _strict_env()


@PROPERTY
@given(PAGES)
def test_strict_mode_fails_only_with_shortcode_syntax_error(page: str) -> None:
    """Strict mode either renders or raises ShortcodeSyntaxError - never anything else."""
    with contextlib.suppress(ShortcodeSyntaxError):
        STRICT.render(page)


@PROPERTY
@given(st.text())
def test_parse_attrs_never_raises_and_numbers_positional_items_in_order(text: str) -> None:
    """Any text gives a dict: positional keys are 0..n-1 in order, named keys lower-case str."""
    attrs = parse_attrs(text)
    positional = [k for k in attrs if isinstance(k, int)]
    assert positional == list(range(len(positional)))
    for key, value in attrs.items():
        assert isinstance(value, str)
        assert isinstance(key, int) or key == key.lower()


@PROPERTY
@given(PAGES)
def test_parse_attrs_never_raises_on_shortcode_like_text(text: str) -> None:
    """The same holds for text full of quotes, brackets and backslashes."""
    assert isinstance(parse_attrs(text), dict)


@PROPERTY
@given(PAGES)
def test_an_unclosed_gate_never_shows_what_follows_it_to_an_anonymous_visitor(rest: str) -> None:
    """Fail closed: whatever follows an unclosed [gate], an anonymous visitor sees none of it."""
    assume("[/gate]" not in rest)
    assert ENV.render("before [gate]" + rest) == "before "
    assert ENV.strip("before [gate]" + rest) == "before "


ATTR_TEXT = st.text(alphabet=st.characters(blacklist_characters="[]"), max_size=30)


@PROPERTY
@given(st.sampled_from(NAMES), ATTR_TEXT)
def test_a_doubled_tag_prints_the_inner_tag_literally(name: str, attrs: str) -> None:
    """[[name attrs]] renders as [name attrs] and runs nothing, whatever the attribute text."""
    assume(not attrs.endswith("/"))
    inner = f"[{name} {attrs}]" if attrs else f"[{name}]"
    before = len(_RECORDER.calls)
    assert ENV.render(f"[{inner}]") == inner
    assert len(_RECORDER.calls) == before


DEPTH = 10_000


def test_ten_thousand_deep_nesting_renders_without_recursion_error() -> None:
    """Deep same-name nesting (closed, unclosed, gated) renders; lint reports the depth cap."""
    for name in ("wrap", "gate"):
        page = f"[{name}]" * DEPTH + "x" + f"[/{name}]" * DEPTH
        out = str(ENV.render(page, VISITORS["ann"]))
        assert "x" in out
        assert any(p.severity == "error" for p in ENV.lint(page))
    assert str(ENV.render("[wrap]" * DEPTH + "x")).endswith("x")
    assert ENV.strip("[gate]" * DEPTH + "x") == ""
