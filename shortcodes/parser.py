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

#: Where a tag may start: ``[`` or ``[/`` and a name. Group 1 is the slash, group 2 the name.
#: Only candidates whose name is registered are read further, so an unknown ``[word ...`` never
#: hides the shortcodes written inside it (WordPress looks for registered names only, too).
CANDIDATE_RE: Final = re.compile(rf"\[(/?)({_NAME})")

#: The rest of an opening tag after its name: group 1 the attribute text, group 2 the slash.
OPEN_REST_RE: Final = re.compile(rf"({_BODY})?(/)?\]")

_ATTR_KINDS: Final = ("NAMED_DQ", "NAMED_SQ", "NAMED_BARE", "POS_DQ", "POS_SQ", "POS_BARE")

#: The attribute items as one alternation in the grammar's priority order (WordPress's order).
ATTR_RE: Final = re.compile(
    "|".join(f"(?P<{kind}>{_terminal('attrs', kind)})" for kind in _ATTR_KINDS)
)

#: Closing tags alone (see :func:`last_closers`).
CLOSE_RE: Final = re.compile(rf"\[/({_NAME})\]")

#: A valid shortcode name, whole.
NAME_RE: Final = re.compile(_NAME)

# A run of U+00A0 / U+200B is one space in attribute text, as in WordPress.
_ODD_SPACES: Final = re.compile("[\u00a0\u200b]+")


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
    if "\u00a0" in text or "\u200b" in text:
        text = _ODD_SPACES.sub(" ", text)
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
    return [(tok.type, str(tok)) for tok in _lark("attrs").lex(_ODD_SPACES.sub(" ", text))]
