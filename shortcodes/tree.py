"""Stage 2, tree building: pair the scanned tags into a tree.

Names that are not registered stay text. Closers pair with the nearest open tag of the same name
(a stack, like HTML), so a shortcode can contain itself. An opener that never gets its closer is
self-closing and its following text stays a sibling, unless the shortcode is *enclosing* (a gate):
then it fails closed and encloses the rest of its parent's content. ``[[tag]]`` prints ``[tag]``.
Nesting deeper than ``max_depth`` is rendered as text, so rendering can never exhaust the stack.

:class:`PairingWalk` is the one pairing algorithm; what it builds is up to its ``text``/``leaf``/
``pair`` hooks. :func:`build_tree` builds frozen nodes (for lint, strip and tools); the compiler
subclasses the walk to build render parts directly, skipping the intermediate tree.
"""

from __future__ import annotations

import difflib
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from shortcodes.html import Region, html_regions
from shortcodes.nodes import Node, ShortcodeNode, Text
from shortcodes.parser import AttrItem, ScannedTag, next_closer, scan
from shortcodes.registry import ShortcodeSpec
from shortcodes.typos import with_typos

MAX_DEPTH: Final = 100

_NEWLINE: Final = re.compile("\n")

_NOWHERE: Final = 1 << 62  # a region start past any page

#: The stack entry that fences off an HTML attribute value: closers inside the value pair only
#: with openers inside it, and what is still open where the value ends is closed there.
BARRIER: Final = ShortcodeSpec("<attribute value>", lambda sc, ctx: "")

#: Called with (offset, width, message, severity) for each structural problem found.
Report = Callable[[int, int, str, str], None]

AttrLexer = Callable[[str], tuple[AttrItem, ...]]


def _blank_tags(text: str, tags: list[ScannedTag]) -> str:
    """``text`` with every scanned tag replaced by as many U+0001 (offsets stay the same).

    Not spaces: a tag is one unquoted attribute value (``<a href=[url] >``); not letters: a tag
    right after ``<`` must not look like an HTML tag name.
    """
    pieces = []
    pos = 0
    for start, end, *_ in tags:
        pieces.append(text[pos:start])
        pieces.append("\x01" * (end - start))
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)


class Opening:
    """An opening tag waiting on the stack for its closer."""

    __slots__ = ("body", "body_offset", "children", "end", "escape_open", "spec", "start")

    def __init__(
        self, spec: ShortcodeSpec, start: int, end: int, body: str, body_offset: int, escape: bool
    ) -> None:
        self.spec = spec
        self.start = start
        self.end = end
        self.body = body
        self.body_offset = body_offset
        self.escape_open = escape
        self.children: list[Any] = []


