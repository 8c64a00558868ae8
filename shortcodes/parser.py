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
_WP_BODY = _terminal("tag", "WP_BODY")

#: Where a tag may start: ``[`` or ``[/`` and a name. Group 1 is the slash, group 2 the name.
#: Only candidates whose name is registered are read further, so an unknown ``[word ...`` never
#: hides the shortcodes written inside it (WordPress looks for registered names only, too).
CANDIDATE_RE: Final = re.compile(rf"\[(/?)({_NAME})")

#: The rest of an opening tag after its name: group 1 the attribute text, group 2 the slash.
OPEN_REST_RE: Final = re.compile(rf"({_BODY})?(/)?\]")

#: The same, read as WordPress reads it (to the first "]"): when OPEN_REST_RE finds no end.
WP_REST_RE: Final = re.compile(rf"({_WP_BODY})?(/)?\]")
_WP_BODY_RE: Final = re.compile(_WP_BODY)


def _loop_step(pattern: str) -> str:
    """The alternation inside a possessive loop ``(?:...)++``: one step of the loop."""
    if not (pattern.startswith("(?:") and pattern.endswith(")++")):  # pragma: no cover
        raise LookupError(f"grammar.lark: TAG_BODY is not a (?:...)++ loop: {pattern!r}")
    return pattern[3:-3]


#: One step of TAG_BODY's possessive loop: its alternation, matched once (see _OpenReader).
_BODY_STEP_RE: Final = re.compile(_loop_step(_BODY))
_SHUT_RE: Final = re.compile(r"(/)?\]")

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


_PATTERNS: dict[tuple[str, ...], tuple[re.Pattern[str], re.Pattern[str]]] = {}


def tag_pattern(names: Collection[str]) -> re.Pattern[str]:
    """:func:`registry_pattern` for ``names``, cached per registry."""
    return _patterns(names)[0]


