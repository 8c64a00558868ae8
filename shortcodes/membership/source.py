"""Reading ``site.toml``: its values (``tomllib``) and where each key is written (tree-sitter).

``tomllib`` is the reference decoder but keeps no positions, so the file is parsed a second
time by tree-sitter's TOML grammar, only to index where every key, array element and table
starts. An index entry is keyed by the value's path, e.g. ``("actionsets", "buy-b", "steps", 1,
"amount")``; a path that is not written (a missing key) is reported at its nearest written
ancestor. Both parses are linear in the file's size.

:class:`Node` is how section owners read the file: a value with its path, whose checks raise a
:class:`~shortcodes.errors.ConfigError` naming the file, line, column and dotted key.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import tree_sitter
import tree_sitter_toml

from shortcodes.errors import ConfigError
from shortcodes.membership.keys import Keys

Path_ = tuple[str | int, ...]
T = TypeVar("T")

_TOML_POS = re.compile(r"\s*\(at line (\d+), column (\d+)\)")


@cache
def _parser() -> tree_sitter.Parser:
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_toml.language()))


def dotted(path: Path_) -> str:
    """``("actionsets", "buy-b", "steps", 1)`` as ``actionsets.buy-b.steps[1]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


@dataclass(frozen=True, slots=True)
class SiteSource:
    """One ``site.toml``: its file name, decoded data and the position of every written key."""

    file: str
    data: dict[str, Any]
    positions: dict[Path_, tuple[int, int]]

    @classmethod
    def read(cls, path: str | Path) -> SiteSource:
        """Read and decode a file; an unreadable or malformed one is a :class:`ConfigError`."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise ConfigError(
                f"cannot read the site configuration: {reason}", file=str(path)
            ) from exc
        return cls.parse(text, str(path))

    @classmethod
    def parse(cls, text: str, file: str = "site.toml") -> SiteSource:
        """Decode a TOML text; a syntax error names its line and column."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            found = _TOML_POS.search(str(exc))
            line, column = (int(found.group(1)), int(found.group(2))) if found else (0, 0)
            message = _TOML_POS.sub("", str(exc)).strip()
            raise ConfigError(
                f"not valid TOML: {message}", file=file, line=line, column=column
            ) from None
        return cls(file, data, _index(text))

    def where(self, path: Path_) -> tuple[int, int]:
        """(line, column) of ``path`` or of its nearest written ancestor; (0, 0) if none."""
        for end in range(len(path), 0, -1):
            found = self.positions.get(path[:end])
            if found is not None:
                return found
        return (0, 0)

    def error(self, path: Path_, message: str, shown: Path_ | None = None) -> ConfigError:
        """The error for the value at ``path`` (named ``shown`` in the message, when given)."""
        line, column = self.where(path)
        key = dotted(path if shown is None else shown)
        return ConfigError(message, file=self.file, key=key, line=line, column=column)

    def root(self) -> Node:
        """The whole file as a :class:`Node`."""
        return Node(self, (), self.data)


@dataclass(frozen=True, slots=True)
class Node:
    """A value of the file with its path; its checks fail with file, line and key.

    ``shown`` is the path as messages name it: a ``[[rules]]`` table is named by its rule's name
    (``rules.monthly.steps[0]``) rather than its index, once the name is known."""

    source: SiteSource
    path: Path_
    value: Any
    shown: Path_ | None = None

    @property
    def label(self) -> Path_:
        """The path as messages name it."""
        return self.path if self.shown is None else self.shown

    def named(self, name: str) -> Node:
        """This node, named ``name`` in messages instead of its last path element."""
        return replace(self, shown=(*self.label[:-1], name))

    def at(self, key: str | int, value: Any) -> Node:
        """A node for ``value`` written under ``key`` of this one."""
        return Node(self.source, (*self.path, key), value, (*self.label, key))

    def fail(self, message: str, *sub: str | int) -> ConfigError:
        """The error for this value (or for its child ``sub``)."""
        return self.source.error(self.path + sub, message, self.label + sub)

    def check(self, checker: Callable[[Any], T]) -> T:
        """``checker(value)``, its ``ValueError`` turned into this value's ConfigError."""
        try:
            return checker(self.value)
        except ValueError as exc:
            raise self.fail(str(exc)) from None

    def child(self, key: str | int, default: Any = None) -> Node:
        """The value under ``key`` (``default`` when absent), with its path."""
        value = self.value.get(key, default) if isinstance(self.value, dict) else default
        return self.at(key, value)

    def __contains__(self, key: str) -> bool:
        return isinstance(self.value, dict) and key in self.value

    def table(self, allowed: Keys | None = None, what: str = "a table") -> Node:
        """This value, which must be a table whose keys are all in ``allowed`` (when given).

        ``allowed`` is a documented :class:`~.keys.Keys` and nothing else, so no key is accepted
        that the reference does not describe."""
        if not isinstance(self.value, dict):
            raise self.fail(f"must be {what}, got {_kind(self.value)}")
        if allowed is not None:
            for key in self.value:
                if key not in allowed:
                    expected = ", ".join(sorted(allowed))
                    raise self.fail(f"unknown key {key!r} (expected one of: {expected})", key)
        return self

    def items(self) -> Iterator[tuple[str, Node]]:
        """(key, node) of a table, in file order."""
        for key in self.table().value:
            yield key, self.child(key)

    def elements(self, what: str = "a list") -> Iterator[Node]:
        """The nodes of an array (a single table for a list of tables is refused)."""
        if not isinstance(self.value, list):
            raise self.fail(f"must be {what}, got {_kind(self.value)}")
        for index, value in enumerate(self.value):
            yield self.at(index, value)

    def text(self, default: str | None = None) -> str:
        """A text value (``default`` when absent; absent without default is an error)."""
        if self.value is None and default is not None:
            return default
        if not isinstance(self.value, str):
            shown = (
                repr(self.value)
                if isinstance(self.value, int | float | bool)
                else _kind(self.value)
            )
            raise self.fail(f"must be text, got {shown}")
        return self.value


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a text"}
    names |= {list: "a list", dict: "a table"}
    return names.get(type(value), type(value).__name__)