class PairingWalk:
    """Walks the scanned tags once, keeping a stack of openers waiting for their closers."""

    #: True when a walk's text items are the text itself (``str``): the page text before each
    #: tag is then appended as is, without a ``text_item`` call per tag.
    plain_text = False

    def __init__(
        self,
        text: str,
        registry: Mapping[str, ShortcodeSpec],
        max_depth: int = MAX_DEPTH,
        report: Report | None = None,
        html: bool = True,
    ) -> None:
        self.text = text
        # Typos of gates written as pairs become stand-ins that hide their content.
        self.registry = with_typos(registry, text)
        self.max_depth = max_depth
        self.report = report
        self.root: list[Any] = []
        self.stack: list[Opening] = []
        self.cur = self.root  # the items of the innermost open tag (or the page)
        self.pos = 0  # page text before this offset is already in the output
        self.next_close: dict[str, int] = {}  # per name: a closer found ahead, or -1 for none
        self._markers: frozenset[str] | None = None
        self._suggestions: dict[str, str | None] = {}
        # HTML contexts (shortcodes.html): where tags are text, and attribute values.
        self.html = html and "<" in text
        self.regions: list[Region] = []
        self.region_index = 0
        self.region_start = _NOWHERE
        self.attr: Region | None = None  # the attribute value the walk is inside

    # -- hooks: what the walk builds -------------------------------------------------------------
    def text_item(self, text: str, offset: int) -> Any:
        """An item for literal text."""
        raise NotImplementedError

    def add_text(self, items: list[Any], text: str, offset: int) -> None:
        """Append the literal text of an escape to ``items``.

        Only escapes put two texts side by side (page text is flushed only before a tag), so a
        walk that merges adjacent text needs to look only here.
        """
        items.append(self.text_item(text, offset))

    def leaf(self, spec: ShortcodeSpec, start: int, end: int, body: str, body_offset: int) -> Any:
        """An item for a self-closing shortcode."""
        raise NotImplementedError

    def pair(self, tag: Opening, content: str, closed: bool) -> Any:
        """An item for an enclosing shortcode; ``tag.children`` holds its content's items."""
        raise NotImplementedError

    def trim_text(self, item: Any) -> Any | None:
        """The text item without its last character (the ``[`` of an escape), or None if empty."""
        raise NotImplementedError

    def attribute_value(self, region: Region, items: list[Any]) -> None:
        """Add the items of an HTML attribute value that holds shortcodes to the current items
        (the tree keeps them inline; the compiler wraps them to escape and check the result)."""
        self.cur.extend(items)

    def _pop(self) -> Opening:
        """Take the innermost opener off the stack; its parent's items become current."""
        tag = self.stack.pop()
        self.cur = self.stack[-1].children if self.stack else self.root
        return tag

    def _flush(self, upto: int) -> None:
        """Append the page text up to ``upto`` that is not in the output yet."""
        pos = self.pos
        if upto > pos:
            text = self.text[pos:upto]
            self.cur.append(text if self.plain_text else self.text_item(text, pos))
            self.pos = upto

    def _problem(self, offset: int, width: int, message: str, severity: str = "error") -> None:
        if self.report is not None:
            self.report(offset, width, message, severity)

    # -- the walk ---------------------------------------------------------------------------------
    def walk(self) -> list[Any]:
        """Pair every tag of the text; returns the top-level items."""
        registry = self.registry
        text = self.text
        unknown = self._unknown if self.report is not None else None
        tags: Iterable[ScannedTag] = scan(text, registry, unknown)
        if self.html:
            tags = list(tags)
            # The HTML is read with the tags blanked out: a "<", a quote or a space inside a
            # shortcode is the shortcode's, not the page's markup.
            self.regions = html_regions(_blank_tags(text, tags))
            self.region_start = self.regions[0].start if self.regions else _NOWHERE
        for start, end, name, closing, body, body_at, self_closing in tags:
            if start >= self.region_start and not self._in_context(start, end, name, closing):
                continue
            if closing:
                self._close(name, start, end)
            else:
                self._open(registry[name], start, end, body, body_at, self_closing)
        if self.attr is not None:
            self._leave_attribute()
        self._flush(len(self.text))
        while self.stack:
            self._close_unclosed(self._pop(), len(self.text))
        return self.root

    def _in_context(self, start: int, end: int, name: str, closing: bool) -> bool:
        """Whether a tag at ``start`` runs where it is in the HTML; enter or leave attribute
        values on the way (only tags past ``region_start`` come here)."""
        attr = self.attr
        if attr is not None and start >= attr.end:
            self._leave_attribute()
        regions = self.regions
        i = self.region_index
        while i < len(regions) and regions[i].end <= start:
            i += 1
        self.region_index = i
        region = regions[i] if i < len(regions) and regions[i].start <= start else None
        if region is None:
            self.region_start = regions[i].start if i < len(regions) else _NOWHERE
            return True
        self.region_start = start  # inside a region: every tag comes here until it ends
        if region.kind == "skip" or end > region.end:
            self._not_run(region, start, end, name, closing)
            return False
        if self.attr is not region:
            self._enter_attribute(region)
        return True

    def _not_run(self, region: Region, start: int, end: int, name: str, closing: bool) -> None:
        why = f"it is inside {region.what}, where shortcodes do not run; it is shown as text"
        if region.what == "<script>":
            why += " (give the script contact data through a data- attribute instead)"
        elif end > region.end:
            why = f"it does not end inside {region.what}; it is shown as text"
        self._problem(start, end - start, f"[{'/' if closing else ''}{name}]: {why}", "warning")

    def _enter_attribute(self, region: Region) -> None:
        self._flush(region.start)
        fence = Opening(BARRIER, region.start, region.start, "", region.start, False)
        self.stack.append(fence)
        self.cur = fence.children
        self.attr = region

    def _leave_attribute(self) -> None:
        region = self.attr
        assert region is not None
        self._flush(region.end)
        while self.stack[-1].spec is not BARRIER:
            self._close_unclosed(self._pop(), region.end)
        fence = self._pop()
        self.attr = None
        self.region_start = region.end
        self.attribute_value(region, fence.children)

    def _open(
        self, spec: ShortcodeSpec, start: int, end: int, body: str, body_at: int, slash: bool
    ) -> None:
        text = self.text
        wrapped_left = start > self.pos and text[start - 1] == "["
        if wrapped_left and end < len(text) and text[end] == "]":
            # [[tag ...]] prints the inner tag literally and runs nothing.
            self._flush(start - 1)
            self.add_text(self.cur, text[start:end], start)
            self.pos = end + 1
            return
        if not slash and not spec.enclosing:
            # An opener can only enclose if a closer of its name comes later. Searching ahead
            # only when the last closer found for the name is behind (or none was looked for)
            # reads the page at most once per name, and only for names the page uses.
            closer = self.next_close.get(spec.name)
            if closer is None or -1 < closer < start:
                closer = self.next_close[spec.name] = next_closer(text, spec.name, start)
            if closer == -1:
                slash = True  # no closer follows: self-closing, as WordPress reads it
        if slash and spec.typo_of:
            return  # a typo not written as a pair is unknown text, byte for byte
        if not slash and len(self.stack) >= self.max_depth:
            self._problem(
                start,
                end - start,
                f"[{spec.name}] is nested deeper than {self.max_depth} levels; it is shown as text",
            )
            return
        pos = self.pos
        if start > pos:  # _flush(start), written out: this runs for nearly every tag
            piece = text[pos:start]
            self.cur.append(piece if self.plain_text else self.text_item(piece, pos))
        self.pos = end
        if slash:
            self.cur.append(self.leaf(spec, start, end, body, body_at))
        else:
            tag = Opening(spec, start, end, body, body_at, wrapped_left)
            self.stack.append(tag)
            self.cur = tag.children

    def _close(self, name: str, start: int, end: int) -> None:
        stack = self.stack
        for depth in range(len(stack) - 1, -1, -1):
            spec = stack[depth].spec
            if spec.name == name:
                break
            if spec is BARRIER:  # no opener inside this attribute value
                depth = -1
                break
        else:
            depth = -1
        if depth < 0:
            self._problem(
                start,
                end - start,
                f"closing tag [/{name}] has no opening tag; it is shown as text",
                "warning",
            )
            return
        self._flush(start)
        while len(stack) > depth + 1:
            self._close_unclosed(self._pop(), start)
        tag = self._pop()
        text = self.text
        siblings = self.cur
        if tag.escape_open and end < len(text) and text[end] == "]":
            # [[tag]...[/tag]] prints the whole inner construct literally.
            self._drop_escape_bracket(siblings)
            self.add_text(siblings, text[tag.start : end], tag.start)
            self.pos = end + 1
            return
        siblings.append(self.pair(tag, text[tag.end : start], True))
        self.pos = end

    def _drop_escape_bracket(self, siblings: list[Any]) -> None:
        """Remove the ``[`` just before an escaped opener from the text that precedes it."""
        trimmed = self.trim_text(siblings.pop())
        if trimmed is not None:
            siblings.append(trimmed)

    def _close_unclosed(self, tag: Opening, at: int) -> None:
        """An opener whose closer never came, closed where its parent ends."""
        siblings = self.cur
        if tag.spec.enclosing:
            # Fail closed: the gate keeps everything up to its parent's end.
            self._problem(
                tag.start,
                tag.end - tag.start,
                f"[{tag.spec.name}] is never closed; it hides everything after it up to the end "
                f"of its parent (add [/{tag.spec.name}])",
            )
            siblings.append(self.pair(tag, self.text[tag.end : at], False))
            return
        if tag.spec.typo_of:  # a typo opener whose closer went to another: it is text
            siblings.append(self.text_item(self.text[tag.start : tag.end], tag.start))
        else:
            siblings.append(self.leaf(tag.spec, tag.start, tag.end, tag.body, tag.body_offset))
        siblings.extend(tag.children)

    def _unknown(self, start: int, name: str) -> None:
        """Lint only: an unregistered name close to a registered one is probably a typo."""
        if name.lower() in self._else_markers():
            return  # [else_memb_if] and friends are markers, not typos
        # One suggestion per distinct name: a page may spell the same unknown name 100,000 times.
        if name not in self._suggestions:
            found = difflib.get_close_matches(name, list(self.registry), n=1, cutoff=0.8)
            self._suggestions[name] = found[0] if found else None
        suggestion = self._suggestions[name]
        close = [suggestion] if suggestion is not None else []
        if close:
            self._problem(
                start,
                len(name) + 1,
                f"unknown shortcode [{name}]; did you mean [{close[0]}]? It is shown as text",
                "warning",
            )

    def _else_markers(self) -> frozenset[str]:
        markers = self._markers
        if markers is None:
            markers = frozenset(m for spec in self.registry.values() for m in spec.else_markers)
            self._markers = markers
        return markers


