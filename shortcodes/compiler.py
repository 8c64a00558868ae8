"""Stage 3, compiling: page text to the parts of a :class:`~shortcodes.runtime.Template`.

The compiler does not read the node tree of :func:`~shortcodes.tree.build_tree`: it subclasses
the one pairing walk (:class:`~shortcodes.tree.PairingWalk`) and builds render parts as the walk
pairs the scanned tags, skipping the intermediate tree. Handlers are bound, adjacent text is merged, attribute values are decoded and split into static
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
from shortcodes.html import AttrValue, Region
from shortcodes.registry import ShortcodeSpec, convert
from shortcodes.runtime import CompiledShortcode, Var, Where, render_parts
from shortcodes.tree import Opening, PairingWalk
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


class _PartsWalk(PairingWalk):
    """The pairing walk, building render parts instead of frozen nodes."""

    plain_text = True

    def __init__(self, compiler: Compiler, text: str, in_attribute: bool) -> None:
        env = compiler.env
        super().__init__(text, env.shortcodes, env.max_depth, html=not in_attribute)
        self.compiler = compiler
        self.in_attribute = in_attribute
        self.attrs_cache = env._attrs_cache  # cleared in place, never replaced
        self.strict = env.strict
        # Positions map to the author's file for the page itself, not for attribute values.
        self.where = None if in_attribute else compiler.where

    def text_item(self, text: str, offset: int) -> str:
        return text

    def add_text(self, items: list[Any], text: str, offset: int) -> None:
        # Only escapes put two texts side by side (the text before or after them); remember
        # that one was seen, so content of pages without escapes skips the merging pass.
        self.compiler.adjacent_text = True
        items.append(text)

    def trim_text(self, item: str) -> str | None:
        return item[:-1] or None

    def attribute_value(self, region: Region, items: list[Any]) -> None:
        self.cur.append(AttrValue(region, self.compiler.finish(items, False)))

    def leaf(
        self, spec: ShortcodeSpec, start: int, end: int, body: str, body_offset: int
    ) -> CompiledShortcode:
        # Most tags repeat an earlier (name, attribute text): take the cached attributes here
        # rather than through Compiler.attrs, which costs a call per tag.
        attrs = self.attrs_cache.get((spec.name, body))
        if attrs is None:
            attrs = self.compiler.attrs(spec, body)
        return CompiledShortcode(spec, attrs, self.text, start, self.strict, self.where)

    def pair(self, tag: Opening, content: str, closed: bool) -> CompiledShortcode:
        return self.compiler.shortcode(tag, self.text, content, self.in_attribute)


class Compiler:
    """Compiles page text for one environment (its registry, strictness and caches)."""

    def __init__(self, env: Environment, where: Where | None = None) -> None:
        self.env = env
        #: Maps offsets of the compiled text to the author's file (see ``Environment.compile``).
        self.where = where
        #: Set by the walk when two texts were added side by side (escapes do that).
        self.adjacent_text = False

    # -- content ------------------------------------------------------------------------------------
    def compile_text(self, text: str, in_attribute: bool = False) -> tuple[Any, ...]:
        """Parse and compile ``text`` into render parts."""
        if "[" not in text:
            return self.finish([text] if text else [], in_attribute)
        return self.finish(_PartsWalk(self, text, in_attribute).walk(), in_attribute)

    def finish(self, items: list[Any], in_attribute: bool) -> tuple[Any, ...]:
        """Merge adjacent text (joined once: += would be quadratic); split attribute variables.

        Page content needs the merging pass only where escapes put texts side by side (see
        ``_PartsWalk.add_text``); attribute values also get their ``{{variables}}`` split out.
        """
        if not in_attribute and not self.adjacent_text:
            return tuple(items)
        out: list[Any] = []
        run: list[str] = []
        for item in items:
            if item.__class__ is str:
                run.append(item)
                continue
            if run:
                out.extend(self._text_parts("".join(run), in_attribute))
                run.clear()
            out.append(item)
        if run:
            out.extend(self._text_parts("".join(run), in_attribute))
        return tuple(out)

    @staticmethod
    def _text_parts(text: str, in_attribute: bool) -> list[Any]:
        if in_attribute and "{{" in text:
            return [p if isinstance(p, str) else Var(*p) for p in split_vars(text)]
        return [text]

    def shortcode(
        self, tag: Opening, source: str, content: str, in_attribute: bool
    ) -> CompiledShortcode:
        """Compile an enclosing shortcode: bind its handler, attributes, content and branches."""
        spec = tag.spec
        compiled = CompiledShortcode(
            spec,
            self.attrs(spec, tag.body),
            source,
            tag.start,
            self.env.strict,
            None if in_attribute else self.where,
        )
        compiled.node_content = content
        children = tag.children
        compiled.content_parts = self.finish(children, in_attribute)
        if spec.else_markers:
            self._split_else(compiled, spec, children, in_attribute)
        return compiled

    def _split_else(
        self,
        compiled: CompiledShortcode,
        spec: ShortcodeSpec,
        children: list[Any],
        in_attribute: bool,
    ) -> None:
        # Only markers among this shortcode's own children count: one inside a nested
        # shortcode belongs to that shortcode.
        pattern = else_pattern(spec.else_markers)
        for index, child in enumerate(children):
            if child.__class__ is not str:
                continue
            m = pattern.search(child)
            if m is None:
                continue
            before = [*children[:index], child[: m.start()]]
            after = [child[m.end() :], *children[index + 1 :]]
            compiled.pass_parts = self.finish(before, in_attribute)
            compiled.fail_parts = self.finish(after, in_attribute)
            return

    # -- attributes ---------------------------------------------------------------------------------
    def attrs(self, spec: ShortcodeSpec, body: str) -> CompiledAttrs:
        """Compile a tag's attribute text (cached per shortcode and attribute text)."""
        cache_ = self.env._attrs_cache
        key = (spec.name, body)
        found = cache_.get(key)
        if found is None:
            found = self._compile_attrs(spec, body)
            if len(cache_) > 20_000:
                cache_.clear()
            cache_[key] = found
        return found

    def _compile_attrs(self, spec: ShortcodeSpec, body: str) -> CompiledAttrs:
        result = CompiledAttrs()
        static: dict[int | str, Any] = {}
        keys: list[int | str] = []
        for key, value, _item in attr_pairs(list(self.env._lex(body))):
            keys.append(key)
            compiled = self._value(value)
            if isinstance(compiled, str):
                static[key] = compiled
            else:
                result.dynamic[key] = compiled
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

    def _value(self, value: str) -> str | Callable[[Context], Any]:
        """The value itself when it is static, else a function computing it per context."""
        if "<:" in value or "{{::" in value:
            for old, new in _STAND_INS:
                value = value.replace(old, new)
        if "[" in value:
            parts = self.compile_text(value, in_attribute=True)
            if any(p.__class__ is not str for p in parts):
                # Attribute values are data: the nested output is unescaped back to text here,
                # and escaped once when the handler puts it into HTML.
                return lambda ctx: Markup(render_parts(parts, ctx)).unescape()
            value = "".join(parts)  # escapes like [[tag]] are resolved even with no shortcode
        if "{{" in value:
            pieces = split_vars(value)
            if any(not isinstance(p, str) for p in pieces):
                return lambda ctx: "".join(
                    p if isinstance(p, str) else resolve(ctx, *p) for p in pieces
                )
        return value
