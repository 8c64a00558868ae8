"""Stage 3, compiling: the node tree to a :class:`~shortcodes.runtime.Template`.

Handlers are bound, adjacent text is merged, attribute values are decoded and split into static
values (shared by every render) and dynamic ones (``{{variables}}`` and shortcodes nested in a
quoted value, computed when read), declared attribute types are converted once, and the content
of a conditional is split at its else marker.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from shortcodes.attrs import attr_pairs
from shortcodes.context import Context
from shortcodes.nodes import Node, ShortcodeNode, Text
from shortcodes.registry import ShortcodeSpec, convert
from shortcodes.runtime import CompiledShortcode, Var, render_parts
from shortcodes.variables import resolve, split_vars

if TYPE_CHECKING:
    from shortcodes.environment import Environment

# Memberium's stand-ins for brackets inside attribute values.
_STAND_INS = (("{{::", "["), ("::}}", "]"), ("<:", "["), (":>", "]"))


@cache
def else_pattern(markers: tuple[str, ...]) -> re.Pattern[str]:
    """A case-insensitive pattern matching any of the ``[else...]`` markers."""
    return re.compile(r"\[(?:" + "|".join(map(re.escape, markers)) + r")\]", re.IGNORECASE)


class CompiledAttrs:
    """The compiled attributes of one (shortcode, attribute text) pair; shared between pages."""

    __slots__ = ("dynamic", "error", "keys", "static", "static_attrs")

    def __init__(self) -> None:
        self.keys: tuple[int | str, ...] = ()
        self.static: Mapping[int | str, Any] = {}
        self.static_attrs: Mapping[int | str, Any] = {}
        self.dynamic: dict[int | str, Callable[[Context], Any]] = {}
        self.error: str | None = None


class Compiler:
    """Compiles trees for one environment (its registry, strictness and caches)."""

    def __init__(self, env: Environment) -> None:
        self.env = env

    # -- content ------------------------------------------------------------------------------------
    def parts(self, nodes: tuple[Node, ...], in_attribute: bool = False) -> tuple[Any, ...]:
        """Compile nodes to render parts; adjacent text merges into one string."""
        out: list[Any] = []
        run: list[str] = []  # text waiting to be merged (joined once: += would be quadratic)
        for node in nodes:
            if isinstance(node, Text) and not (in_attribute and "{{" in node.text):
                run.append(node.text)
                continue
            if run:
                out.append("".join(run))
                run.clear()
            if isinstance(node, Text):
                out.extend(self._var_parts(node.text))
            else:
                out.append(self.shortcode(node, in_attribute))
        if run:
            out.append("".join(run))
        return tuple(out)

    def _var_parts(self, text: str) -> list[Any]:
        return [p if isinstance(p, str) else Var(*p) for p in split_vars(text)]

    def shortcode(self, node: ShortcodeNode, in_attribute: bool = False) -> CompiledShortcode:
        """Compile one shortcode node."""
        spec = self.env.shortcodes[node.name]
        compiled = CompiledShortcode(spec, node.line, node.column, self.env.strict)
        attrs = self.attrs(spec, node)
        compiled.keys = attrs.keys
        compiled.static = attrs.static
        compiled.static_attrs = attrs.static_attrs
        compiled.dynamic = attrs.dynamic
        compiled.attr_error = attrs.error
        if node.children is not None:
            compiled.node_content = node.content
            compiled.content_parts = self.parts(node.children, in_attribute)
            if spec.else_markers:
                self._split_else(compiled, spec, node.children, in_attribute)
        return compiled

    def _split_else(
        self,
        compiled: CompiledShortcode,
        spec: ShortcodeSpec,
        children: tuple[Node, ...],
        in_attribute: bool,
    ) -> None:
        # Only markers among this shortcode's own children count: one inside a nested
        # shortcode belongs to that shortcode.
        pattern = else_pattern(spec.else_markers)
        for index, child in enumerate(children):
            if not isinstance(child, Text):
                continue
            m = pattern.search(child.text)
            if m is None:
                continue
            before = Text(child.text[: m.start()], child.offset)
            after = Text(child.text[m.end() :], child.offset + m.end())
            compiled.pass_parts = self.parts((*children[:index], before), in_attribute)
            compiled.fail_parts = self.parts((after, *children[index + 1 :]), in_attribute)
            return

    # -- attributes ---------------------------------------------------------------------------------
    def attrs(self, spec: ShortcodeSpec, node: ShortcodeNode) -> CompiledAttrs:
        """Compile a node's attributes (cached per shortcode and attribute text)."""
        cache_ = self.env._attrs_cache
        key = (spec.name, node.body)
        found = cache_.get(key)
        if found is None:
            found = self._compile_attrs(spec, node)
            if len(cache_) > 20_000:
                cache_.clear()
            cache_[key] = found
        return found

    def _compile_attrs(self, spec: ShortcodeSpec, node: ShortcodeNode) -> CompiledAttrs:
        result = CompiledAttrs()
        static: dict[int | str, Any] = {}
        keys: list[int | str] = []
        for key, value, _item in attr_pairs(list(node.attrs)):
            keys.append(key)
            dynamic = self._dynamic_value(value)
            if dynamic is None:
                static[key] = value
            else:
                result.dynamic[key] = dynamic
        for attr in spec.attributes or ():
            result.error = result.error or self._declare(attr, static, result.dynamic, keys)
        result.keys = tuple(keys)
        result.static = static
        result.static_attrs = MappingProxyType(static)
        return result

    @staticmethod
    def _declare(
        attr: Any,
        static: dict[int | str, Any],
        dynamic: dict[int | str, Callable[[Context], Any]],
        keys: list[int | str],
    ) -> str | None:
        """Apply one declared attribute: convert, default, or report it missing."""
        name = attr.name
        if name in static:
            try:
                static[name] = convert(attr, static[name])
            except ValueError as error:
                return str(error)
        elif name in dynamic:
            fn = dynamic[name]
            dynamic[name] = lambda ctx: convert(attr, fn(ctx))
        elif attr.required:
            return f"attribute {name} is required"
        elif attr.default is not None:
            static[name] = attr.default
            keys.append(name)
        return None

    def _dynamic_value(self, value: str) -> Callable[[Context], Any] | None:
        """A function computing the value per context, or None when the value is static."""
        if "<:" in value or "{{::" in value:
            for old, new in _STAND_INS:
                value = value.replace(old, new)
        if "[" in value:
            nodes = self.env._parse(value)
            if any(isinstance(n, ShortcodeNode) for n in nodes):
                parts = self.parts(nodes, in_attribute=True)
                return lambda ctx: Markup(render_parts(parts, ctx))
        if "{{" in value:
            pieces = split_vars(value)
            if any(not isinstance(p, str) for p in pieces):
                return lambda ctx: "".join(
                    p if isinstance(p, str) else resolve(ctx, *p) for p in pieces
                )
        return None
