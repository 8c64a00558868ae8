"""Attribute values: WordPress ``shortcode_parse_atts`` semantics on top of the grammar's items.

Values get C-style backslash decoding (PHP ``stripcslashes``); positional items are numbered
0, 1, 2 ... apart from named ones; a later duplicate name overwrites the value but keeps its first
position; an empty quoted positional value is dropped.
"""

from __future__ import annotations

import re
from typing import Final

from shortcodes.parser import AttrItem, lex_attrs

_ESCAPE_RE: Final = re.compile(r"\\(x[0-9A-Fa-f]{1,2}|[0-7]{1,3}|.)", re.DOTALL)
_SIMPLE: Final = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "v": "\v", "b": "\b", "f": "\f"}


def _unescape(m: re.Match[str]) -> str:
    seq = m.group(1)
    if len(seq) > 1 and seq[0] == "x":
        return chr(int(seq[1:], 16))
    if seq[0] in "01234567":
        return chr(int(seq, 8) & 0xFF)
    return _SIMPLE.get(seq, seq)


def decode_backslashes(value: str) -> str:
    """Decode ``\\n``, ``\\t``, ``\\\\``, ``\\x41``, octal ``\\101`` ...; drop other backslashes.

    A trailing lone backslash is kept, as PHP's ``stripcslashes`` keeps it.
    """
    if "\\" not in value:
        return value
    return _ESCAPE_RE.sub(_unescape, value)


def attr_pairs(items: list[AttrItem]) -> list[tuple[int | str, str, AttrItem]]:
    """Number positional items and merge duplicate names: (key, decoded value, item) in order."""
    out: dict[int | str, tuple[str, AttrItem]] = {}
    position = 0
    for item in items:
        if item.key is None:
            if item.quoted and not item.raw:
                continue  # WordPress drops an empty quoted positional ("")
            out[position] = (decode_backslashes(item.raw), item)
            position += 1
        else:
            # dict assignment keeps the first position of a duplicate key, as PHP arrays do
            out[item.key] = (decode_backslashes(item.raw), item)
    return [(key, value, item) for key, (value, item) in out.items()]


def parse_attrs(text: str) -> dict[int | str, str]:
    """Parse shortcode attribute text like WordPress ``shortcode_parse_atts``.

    >>> parse_attrs('123 url=https://wordpress.org/ foo bar="baz"')
    {0: '123', 'url': 'https://wordpress.org/', 1: 'foo', 'bar': 'baz'}
    """
    return {key: value for key, value, _ in attr_pairs(lex_attrs(text))}
