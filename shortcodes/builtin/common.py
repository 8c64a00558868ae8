"""Builtins, shared helpers: attribute text, safe URLs and lint positions.

Every builtin family uses these so that contact data that reaches HTML is escaped in one way,
and lint reports point at the attribute value itself. (Failures are not handled here: a builtin
raises, and the engine's one error policy in ``shortcodes.runtime`` decides what is shown.)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, Final
from urllib.parse import urlsplit

from markupsafe import Markup

from shortcodes.attrs import attr_pairs
from shortcodes.nodes import ShortcodeNode
from shortcodes.parser import AttrItem
from shortcodes.runtime import Shortcode

#: ``report(offset, width, message, severity)`` as ``ShortcodeSpec.check`` receives it.
Report = Callable[[int, int, str, str], None]


def text_of(value: Any) -> str:
    """An attribute value as plain text.

    A nested shortcode in an attribute renders to Markup (escaped HTML); comparing or signing it
    must use the text it shows, so ``A &amp; B`` becomes ``A & B`` again.
    """
    if value is None:
        return ""
    if isinstance(value, Markup):
        return value.unescape()
    return str(value)


def is_dynamic(sc: Shortcode, key: str) -> bool:
    """True if attribute ``key`` holds ``{{variables}}`` or nested shortcodes."""
    return sc.is_dynamic(key)


# -- URLs ------------------------------------------------------------------------------------------

_SAFE_SCHEMES: Final = frozenset({"http", "https", "mailto", "tel"})
# Browsers drop ASCII whitespace and control characters inside a scheme ("java\tscript:"), so
# the check looks at the URL with them removed.
_INVISIBLE: Final = re.compile(r"[\x00-\x20\x7f]+")
_SCHEME: Final = re.compile(r"([a-z][a-z0-9+.\-]*):")


def safe_url(value: Any) -> str:
    """``value`` if it is safe as a link target, else ValueError.

    Allowed: paths and relative URLs, and ``http``, ``https``, ``mailto`` and ``tel`` links.
    Refused: every other scheme (``javascript:``, ``data:``, ``vbscript:`` ...), however spelled.
    """
    text = text_of(value).strip()
    probe = _INVISIBLE.sub("", text).lower()
    m = _SCHEME.match(probe)
    if m and m.group(1) not in _SAFE_SCHEMES:
        raise ValueError(
            f"{text[:60]!r} is not a safe link (use a path on this site or an http(s), "
            "mailto or tel URL)"
        )
    return text


def url(value: Any) -> str:
    """The ``url`` attribute type: :func:`safe_url` under a name lint messages can use."""
    return safe_url(value)


# The engine words conversion errors as "attribute X='...' is not <type name>".
url.__name__ = "a safe link (a path, or an http, https, mailto or tel URL)"


def tag_name(value: Any) -> str:
    """The ``tag`` attribute type: a tag name or id, as written (``check`` looks it up)."""
    return text_of(value)


tag_name.__name__ = "a tag name or id"


#: Never in a redirect target: a backslash (browsers read ``/\\evil`` as ``//evil``, another
#: host) and control characters (CR/LF split headers, NUL and tabs confuse URL parsers).
_NOT_IN_LOCAL_PATH: Final = re.compile(r"[\x00-\x1f\x7f\\]")


def is_local_path(target: str) -> bool:
    """True when ``target`` is a path on this site, safe to redirect a visitor to.

    The one decision about open redirects, for action buttons and the host alike: it must start
    with a single ``/`` (``//evil`` is another host), name no scheme or host, and hold no
    backslash or control character.
    """
    if not target.startswith("/") or target.startswith("//") or _NOT_IN_LOCAL_PATH.search(target):
        return False
    parts = urlsplit(target)
    return not (parts.scheme or parts.netloc)


def local_url(value: Any, site_url: str = "") -> str:
    """``value`` if it points into this site (a path, or under ``site_url``), else ValueError.

    Used for redirects after an action, so a button can never send a visitor elsewhere.
    """
    text = safe_url(value)
    base = site_url.rstrip("/")
    path = text[len(base) :] if base and text.startswith(base + "/") else text
    if is_local_path(path):
        return text
    raise ValueError(f"{text[:60]!r} is not a path on this site (it must start with '/')")


# -- lint positions -------------------------------------------------------------------------------


def given_attrs(node: ShortcodeNode) -> dict[int | str, tuple[str, AttrItem]]:
    """A node's attributes as lint sees them: decoded value and the item it came from."""
    return {key: (value, item) for key, value, item in attr_pairs(list(node.attrs))}


def value_offset(node: ShortcodeNode, item: AttrItem) -> int:
    """The page offset of the first character of ``item``'s value (after ``=`` and a quote)."""
    source = item.source
    start = 0
    if item.key is not None:
        start = source.index("=") + 1
        while start < len(source) and source[start] in " \t\r\n":
            start += 1
    if item.quoted:
        start += 1
    return node.body_offset + item.offset + start


_ESCAPE: Final = re.compile(r"\\(x[0-9A-Fa-f]{1,2}|[0-7]{1,3}|.)", re.DOTALL)


def raw_index(raw: str, decoded_index: int) -> int:
    """Map an index in a backslash-decoded value back to the raw (page) text.

    Each escape sequence decodes to one character (see ``shortcodes.attrs``).
    """
    raw_pos = decoded = 0
    for m in _ESCAPE.finditer(raw):
        plain = m.start() - raw_pos
        if decoded_index < decoded + plain:
            break
        if decoded_index == decoded + plain:
            return m.start()
        decoded += plain + 1
        raw_pos = m.end()
    return raw_pos + (decoded_index - decoded)


def static_value(value: str) -> bool:
    """True if lint can judge the value now (no ``{{variables}}`` and no nested shortcodes)."""
    return "{{" not in value and "[" not in value and "<:" not in value


def split_list(text: str) -> Iterator[str]:
    """The non-empty, stripped items of a comma list."""
    for item in text.split(","):
        item = item.strip()
        if item:
            yield item
