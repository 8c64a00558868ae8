"""Stage 2, tree building: pair the scanned tags into a tree of nodes.

Names that are not registered stay text. Closers pair with the nearest open tag of the same name
(a stack, like HTML), so a shortcode can contain itself. An opener that never gets its closer is
self-closing and its following text stays a sibling, unless the shortcode is *enclosing* (a gate):
then it fails closed and encloses the rest of its parent's content. ``[[tag]]`` prints ``[tag]``.
Nesting deeper than ``max_depth`` is rendered as text, so rendering can never exhaust the stack.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from shortcodes.nodes import Node, ShortcodeNode, Text
from shortcodes.parser import AttrItem, scan_tuples
from shortcodes.registry import ShortcodeSpec

MAX_DEPTH: Final = 100

_NOT_NAME_CHAR: Final = re.compile(r"[^\w-]")

#: Called with (offset, width, message, severity) for each structural problem found.
Report = Callable[[int, int, str, str], None]

AttrLexer = Callable[[str], tuple[AttrItem, ...]]


@dataclass(slots=True)
class _Frame:
    """An opener waiting for its closer."""

    spec: ShortcodeSpec
    start: int
    end: int
    body: str
    body_offset: int
    line: int
    column: int
    escape_open: bool
    children: list[Node] = field(default_factory=list)


def resolve_name(name: str, registry: Mapping[str, ShortcodeSpec]) -> tuple[str, int] | None:
    """Find the registered shortcode an opener's spelled name stands for.

    WordPress requires a name to be followed by something other than a letter, digit, ``_`` or
    ``-``: ``[foo.bar]`` is ``foo`` with attribute text ``.bar``, but ``[foo-bar]`` is not ``foo``.
    Returns (name, length of the name in the spelling) or None.
    """
    if name in registry:
        return name, len(name)
    cuts = [m.start() for m in _NOT_NAME_CHAR.finditer(name)]
    for cut in reversed(cuts):
        if name[:cut] in registry:
            return name[:cut], cut
    return None


class _Builder:
    """Walks the scanned tags once, keeping a stack of open frames."""

    def __init__(
        self,
        text: str,
        registry: Mapping[str, ShortcodeSpec],
        lex: AttrLexer,
        max_depth: int,
        report: Report | None,
    ) -> None:
        self.text = text
        self.registry = registry
        self.lex = lex
        self.max_depth = max_depth
        self.report = report
        self.root: list[Node] = []
        self.stack: list[_Frame] = []
        self.pos = 0  # page text before this offset is already in the tree
        self.last_close: dict[str, int] = {}
        self._line = 1
        self._line_at = 0
        self._line_start = 0

    # -- positions ------------------------------------------------------------------------------
    def _line_col(self, offset: int) -> tuple[int, int]:
        # Offsets only grow, so counting newlines since the last call keeps this linear.
        text = self.text
        newlines = text.count("\n", self._line_at, offset)
        if newlines:
            self._line += newlines
            self._line_start = text.rfind("\n", self._line_at, offset) + 1
        self._line_at = offset
        return self._line, offset - self._line_start + 1

    # -- helpers --------------------------------------------------------------------------------
    def _children(self) -> list[Node]:
        return self.stack[-1].children if self.stack else self.root

    def _flush(self, upto: int) -> None:
        if upto > self.pos:
            self._children().append(Text(self.text[self.pos : upto], self.pos))
        self.pos = max(self.pos, upto)

    def _problem(self, offset: int, width: int, message: str, severity: str = "error") -> None:
        if self.report is not None:
            self.report(offset, width, message, severity)

    # -- the walk -------------------------------------------------------------------------------
    def build(self) -> list[Node]:
        text = self.text
        registry = self.registry
        tokens = list(scan_tuples(text))
        # An opener can only enclose if a closer of its name comes later; knowing where each
        # name's last closer is lets the common self-closing tag skip the stack entirely.
        self.last_close = {tok[2]: tok[0] for tok in tokens if tok[3]}
        for start, end, name, closing, body, slash in tokens:
            if closing:
                if name in registry:
                    self._close(name, start, end)
                continue
            found = resolve_name(name, registry)
            if found is None:
                if self.report is not None:
                    self._unknown(name, start)
                continue
            resolved, length = found
            if length < len(name):
                body = name[length:] + body
            self._open(registry[resolved], start, end, body, start + 1 + length, slash)
        self._flush(len(text))
        while self.stack:
            self._close_unclosed(self.stack.pop(), len(text))
        return self.root

    def _open(
        self, spec: ShortcodeSpec, start: int, end: int, body: str, body_at: int, slash: bool
    ) -> None:
        text = self.text
        wrapped_left = start > 0 and text[start - 1] == "[" and start - 1 >= self.pos
        if wrapped_left and end < len(text) and text[end] == "]":
            # [[tag ...]] prints the inner tag literally and runs nothing.
            self._flush(start - 1)
            self._children().append(Text(text[start:end], start))
            self.pos = end + 1
            return
        if not slash and not spec.enclosing and self.last_close.get(spec.name, -1) < start:
            slash = True  # no closer follows: self-closing, as WordPress reads it
        if not slash and len(self.stack) >= self.max_depth:
            self._problem(
                start, end - start,
                f"[{spec.name}] is nested deeper than {self.max_depth} levels; it is shown as text",
            )
            return
        self._flush(start)
        line, column = self._line_col(start)
        if slash:
            node = ShortcodeNode(
                spec.name, self.lex(body), body, None, None, start, end, line, column, True, body_at
            )
            self._children().append(node)
            self.pos = end
            return
        self.stack.append(_Frame(spec, start, end, body, body_at, line, column, wrapped_left))
        self.pos = end

    def _close(self, name: str, start: int, end: int) -> None:
        stack = self.stack
        for depth in range(len(stack) - 1, -1, -1):
            if stack[depth].spec.name == name:
                break
        else:
            self._problem(
                start, end - start,
                f"closing tag [/{name}] has no opening tag; it is shown as text", "warning",
            )
            return
        self._flush(start)
        while len(stack) > depth + 1:
            self._close_unclosed(stack.pop(), start)
        frame = stack.pop()
        text = self.text
        if frame.escape_open and end < len(text) and text[end] == "]":
            # [[tag]...[/tag]] prints the whole inner construct literally.
            siblings = self._children()
            self._drop_escape_bracket(siblings, frame.start)
            siblings.append(Text(text[frame.start : end], frame.start))
            self.pos = end + 1
            return
        self._children().append(self._node(frame, tuple(frame.children), text[frame.end : start], True))
        self.pos = end

    def _drop_escape_bracket(self, siblings: list[Node], opener: int) -> None:
        """Remove the ``[`` just before an escaped opener from the text that precedes it."""
        last = siblings[-1] if siblings else None
        if isinstance(last, Text) and last.offset + len(last.text) == opener:
            trimmed = last.text[:-1]
            if trimmed:
                siblings[-1] = Text(trimmed, last.offset)
            else:
                siblings.pop()

    def _close_unclosed(self, frame: _Frame, at: int) -> None:
        """An opener whose closer never came, closed where its parent ends."""
        siblings = self._children()
        if frame.spec.enclosing:
            # Fail closed: the gate keeps everything up to its parent's end.
            self._problem(
                frame.start, frame.end - frame.start,
                f"[{frame.spec.name}] is never closed; it hides everything after it up to the end "
                f"of its parent (add [/{frame.spec.name}])",
            )
            siblings.append(self._node(frame, tuple(frame.children), self.text[frame.end : at], False))
            return
        siblings.append(self._node(frame, None, None, True))
        siblings.extend(frame.children)

    def _node(
        self, frame: _Frame, children: tuple[Node, ...] | None, content: str | None, closed: bool
    ) -> ShortcodeNode:
        return ShortcodeNode(
            frame.spec.name, self.lex(frame.body), frame.body, children, content,
            frame.start, frame.end, frame.line, frame.column, closed, frame.body_offset,
        )

    def _unknown(self, name: str, start: int) -> None:
        """Lint only: an unregistered name close to a registered one is probably a typo."""
        import difflib

        close = difflib.get_close_matches(name, list(self.registry), n=1, cutoff=0.8)
        if close:
            self._problem(
                start, len(name) + 1,
                f"unknown shortcode [{name}]; did you mean [{close[0]}]? It is shown as text",
                "warning",
            )


def build_tree(
    text: str,
    registry: Mapping[str, ShortcodeSpec],
    lex: AttrLexer,
    max_depth: int = MAX_DEPTH,
    report: Report | None = None,
) -> tuple[Node, ...]:
    """Parse ``text`` into a tree for the shortcodes in ``registry``.

    ``lex`` turns attribute text into items (the environment passes a cached lexer).
    ``report`` receives structural problems (unclosed gates, stray closers, typos, depth).
    """
    return tuple(_Builder(text, registry, lex, max_depth, report).build())