def _patterns(names: Collection[str]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The registry's scanner regex and its head-only twin (``head=True``), cached per registry.

    The key is the names in their order, a tuple: several times cheaper to build, hash and
    compare than a frozenset of them, which a short snippet notices.
    """
    key = tuple(names)
    patterns = _PATTERNS.get(key)
    if patterns is None:
        if len(_PATTERNS) >= 64:
            _PATTERNS.clear()
        patterns = _PATTERNS[key] = (registry_pattern(key), registry_pattern(key, head=True))
    return patterns


def registry_pattern(names: Collection[str], head: bool = False) -> re.Pattern[str]:
    """The scanner's regex for one set of registered names: a candidate and, for a registered
    name, the whole tag in the same match (one regex step for the common tag, not two).

    Closer: group 1 the name, group 2 its ``]``. Registered opener: group 3 the name (followed
    by no name character, so it is the whole spelled name), group 4 the attribute text, group
    5 the slash, group 6 its ``]``. Any other opener: group 7 its spelled name, and nothing
    after it is read, so an unknown ``[word ...`` never hides the tags written inside it.
    With ``head=True`` nothing after a registered name is read either (groups 4-6 never match).
    """
    valid = sorted(name for name in names if NAME_RE.fullmatch(name))
    try:
        return _tag_re(_trie(valid) if valid else "(?!)", head)
    except RecursionError:
        # Hundreds of names, each a prefix of the next, nest the trie too deep for ``re``:
        # a flat alternation matches the same names (the lookahead makes each one whole).
        return _tag_re("|".join(map(re.escape, valid)), head)


def _tag_re(registered: str, head: bool = False) -> re.Pattern[str]:
    """The pattern :func:`registry_pattern` describes, for a given alternation of names."""
    rest = "(?!)()()()" if head else rf"({_BODY})?(/)?(\])"
    return re.compile(rf"\[(?:/({_NAME})(\])?|({registered})(?!{_NAME})(?:{rest})?|({_NAME}))")


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
    fast, head = _patterns(names)
    reader = _OpenReader(text, endpos)
    pos = 0
    while pos <= last:
        # Where a tag's reading failed, the tags up to where it stopped are read step by step
        # (head only, then _OpenReader), so no two readings scan the same stretch to its end.
        slow = pos < reader.slow_until
        for m in (head if slow else fast).finditer(text, pos, endpos):
            if m.start() > last:
                return
            if slow and m.start() >= reader.slow_until:
                pos = m.start()
                break  # past the stretch: back to the one-match-per-tag pattern
            closer, closed, name, body, slash, shut, spelled = m.groups()
            if closer is not None:
                if closed is not None and closer in names:
                    start, end = m.span()
                    yield start, end, closer, True, "", end, False
                continue
            if name is not None and shut is not None:  # the pattern read the whole tag
                start, end = m.span()
                yield start, end, name, False, body or "", start + 1 + len(name), slash is not None
                continue
            if name is not None:  # registered, but its reading did not end: read it again
                tag = _opener(reader, m.start(), name, len(name))
            else:
                tag = _prefixed_tag(reader, m.start(), spelled, names, unknown)
            if tag is not None:
                yield tag
                pos = tag[1]
                break  # the tag ends past this match: search again from its end
            if not slow and reader.slow_until > m.end():
                pos = m.end()
                break  # a reading failed: the stretch it read is read step by step
        else:
            return


def _opener(reader: _OpenReader, start: int, name: str, length: int) -> ScannedTag | None:
    """The opening tag of registered ``name`` spelled at ``start`` (``length`` characters)."""
    body_at = start + 1 + length
    rest = reader.read(body_at)
    if rest is None:
        return None
    end, body, slash = rest
    return start, end, name, False, body, body_at, slash


def _prefixed_tag(
    reader: _OpenReader,
    start: int,
    spelled: str,
    names: Collection[str],
    unknown: Callable[[int, str], None] | None,
) -> ScannedTag | None:
    """The tag an unregistered spelled name makes if a registered name is a prefix of it
    (``foo`` in ``[foo.bar]``), else None (and ``unknown`` hears of the name)."""
    found = resolve_name(spelled, names)
    if found is None:
        if unknown is not None:
            unknown(start, spelled)
        return None
    return _opener(reader, start, *found)


class _OpenReader:
    """Reads the rest of opening tags (attribute text, slash, ``]``) in linear time overall.

    The grammar's reading (OPEN_REST_RE) lets a closed quoted value hold ``]``; when it finds no
    end, the tag is read as WordPress reads it (WP_REST_RE). A failed reading has scanned to an
    unquoted ``[/name]`` or the end, and the next opener could scan the same stretch again: so
    a failed reading is redone step by step (one TAG_BODY alternative at a time, the very steps
    of its possessive loop), and every step's offset is remembered as ``dead``. Readings are
    deterministic, so another reading that reaches a dead offset fails there too, and each
    offset is stepped over by at most one failed reading. Likewise a failed WordPress reading
    fails for every opener before where it stopped (``wp_dead_until``).
    """

    __slots__ = ("dead", "endpos", "slow_until", "text", "wp_dead_until")

    def __init__(self, text: str, endpos: int) -> None:
        self.text = text
        self.endpos = endpos
        self.dead: set[int] = set()
        #: Openers before this offset are read step by step (a reading failed across them).
        self.slow_until = 0
        self.wp_dead_until = 0

    def read(self, at: int) -> tuple[int, str, bool] | None:
        """(end, attribute text, self-closing) of the opener whose name ends at ``at``."""
        if at >= self.slow_until:
            m = OPEN_REST_RE.match(self.text, at, self.endpos)
            if m is not None:
                return m.end(), m.group(1) or "", m.group(2) is not None
        found = self._steps(at)
        return found if found is not None else self._wordpress(at)

    def _steps(self, at: int) -> tuple[int, str, bool] | None:
        """The grammar's reading from ``at``, one step at a time, remembering a failure."""
        text, endpos, dead = self.text, self.endpos, self.dead
        pos = at
        seen = []
        while pos not in dead:
            step = _BODY_STEP_RE.match(text, pos, endpos)
            if step is None:
                shut = _SHUT_RE.match(text, pos, endpos)
                if shut is not None:
                    return shut.end(), text[at:pos], shut.group(1) is not None
                break
            seen.append(pos)
            pos = step.end()
        dead.update(seen)
        dead.add(pos)
        self.slow_until = max(self.slow_until, pos)
        return None

    def _wordpress(self, at: int) -> tuple[int, str, bool] | None:
        """WordPress's reading from ``at``: the attribute text runs to the first ``]``."""
        if at < self.wp_dead_until:
            return None
        m = WP_REST_RE.match(self.text, at, self.endpos)
        if m is not None:
            return m.end(), m.group(1) or "", m.group(2) is not None
        stop = _WP_BODY_RE.match(self.text, at, self.endpos)
        self.wp_dead_until = stop.end() if stop is not None else at
        return None


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
