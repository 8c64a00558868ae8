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
from collections.abc import Callable, Collection, Container, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from itertools import groupby
from operator import itemgetter
from os.path import commonprefix
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

#: A valid shortcode name, whole.
NAME_RE: Final = re.compile(_NAME)

# A run of U+00A0 / U+200B is one space in attribute text, as in WordPress.
_ODD_SPACES: Final = re.compile("[\u00a0\u200b]+")


# WordPress's name boundary is (?![\w-]) on bytes: ASCII letters, digits, _ and - only.
_NOT_NAME_CHAR: Final = re.compile(r"[^A-Za-z0-9_-]")
_ASCII_SPACE: Final = " \t\n\r\x0b\x0c"


def resolve_name(name: str, names: Container[str]) -> tuple[str, int] | None:
    """Find the registered shortcode an opener's spelled name stands for.

    WordPress requires a name to be followed by something other than a letter, digit, ``_`` or
    ``-``: ``[foo.bar]`` is ``foo`` with attribute text ``.bar``, but ``[foo-bar]`` is not ``foo``.
    Returns (name, length of the name in the spelling) or None.
    """
    if name in names:
        return name, len(name)
    for m in reversed(list(_NOT_NAME_CHAR.finditer(name))):
        if name[: m.start()] in names:
            return name[: m.start()], m.start()
    return None


def _trie(names: list[str]) -> str:
    """``names`` (sorted, distinct, non-empty) as one alternation shaped like a trie.

    Names sharing a prefix share a branch (``memb_(?:contact|if)``), so the regex engine reads
    a tag's name once instead of trying every registered name in turn.
    """
    branches = []
    for _first, group in groupby(names, key=itemgetter(0)):
        words = list(group)
        prefix = commonprefix(words)  # noqa: RUF071 - names, not paths: per character is meant
        rests = [word[len(prefix) :] for word in words]
        if rests == [""]:
            branches.append(re.escape(prefix))
            continue
        optional = "?" if rests[0] == "" else ""  # sorted: the prefix itself comes first
        branches.append(f"{re.escape(prefix)}(?:{_trie([r for r in rests if r])}){optional}")
    return "|".join(branches)


_PATTERNS: dict[tuple[str, ...], re.Pattern[str]] = {}


def tag_pattern(names: Collection[str]) -> re.Pattern[str]:
    """:func:`registry_pattern` for ``names``, cached per registry.

    The key is the names in their order, a tuple: several times cheaper to build, hash and
    compare than a frozenset of them, which a short snippet notices.
    """
    key = tuple(names)
    pattern = _PATTERNS.get(key)
    if pattern is None:
        if len(_PATTERNS) >= 64:
            _PATTERNS.clear()
        pattern = _PATTERNS[key] = registry_pattern(key)
    return pattern


def registry_pattern(names: Collection[str]) -> re.Pattern[str]:
    """The scanner's regex for one set of registered names: a candidate and, for a registered
    name, the whole tag in the same match (one regex step for the common tag, not two).

    Closer: group 1 the name, group 2 its ``]``. Registered opener: group 3 the name (followed
    by no name character, so it is the whole spelled name), group 4 the attribute text, group
    5 the slash, group 6 its ``]``. Any other opener: group 7 its spelled name, and nothing
    after it is read, so an unknown ``[word ...`` never hides the tags written inside it.
    """
    valid = sorted(name for name in names if NAME_RE.fullmatch(name))
    try:
        return _tag_re(_trie(valid) if valid else "(?!)")
    except RecursionError:
        # Hundreds of names, each a prefix of the next, nest the trie too deep for ``re``:
        # a flat alternation matches the same names (the lookahead makes each one whole).
        return _tag_re("|".join(map(re.escape, valid)))


def _tag_re(registered: str) -> re.Pattern[str]:
    """The pattern :func:`registry_pattern` describes, for a given alternation of names."""
    return re.compile(
        rf"\[(?:/({_NAME})(\])?|({registered})(?!{_NAME})(?:({_BODY})?(/)?(\]))?|({_NAME}))"
    )


#: One scanned tag: (start, end, name, closing, attribute text, where it starts, self-closing).
ScannedTag = tuple[int, int, str, bool, str, int, bool]