class _TreeWalk(PairingWalk):
    """Builds the frozen node tree."""

    def __init__(
        self,
        text: str,
        registry: Mapping[str, ShortcodeSpec],
        lex: AttrLexer,
        max_depth: int,
        report: Report | None,
        html: bool = True,
    ) -> None:
        super().__init__(text, registry, max_depth, report, html)
        self.lex = lex

        # Nodes are made in closing order, not page order: find lines by bisecting the newlines.
        self._newlines = [m.start() for m in _NEWLINE.finditer(text)]

    def _line_col(self, offset: int) -> tuple[int, int]:
        """1-based line and column of ``offset``."""
        line = bisect_left(self._newlines, offset)
        line_start = self._newlines[line - 1] + 1 if line else 0
        return line + 1, offset - line_start + 1

    def text_item(self, text: str, offset: int) -> Text:
        return Text(text, offset)

    def leaf(
        self, spec: ShortcodeSpec, start: int, end: int, body: str, body_offset: int
    ) -> ShortcodeNode:
        line, column = self._line_col(start)
        return ShortcodeNode(
            spec.name, self.lex(body), body, None, None, start, end, line, column, True, body_offset
        )

    def pair(self, tag: Opening, content: str, closed: bool) -> ShortcodeNode:
        return self._node(tag, tuple(tag.children), content, closed)

    def trim_text(self, item: Text) -> Text | None:
        return Text(item.text[:-1], item.offset) if len(item.text) > 1 else None

    def _node(
        self, tag: Opening, children: tuple[Node, ...] | None, content: str | None, closed: bool
    ) -> ShortcodeNode:
        line, column = self._line_col(tag.start)
        return ShortcodeNode(
            tag.spec.name, self.lex(tag.body), tag.body, children, content,
            tag.start, tag.end, line, column, closed, tag.body_offset,
        )  # fmt: skip


def build_tree(
    text: str,
    registry: Mapping[str, ShortcodeSpec],
    lex: AttrLexer,
    max_depth: int = MAX_DEPTH,
    report: Report | None = None,
    html: bool = True,
) -> tuple[Node, ...]:
    """Parse ``text`` into a tree of frozen nodes for the shortcodes in ``registry``.

    ``lex`` turns attribute text into items (the environment passes a cached lexer).
    ``report`` receives structural problems (unclosed gates, stray closers, typos, depth).
    """
    return tuple(_TreeWalk(text, registry, lex, max_depth, report, html).walk())
