"""Stage 1, tokenizing: page text to raw tag tokens, and attribute text to attribute items.

This is the only module that imports ``lark``. ``grammar.lark`` (package data, loaded once) is the
single definition of how tags and attributes are spelled. Lark loads and validates it, composes its
terminals and orders them by priority; the scanners below then run those very terminal patterns
with Python's ``re`` over the whole page, so the text between tags is skipped in C instead of
being handed to Python one token at a time (Lark's lexer yields a Python object per token, which
is ten times too slow for a page engine). :func:`reference_tokens` runs Lark's own lexer over the
same grammar; the test suite checks that both tokenize every input identically.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Final

from lark import Lark

_GRAMMAR: Final = resources.files("shortcodes").joinpath("grammar.lark").read_text("utf-8")


@cache
def _lark(start: str) -> Lark:
    return Lark(_GRAMMAR, start=start, parser="lalr", lexer="basic")


def _terminal(start: str, name: str) -> str:
    """The regular expression Lark compiled for terminal ``name`` of the rule ``start``."""
    for term in _lark(start).terminals:
        if term.name == name:
            pattern: str = term.pattern.to_regexp()
            return pattern
    raise LookupError(f"grammar.lark has no terminal {name} under {start}")  # pragma: no cover


_NAME = _terminal("tag", "TAG_NAME")
_BODY = _terminal("tag", "TAG_BODY")

#: One search finds the next opening or closing tag; the text between matches is page text.
#: Groups: 1 closer's name, 2 opener's name, 3 opener's attribute text, 4 self-closing slash.
TAG_RE: Final = re.compile(rf"\[(?:/(?P<close>{_NAME})\]|(?P<open>{_NAME})(?P<body>{_BODY})?(?P<slash>/)?\])")

_ATTR_KINDS: Final = ("NAMED_DQ", "NAMED_SQ", "NAMED_BARE", "POS_DQ", "POS_SQ", "POS_BARE")

#: The attribute items as one alternation in the grammar's priority order (WordPress's order).
ATTR_RE: Final = re.compile(
    "|".join(f"(?P<{kind}>{_terminal('attrs', kind)})" for kind in _ATTR_KINDS)
)

#: Closing tags alone (see :func:`last_closers`).
CLOSE_RE: Final = re.compile(rf"\[/({_NAME})\]")

#: A valid shortcode name, whole.
NAME_RE: Final = re.compile(_NAME)

# U+00A0 and U+200B count as spaces in attribute text, as in WordPress.
_ODD_SPACES: Final = str.maketrans({"\u00a0": " ", "\u200b": " "})


@dataclass(frozen=True, slots=True)
class RawTag:
    """One opening or closing tag as spelled in the page, before names are resolved.

    ``start``/``end`` are offsets of the brackets; ``body`` is the attribute text of an opener.
    """

    start: int
    end: int
    name: str
    closing: bool
    body: str
    self_closing: bool


def scan(text: str) -> Iterator[RawTag]:
    """Yield every opening and closing tag of ``text`` in order, whatever its name."""
    for m in TAG_RE.finditer(text):
        close = m.group("close")
        if close is not None:
            yield RawTag(m.start(), m.end(), close, True, "", False)
        else:
            yield RawTag(
                m.start(), m.end(), m.group("open"), False, m.group("body") or "", bool(m.group("slash"))
            )


def scan_tuples(text: str) -> Iterator[tuple[int, int, str, bool, str, bool]]:
    """Like :func:`scan`, as plain tuples (start, end, name, closing, body, self_closing).

    The tree builder's hot loop uses this form: a tuple costs a fraction of a dataclass.
    """
    for m in TAG_RE.finditer(text):
        close, name, body, slash = m.group("close", "open", "body", "slash")
        if close is not None:
            yield m.start(), m.end(), close, True, "", False
        else:
            yield m.start(), m.end(), name, False, body or "", slash is not None


def last_closers(text: str) -> dict[str, int]:
    """Where the last ``[/name]`` of each name starts.

    A hint for the tree builder: an opener with no closer after it is self-closing. (A closer
    spelled inside a quoted attribute value is counted too; that only costs the builder a
    stack frame, never a different tree.)
    """
    return {m.group(1): m.start() for m in CLOSE_RE.finditer(text)}


@dataclass(frozen=True, slots=True)
class AttrItem:
    """One attribute item: ``key`` is the lower-cased name, or None for a positional value.

    ``raw`` is the value before backslash decoding; ``offset`` is where the item starts in the
    attribute text; ``quoted`` tells whether the value was written in quotes.
    """

    key: str | None
    raw: str
    offset: int
    quoted: bool
    source: str


def lex_attrs(text: str) -> list[AttrItem]:
    """Split attribute text into items, WordPress ``shortcode_parse_atts`` style (no decoding)."""
    text = text.translate(_ODD_SPACES)
    items: list[AttrItem] = []
    for m in ATTR_RE.finditer(text):
        kind = m.lastgroup
        src = m.group()
        if kind == "POS_BARE":
            items.append(AttrItem(None, src, m.start(), False, src))
        elif kind in ("POS_DQ", "POS_SQ"):
            items.append(AttrItem(None, src[1:-1], m.start(), True, src))
        else:
            key, _, value = src.partition("=")
            value = value.strip()
            quoted = kind != "NAMED_BARE"
            items.append(
                AttrItem(key.rstrip().lower(), value[1:-1] if quoted else value, m.start(), quoted, src)
            )
    return items


def reference_tokens(text: str) -> list[tuple[str, int, int]]:
    """Lark's own lexer over the ``page`` rule: (type, start, end) for each OPEN and CLOSE token.

    Slow and exact; the tests compare :func:`scan` against it.
    """
    return [
        (tok.type, tok.start_pos, tok.end_pos)
        for tok in _lark("page").lex(text)
        if tok.type in ("OPEN", "CLOSE") and tok.start_pos is not None and tok.end_pos is not None
    ]


def reference_attr_tokens(text: str) -> list[tuple[str, str]]:
    """Lark's own lexer over the ``attrs`` rule: (type, text) for each item, for the tests."""
    return [(tok.type, str(tok)) for tok in _lark("attrs").lex(text.translate(_ODD_SPACES))]