# -- positions --------------------------------------------------------------------------------


def _index(text: str) -> dict[Path_, tuple[int, int]]:
    """Where each key path of ``text`` is written: 1-based (line, column) of its key or element."""
    data = text.encode("utf-8")
    tree = _parser().parse(data)
    index: dict[Path_, tuple[int, int]] = {}
    arrays: dict[Path_, int] = {}  # [[table]] arrays: how many elements so far
    table: Path_ = ()
    for node in tree.root_node.named_children:
        if node.type == "pair":
            _pair(node, table, index)
        elif node.type in ("table", "table_array_element"):
            table = _header(node, index, arrays)
            for child in node.named_children[1:]:
                if child.type == "pair":
                    _pair(child, table, index)
    return _in_characters(index, data.split(b"\n"))


def _in_characters(
    index: dict[Path_, tuple[int, int]], lines: list[bytes]
) -> dict[Path_, tuple[int, int]]:
    """tree-sitter counts columns in bytes; people (and editors) count characters."""
    return {
        path: (line, len(lines[line - 1][: column - 1].decode("utf-8", "replace")) + 1)
        for path, (line, column) in index.items()
    }


def _header(
    node: tree_sitter.Node, index: dict[Path_, tuple[int, int]], arrays: dict[Path_, int]
) -> Path_:
    key_node = node.named_children[0]
    path = _in_arrays(_key_path(key_node), arrays)
    if node.type == "table_array_element":
        count = arrays.get(path, 0)
        arrays[path] = count + 1
        index.setdefault(path, _point(node))
        path = (*path, count)
    for end in range(1, len(path) + 1):
        index.setdefault(path[:end], _point(node))
    return path


def _in_arrays(path: Path_, arrays: dict[Path_, int]) -> Path_:
    """A header's key path with the index of each array of tables it goes through: in TOML,
    ``[rules.drip]`` after ``[[rules]]`` is a table of the last ``[[rules]]`` element, whose
    values are at ``("rules", N, "drip")``."""
    out: Path_ = ()
    for part in path[:-1]:
        out = (*out, part)
        if out in arrays:
            out = (*out, arrays[out] - 1)
    return (*out, *path[-1:])


def _pair(node: tree_sitter.Node, table: Path_, index: dict[Path_, tuple[int, int]]) -> None:
    key_node, value = node.named_children[0], node.named_children[-1]
    path = (*table, *_key_path(key_node))
    for end in range(len(table) + 1, len(path) + 1):
        index.setdefault(path[:end], _point(key_node))
    _value(value, path, index)


def _value(node: tree_sitter.Node, path: Path_, index: dict[Path_, tuple[int, int]]) -> None:
    if node.type == "array":
        for position, element in enumerate(c for c in node.named_children if c.type != "comment"):
            index.setdefault((*path, position), _point(element))
            _value(element, (*path, position), index)
    elif node.type == "inline_table":
        for pair in node.named_children:
            if pair.type == "pair":
                _pair(pair, path, index)


def _key_path(node: tree_sitter.Node) -> Path_:
    if node.type == "dotted_key":
        return tuple(part for child in node.named_children for part in _key_path(child))
    raw = (node.text or b"").decode("utf-8")
    if node.type == "bare_key":
        return (raw,)
    # A quoted key: let the reference decoder read its escapes.
    return tuple(tomllib.loads(f"{raw} = 0"))


def _point(node: tree_sitter.Node) -> tuple[int, int]:
    row, column = node.start_point
    return row + 1, column + 1
