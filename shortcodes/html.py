"""HTML contexts: where in a page's HTML a shortcode runs, and how its output is escaped there.

Pages are HTML, and a shortcode's output is escaped for element content. Some places in HTML must
not run shortcodes at all, and attribute values need their own escaping (spec/syntax.md, "HTML
around shortcodes"). :func:`html_regions` finds those places in one left-to-right pass:

* ``SKIP``: HTML comments (and what browsers read as comments: ``<!x>``, ``<?x>``, ``</[x]>``),
  CDATA, the content of ``<script>`` and ``<style>``, event-handler (``on*``), ``style`` and
  ``srcdoc`` attribute values, and the inside of a tag outside its attribute values
  (``<div [x]>``). A shortcode there is left as text and lint says so.
* ``ATTR``: an ordinary attribute value. Shortcodes run there, each one's output escaped for an
  attribute (:func:`attribute_text`), and they pair only with each other (a value is closed
  where it ends, like an element's content).
* ``URL``: an ``href``/``src``-like value. As ``ATTR``, and a scheme other than ``http``,
  ``https`` or ``mailto`` is dropped from the result, as WordPress's KSES does (:func:`strip_unsafe_schemes`).

The pass is linear: every ``<`` is looked at once, and a comment, quote or element that never
ends ends the scan (the rest of the page is inside it, as a browser reads it).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from markupsafe import Markup, escape

if TYPE_CHECKING:
    from shortcodes.context import Context

Kind = Literal["skip", "attr", "url"]

#: Attributes whose value is code or style: shortcodes never run there.
CODE_ATTRS: Final = frozenset({"style", "srcdoc"})

#: Attributes whose value is a URL: the result's scheme is checked.
URL_ATTRS: Final = frozenset(
    {"href", "src", "action", "formaction", "poster", "cite", "background", "xlink:href"}
)

#: The schemes a shortcode-made URL may have (relative URLs have none).
SAFE_SCHEMES: Final = frozenset({"http", "https", "mailto"})

# Where a construct that matters starts: a comment, CDATA, or a tag that is a raw-text element or
# holds a shortcode (the walk blanks tags out as U+0001), a quote that does not close before
# one, or a "<" (malformed: read in full, to be safe). Other tags are skipped inside this one search, in C: most pages have many tags and few
# shortcodes in them. Possessive loops whose alternatives start differently, and an unquoted
# look ahead that stops at the next "<": linear.
_START: Final = re.compile(
    r"<(?:(!--)|(!\[CDATA\[)|(!|/(?![A-Za-z])|\?)|([A-Za-z][^\s/<>\x01]*+)"
    r"""(?:(?<=[sS][cC][rR][iI][pP][tT])|(?<=[sS][tT][yY][lL][eE])|(?=(?:[^<>"'\x01]++|"[^"\x01]*+"|'[^'\x01]*+')*+[\x01"'<])))"""
)
# In a tag: the end, or an attribute name and the quote its value opens with ("" if unquoted),
# or a stray quote or "=" (skipped like a browser's tokenizer skips it).
_ATTR: Final = re.compile(r"""[\s/]*(?:(>)|([^\s"'>/=]+)(?:\s*=\s*(["']?))?|["'=][^\s>]*)""")
_UNQUOTED: Final = re.compile(r"[^\s>]*")
_RAW_TEXT: Final = frozenset({"script", "style"})
_SCHEME: Final = re.compile(r"[\x00-\x20\x7f]*+([A-Za-z][A-Za-z0-9+.\-\x00-\x20\x7f]*+):")
_INVISIBLE: Final = re.compile(r"[\x00-\x20\x7f]+")
_UNQUOTED_UNSAFE: Final = re.compile(r"[\s`=]")


@dataclass(frozen=True, slots=True)
class Region:
    """One span of the page with its context; ``what`` says where it is, for messages."""

    start: int
    end: int
    kind: Kind
    what: str
    quote: str = '"'


def html_regions(text: str) -> list[Region]:
    """The SKIP, ATTR and URL regions of ``text``, in order and not overlapping."""
    out: list[Region] = []
    if "<" not in text:
        return out
    pos = 0
    while True:
        m = _START.search(text, pos)
        if m is None:
            return out
        if m.group(1):
            # From just after "<!": "<!-->" and "<!--->" are whole (empty) comments.
            pos = _skip_until(text, m, "-->", "an HTML comment", out, m.start() + 2)
        elif m.group(2):
            pos = _skip_until(text, m, "]]>", "a CDATA section", out)
        elif m.group(3) is not None:
            # "<!x", "<?x" and "</" without a letter: what browsers read as a (bogus) comment,
            # up to the next ">", and what WordPress's HTML split leaves alone too.
            pos = _skip_until(text, m, ">", "an HTML comment", out)
        else:
            pos = _tag(text, m, out)
        if pos < 0:
            return out


def _skip_until(
    text: str, m: re.Match[str], end: str, what: str, out: list[Region], at: int = -1
) -> int:
    """A comment or CDATA section: SKIP to its end (the page's end if it never ends), looking
    for ``end`` from ``at`` (by default where ``m`` ends)."""
    close = text.find(end, m.end() if at < 0 else at)
    stop = len(text) if close < 0 else close + len(end)
    out.append(Region(m.start(), stop, "skip", what))
    return -1 if close < 0 else stop


def _tag(text: str, m: re.Match[str], out: list[Region]) -> int:
    """An opening tag: its attribute values and the rest of the tag; a raw-text element's body."""
    name = m.group(4).lower()
    what = f"the tag <{name}>"
    pos = m.end()
    skip_from = m.start()
    while True:
        a = _ATTR.match(text, pos)
        if a is None or a.end() == pos:
            out.append(Region(skip_from, len(text), "skip", what))  # never ends
            return -1
        pos = a.end()
        if a.group(1):  # ">"
            out.append(Region(skip_from, pos, "skip", what))
            break
        quote = a.group(3)
        if quote is None:
            continue  # no value (or a stray character)
        if quote:
            close = text.find(quote, pos)
            if close < 0:  # a quote that never closes: the rest of the page is in this value
                out.append(Region(skip_from, len(text), "skip", what))
                return -1
            start, end, pos = a.end(), close, close + 1
        else:
            value = _UNQUOTED.match(text, pos)
            assert value is not None  # it matches the empty string
            start, end = pos, pos = value.span()[0], value.end()
        out.append(Region(skip_from, start, "skip", what))
        out.append(_attribute(a.group(2).lower(), start, end, quote))
        skip_from = end
    if name in _RAW_TEXT:
        close_tag = re.compile(rf"</{name}[\s/>]", re.IGNORECASE).search(text, pos)
        stop = len(text) if close_tag is None else close_tag.start()
        out.append(Region(pos, stop, "skip", f"<{name}>"))
        return -1 if close_tag is None else stop
    return pos


def _attribute(name: str, start: int, end: int, quote: str) -> Region:
    if name.startswith("on"):
        return Region(start, end, "skip", f"the event handler attribute {name}")
    if name in CODE_ATTRS:
        return Region(start, end, "skip", f"the {name} attribute")
    kind: Kind = "url" if name in URL_ATTRS else "attr"
    return Region(start, end, kind, f"the {name} attribute", quote)


def attribute_text(output: str, quote: str) -> str:
    """A shortcode's rendered output made safe inside an attribute value quoted with ``quote``.

    Output is HTML (escaped text, or markup a handler vouched for); in an attribute, markup is
    not allowed, so it is read back to text and escaped once, quotes included. An unquoted value
    also ends at whitespace, ``=`` or a backtick in some browsers: those become references too.
    """
    text = str(escape(Markup(output).unescape()))  # noqa: S704 - unescaped, then escaped
    if not quote:
        text = _UNQUOTED_UNSAFE.sub(lambda m: f"&#{ord(m.group())};", text)
    return text


def strip_unsafe_schemes(value: str) -> str:
    """``value`` without the schemes a shortcode-made URL may not have, as WordPress's KSES
    (``wp_kses_bad_protocol``) strips them: every leading ``scheme:`` other than http, https and
    mailto is removed, so ``javascript:alert(1)`` becomes the harmless relative ``alert(1)`` and
    ``badhttp://host/`` becomes ``//host/``.

    The scheme is read as a browser reads it: after decoding character references and dropping
    whitespace and control characters (``java&#9;script:`` is ``javascript:``).
    """
    plain = html.unescape(value)
    changed = False
    while (m := _SCHEME.match(plain)) is not None:
        if _INVISIBLE.sub("", m.group(1)).lower() in SAFE_SCHEMES:
            break
        plain = plain[m.end() :]
        changed = True
    return str(escape(plain)) if changed else value


class AttrValue:
    """A compiled HTML attribute value holding shortcodes: each one's output is escaped for the
    attribute, and a URL attribute's result is checked by :func:`strip_unsafe_schemes`."""

    __slots__ = ("parts", "quote", "url")

    def __init__(self, region: Region, parts: tuple[object, ...]) -> None:
        self.parts = parts
        self.quote = region.quote
        self.url = region.kind == "url"

    def render(self, ctx: Context) -> str:
        """The value for ``ctx``: page text as written, shortcode output escaped."""
        out = []
        for part in self.parts:
            if part.__class__ is str:
                out.append(str(part))
            else:
                out.append(attribute_text(part.render(ctx), self.quote))  # type: ignore[attr-defined]
        value = "".join(out)
        return strip_unsafe_schemes(value) if self.url else value
