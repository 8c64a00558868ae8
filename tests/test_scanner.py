"""The fast scanner reads tags exactly as Lark's own lexer reads grammar.lark."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from shortcodes.parser import CANDIDATE_RE, lex_attrs, reference_attr_tokens, reference_tokens, scan

# Pieces that make tags, near-tags and broken tags likely.
PIECES = st.sampled_from(
    [
        "[",
        "]",
        "/",
        "[/",
        "a",
        "bb",
        "c-d",
        "e.f",
        " ",
        "\n",
        '"',
        "'",
        "=",
        "x=1",
        'y="v"',
        "[[",
        "]]",
        "<:",
        ":>",
        "{{contact.id}}",
        "\\",
        "é",
        "\u00a0",
    ]
)
PAGES = st.lists(PIECES, max_size=30).map("".join)


def _all_names(text: str) -> set[str]:
    return {m.group(2) for m in CANDIDATE_RE.finditer(text)}


@settings(max_examples=500, deadline=None)
@given(PAGES)
@example('[a["[]"')  # a quoted value runs past the last "]": Lark reads no tag at 0
@example("[a '[]' [bb \"[x]\" x=1")  # no "]" after the quoted values: read to the first "]"
@example("[a[/]x[/a] [bb x=1[/a]")  # "[/" begins a closer only with a name and "]"
@example('[a "[]" [a "[]" [a "[]"\n[bb "[/a]" [/a]')  # failed readings across one stretch
def test_scanner_finds_the_same_tags_as_larks_lexer(page: str) -> None:
    """With every spelled name registered, scan() and Lark's lexer yield the same tags."""
    ours = [
        ("CLOSE" if closing else "OPEN", start, end)
        for start, end, _n, closing, _b, _at, _s in scan(page, _all_names(page))
    ]
    assert ours == reference_tokens(page)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ['a="1"', "b='2'", "c=3", '"p"', "'q'", "r", "s=", '"t"u', " ", "  ", 'D = "x"']
        ),
        max_size=12,
    ).map(" ".join)
)
def test_attribute_lexer_matches_larks_attrs_rule(text: str) -> None:
    """lex_attrs splits attribute text into the same items as Lark's lexer on the attrs rule."""
    assert [item.source for item in lex_attrs(text)] == [
        tok for _type, tok in reference_attr_tokens(text)
    ]


def test_unregistered_names_do_not_hide_registered_tags_inside_them() -> None:
    """An unknown [word ...] is text, so a registered tag written inside it is still found."""
    tags = list(scan("[note see [b x=1] here]", {"b"}))
    assert [(t[2], t[4]) for t in tags] == [("b", " x=1")]


def test_scanning_unfinished_tags_stays_linear_in_work() -> None:
    """20,000 unfinished openers with no ']' anywhere: the search is bounded, nothing is found."""
    assert list(scan("[b " * 20_000, {"b"})) == []


def test_a_failed_reading_falls_back_to_the_first_bracket_for_every_opener() -> None:
    """Openers whose quoted values are not followed by their "]" are each read as WordPress reads
    them (to the first "]"), however many share the stretch a failed reading scanned."""
    tags = list(scan('[b "[]" ' * 3, {"b"}))
    assert [(t[0], t[1], t[4]) for t in tags] == [(0, 6, ' "['), (8, 14, ' "['), (16, 22, ' "[')]


def test_an_unquoted_closer_leaves_each_opener_before_it_unfinished() -> None:
    """Unterminated openers before a "[/c]" are text, and the closer is still found."""
    tags = list(scan("[b x=1 " * 3 + "[/c]", {"b", "c"}))
    assert [(t[2], t[3]) for t in tags] == [("c", True)]