def scan(
    text: str, names: Collection[str], unknown: Callable[[int, str], None] | None = None
) -> Iterator[ScannedTag]:
    """Yield every opening and closing tag of a registered shortcode in ``text``, in order.

    ``unknown(offset, name)`` hears of every ``[name`` that is not registered (lint uses it).
    (A generator, not a list: the walk consumes each tag at once, so the tags never pile up
    for the garbage collector to walk.)
    """
    last = text.rfind("]")
    if last < 0:
        return  # every tag ends with "]"
    # No tag starts after the last "]", and no search reads past the end of its line: that keeps
    # a page full of unfinished tags linear (each failed attempt would otherwise read to the
    # end). Only a quoted value can run past a "]", and quoted values stop at a newline, so
    # within this bound every match is the one the grammar's lexer makes on the whole page.
    line_end = text.find("\n", last)
    endpos = len(text) if line_end < 0 else line_end
    pattern = tag_pattern(names)
    pos = 0
    while True:
        for m in pattern.finditer(text, pos, endpos):
            if m.start() > last:
                return
            closer, closed, name, body, slash, shut, spelled = m.groups()
            if name is not None:  # a registered name: the pattern read the whole tag
                if shut is not None:
                    start, end = m.span()
                    body_at = start + 1 + len(name)
                    yield start, end, name, False, body or "", body_at, slash is not None
            elif closer is not None:
                if closed is not None and closer in names:
                    start, end = m.span()
                    yield start, end, closer, True, "", end, False
            else:
                tag = _prefixed_tag(text, m.start(), spelled, names, endpos, unknown)
                if tag is not None:
                    yield tag
                    pos = tag[1]
                    break  # the tag ends past this match: search again from its end
        else:
            return


def _prefixed_tag(
    text: str,
    start: int,
    spelled: str,
    names: Collection[str],
    endpos: int,
    unknown: Callable[[int, str], None] | None,
) -> ScannedTag | None:
    """The tag an unregistered spelled name makes if a registered name is a prefix of it
    (``foo`` in ``[foo.bar]``), else None (and ``unknown`` hears of the name)."""
    found = resolve_name(spelled, names)
    if found is None:
        if unknown is not None:
            unknown(start, spelled)
        return None
    resolved, length = found
    body_at = start + 1 + length
    rest = OPEN_REST_RE.match(text, body_at, endpos)
    if rest is None:
        return None
    body, slash = rest.group(1, 2)
    return start, rest.end(), resolved, False, body or "", body_at, slash is not None


def next_closer(text: str, name: str, start: int) -> int:
    """Where the first ``[/name]`` at or after ``start`` begins, or -1.

    A hint for the tree builder: an opener with no closer after it is self-closing. (A closer
    spelled inside a quoted attribute value is counted too; that only costs the builder a
    stack frame, never a different tree.) Every ``[/name]`` in the text is a closing tag as
    spelled (a name holds no ``[``), so a plain search finds them; a forward search, since
    CPython's is several times faster than its backward one on long pages.
    """
    return text.find(f"[/{name}]", start)


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
            value = value.strip(_ASCII_SPACE)
            quoted = kind != "NAMED_BARE"
            items.append(
                AttrItem(
                    key.rstrip(_ASCII_SPACE).lower(),
                    value[1:-1] if quoted else value,
                    m.start(),
                    quoted,
                    src,
                )
            )
    return items


def reference_tokens(text: str) -> list[tuple[str, int, int]]:
    """Lark's own lexer over the ``page`` rule: (type, start, end) for each OPEN and CLOSE token.

    Slow and exact; the tests compare :func:`scan` against it (with every name registered).
    """
    return [
        (tok.type, tok.start_pos, tok.end_pos)
        for tok in _lark("page").lex(text)
        if tok.type in ("OPEN", "CLOSE") and tok.start_pos is not None and tok.end_pos is not None
    ]


def reference_attr_tokens(text: str) -> list[tuple[str, str]]:
    """Lark's own lexer over the ``attrs`` rule: (type, text) for each item, for the tests."""
    return [(tok.type, str(tok)) for tok in _lark("attrs").lex(_ODD_SPACES.sub(" ", text))]
