"""How the builtins are registered: names, numbered aliases, gates fail closed, markers, caching."""

from __future__ import annotations

import pytest

from shortcodes import Context, Environment
from shortcodes.builtin import compare

GATES = ("memb_is_logged_in", "memb_has_any_tag", "memb_has_all_tags", "memb_if", "memb_compare")
OTHERS = (
    "memb_contact",
    "memb_actionset_button",
    "buy_actionset_button",
    "credit_balance",
    "credit_history",
)


@pytest.fixture(scope="module")
def env() -> Environment:
    """An environment with the builtins."""
    return Environment()


def test_every_builtin_and_numbered_alias_is_registered(env: Environment) -> None:
    names = {g + s for g in GATES for s in ("", *"123456789")} | set(OTHERS)
    assert names <= set(env.shortcodes)


def test_builtins_are_absent_from_an_empty_environment() -> None:
    assert Environment(builtins=False).shortcodes == {}


@pytest.mark.parametrize("name", [g + s for g in GATES for s in ("", "1", "9")])
def test_every_gate_is_enclosing_so_it_fails_closed(env: Environment, name: str) -> None:
    assert env.shortcodes[name].enclosing


@pytest.mark.parametrize(
    ("name", "markers"),
    [
        ("memb_if", ("else", "else_memb_if", "else_if")),
        ("memb_if4", ("else", "else_memb_if4", "else_if4")),
        ("memb_compare", ("else", "else_memb_compare", "else_compare")),
        ("memb_has_all_tags2", ("else", "else_memb_has_all_tags2", "else_has_all_tags2")),
        ("memb_is_logged_in", ("else", "else_memb_is_logged_in", "else_is_logged_in")),
    ],
)
def test_else_markers_are_bare_long_and_short(
    env: Environment, name: str, markers: tuple[str, ...]
) -> None:
    assert env.shortcodes[name].else_markers == markers


def test_aliases_name_their_base_for_the_reference(env: Environment) -> None:
    assert env.shortcodes["memb_if3"].extra["alias_of"] == "memb_if"
    assert env.shortcodes["memb_compare"].extra["alias_of"] == "memb_if"
    assert env.shortcodes["buy_actionset_button"].extra["alias_of"] == "memb_actionset_button"
    assert "alias_of" not in env.shortcodes["memb_if"].extra


@pytest.mark.parametrize("name", [*GATES[:4], *OTHERS])
def test_every_builtin_has_a_description_and_an_example(env: Environment, name: str) -> None:
    spec = env.shortcodes[name]
    assert spec.description
    assert spec.example
    assert [p for p in env.lint(spec.example) if p.severity == "error"] == []


def test_a_condition_is_compiled_once_per_attribute_text(
    env: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = compare.compile_condition

    def counting(text: str) -> object:
        calls.append(text)
        return real(text)

    monkeypatch.setattr(compare, "compile_condition", counting)
    fresh = Environment()  # its cache is empty; the patched compiler counts its work
    template = fresh.compile(
        '[memb_if condition="credits() > 1 and logged_in()"]y[/memb_if]'
        '[memb_if condition="bad ("]y[/memb_if]'
    )
    for _ in range(5):
        template.render(Context())
    assert sorted(calls) == ["bad (", "credits() > 1 and logged_in()"]


def test_gates_register_through_the_public_api_like_a_theme(env: Environment) -> None:
    # A theme can replace a builtin with add_shortcode, and the page uses the new handler.
    own = Environment()
    own.add_shortcode("credit_balance", lambda sc, ctx: "many")
    assert str(own.render("[credit_balance]")) == "many"
