"""WordPress compatibility: the cases of WordPress's own shortcode suite, run on the engine.

The cases live in ``tests/fixtures/wordpress.txt`` (the file's header lists what was not ported
and why); name registration is tested here because it is not text in, text out.
"""

from __future__ import annotations

import pytest

from shortcodes import Environment
from tests.support.fixture_loader import Case, load_cases
from tests.support.wp_handlers import run_case

CASES = load_cases("wordpress.txt")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_wordpress_case(case: Case) -> None:
    """Each ported WordPress case renders, strips or is found exactly as in WordPress."""
    actual, expected = run_case(case)
    assert actual == expected


def _ok(sc: object, ctx: object) -> str:
    return "ok"


# data_registration_bad, plus the rest of WordPress's reserved set: = and control characters.
BAD_NAMES = {
    "<html>": "<",
    "[shortcode]": "[",
    "bad/": "/",
    "/bad": "/",
    "bad space": " ",
    "&amp;": "&",
    "a=b": "=",
    "tab\there": "\t",
    "new\nline": "\n",
    "nul\x00": "\x00",
    "unit\x1fsep": "\x1f",
}


@pytest.mark.parametrize("name", sorted(BAD_NAMES), ids=repr)
def test_registering_a_reserved_character_is_refused(name: str) -> None:
    """data_registration_bad: a name holding < > & / [ ] = whitespace or a control char raises."""
    env = Environment(builtins=False)
    with pytest.raises(ValueError, match="shortcode name") as info:
        env.add_shortcode(name, _ok)
    bad = BAD_NAMES[name]
    # The message names the name, the first bad character and its position.
    assert str(info.value) == (
        f"invalid shortcode name {name!r}: {bad!r} at position {name.index(bad)} is not allowed"
        " (names may not contain < > & / [ ] =, whitespace or control characters)"
    )
    assert env.render(f"[{name}]") == f"[{name}]"


def test_registering_an_empty_name_is_refused() -> None:
    """data_registration_bad: the empty name raises ValueError."""
    with pytest.raises(ValueError, match="shortcode name"):
        Environment(builtins=False).add_shortcode("", _ok)


GOOD_NAMES = ["good!", "plain", "unreserved!#$%()*+,-.;?@^_{|}~chars", "ünïcödé", "x"]


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_a_name_with_unreserved_characters_registers_and_runs(name: str) -> None:
    """data_registration_good: such names register, and [name] then runs the handler."""
    env = Environment(builtins=False)
    env.add_shortcode(name, _ok)
    assert env.render(f"a[{name}]b [{name} x=1 /] [{name}]c[/{name}]") == "aokb ok ok"


def test_the_decorator_registers_like_add_shortcode() -> None:
    """@env.shortcode(name) is the decorator twin of add_shortcode (Flask-style API)."""
    env = Environment(builtins=False)

    @env.shortcode("hello")
    def hello(sc: object, ctx: object) -> str:
        return "hi"

    assert env.render("[hello] [hello/]") == "hi hi"
