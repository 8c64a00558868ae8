"""Stage 2 output: the page tree. Frozen, slotted nodes that carry their source position."""

from __future__ import annotations

from dataclasses import dataclass

from shortcodes.parser import AttrItem


@dataclass(frozen=True, slots=True)
class Text:
    """Literal page text, output byte for byte (an escaped ``[[tag]]`` is Text too)."""

    text: str
    offset: int


@dataclass(frozen=True, slots=True)
class ShortcodeNode:
    """One registered shortcode in the page.

    ``children``/``content`` are None for a self-closing (or unclosed, non-enclosing) tag.
    ``closed`` is False for an enclosing tag whose closer is missing: it failed closed and
    encloses the rest of its parent's content. ``body`` is the raw attribute text.
    """

    name: str
    attrs: tuple[AttrItem, ...]
    body: str
    children: tuple[Text | ShortcodeNode, ...] | None
    content: str | None
    offset: int
    end: int
    line: int
    column: int
    closed: bool = True
    body_offset: int = 0


Node = Text | ShortcodeNode
