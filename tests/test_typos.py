"""Typos of gates fail closed: the cases of ``tests/fixtures/typos.txt``, and the edit measure."""

from __future__ import annotations

import pytest

from shortcodes import Context, Environment
from shortcodes.typos import near_miss, within_edits
from tests.support.fixture_loader import Case, load_cases

CASES = load_cases("typos.txt")
VISITOR = Context(show_errors=False)


@pytest.fixture(scope="module")
def env() -> Environment:
    """The builtin membership shortcodes."""
    return Environment()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_typo_case(env: Environment, case: Case) -> None:
    """Each near-miss pair hides its content from visitors; every other unknown name is text."""
    if case.mode == "visitor":
        assert str(env.render(case.input, VISITOR)) == case.expected
    else:
        assert case.mode == "lint"
        lines = [f"{p.line}:{p.column}: {p.severity}: {p.message}" for p in env.lint(case.input)]
        assert "\n".join(lines) == case.expected


def test_preview_shows_the_notice_with_did_you_mean(env: Environment) -> None:
    """An author previewing (show_errors) sees why the content is missing, never the content."""
    out = str(env.render("[memb_iff x]secret[/memb_iff]", Context()))
    assert "secret" not in out
    assert "did you mean [memb_if]?" in out


def test_strict_mode_refuses_a_typo_pair() -> None:
    """Strict mode raises on the lint error, so a typo never compiles there."""
    from shortcodes import ShortcodeSyntaxError

    with pytest.raises(ShortcodeSyntaxError, match="did you mean"):
        Environment(strict=True).compile("[memb_iff x]secret[/memb_iff]")


@pytest.mark.parametrize(
    ("a", "b", "limit", "expected"),
    [
        ("memb_if", "memb_if", 0, True),
        ("memb_fi", "memb_if", 1, True),  # a swap is one edit
        ("memb_i", "memb_if", 1, True),
        ("memb_ifxy", "memb_if", 2, True),
        ("memb_ifxyz", "memb_if", 2, False),
        ("abcdef", "badcfe", 2, False),  # three swaps
        ("gate", "gat", 0, False),
    ],
)
def test_within_edits_counts_insertions_deletions_replacements_and_swaps(
    a: str, b: str, limit: int, expected: bool
) -> None:
    """The banded edit measure agrees with the definition on small cases."""
    assert within_edits(a, b, limit) is expected


def test_short_names_match_only_by_case() -> None:
    """A two-letter gate is no target for edits, so [ab]…[/ab] never hides because of [aa]."""
    assert near_miss("ab", ("aa",)) is None
    assert near_miss("AA", ("aa",)) == "aa"
    assert near_miss("gat", ("gate",)) == "gate"  # four letters: one edit
    assert near_miss("gt", ("gate",)) is None
