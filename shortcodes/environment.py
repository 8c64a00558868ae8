"""The Environment: the shortcode registry and the entry points of the pipeline.

``parse`` (stages 1-2) -> ``compile`` (stage 3) -> ``Template.render`` (stage 4). All
configuration lives here and is passed explicitly; nothing is registered in module globals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from markupsafe import Markup

from shortcodes.compiler import CompiledAttrs, Compiler
from shortcodes.context import Context
from shortcodes.errors import Problem, ShortcodeSyntaxError
from shortcodes.nodes import Node, ShortcodeNode, Text
from shortcodes.parser import AttrItem, lex_attrs
from shortcodes.registry import Attribute, Handler, ShortcodeSpec, validate_name
from shortcodes.runtime import Shortcode, Template, Where
from shortcodes.tree import MAX_DEPTH, build_tree

F = TypeVar("F", bound=Callable[..., Any])


class Environment:
    """Holds the registered shortcodes and renders pages with them.

    ``Environment()`` comes with the builtin membership shortcodes; ``builtins=False`` starts
    empty. ``strict=True`` raises :class:`ShortcodeSyntaxError` for page errors (when compiling)
    and :class:`ShortcodeRenderError` for a shortcode that fails while rendering (its handler
    raised, a gate could not decide), chained to the cause; otherwise pages render like WordPress
    and a failing shortcode shows an escaped notice followed by its safe fallback, or the
    fallback alone for contexts with ``show_errors=False`` (see ``shortcodes.runtime``).
    """

    def __init__(
        self, builtins: bool = True, strict: bool = False, max_depth: int = MAX_DEPTH
    ) -> None:
        self.shortcodes: dict[str, ShortcodeSpec] = {}
        self.strict = strict
        self.max_depth = max_depth
        # Pages repeat the same tags; lexing and compiling each distinct attribute text once
        # keeps a cold render proportional to the number of distinct tags.
        self._lex_cache: dict[str, tuple[AttrItem, ...]] = {}
        self._attrs_cache: dict[tuple[str, str], CompiledAttrs] = {}
        #: Bumped on every registration change: a page compiled before it is out of date.
        self.generation = 0
        if builtins:
            from shortcodes.builtin import register

            register(self)

    # -- registry -----------------------------------------------------------------------------------
    def add_shortcode(
        self,
        name: str,
        handler: Handler,
        enclosing: bool = False,
        *,
        attributes: Iterable[Attribute] | None = None,
        else_markers: Iterable[str] = (),
        description: str = "",
        example: str = "",
        check: Callable[[Any, Callable[[int, int, str, str], None]], None] | None = None,
        extra: Mapping[str, Any] | None = None,
        fallback: Callable[[Shortcode], str | Markup] | None = None,
    ) -> ShortcodeSpec:
        """Register ``handler(sc, ctx)`` as shortcode ``name``; returns its spec.

        ``enclosing=True`` makes it a gate: unclosed, it fails closed. ``attributes`` declares
        the attributes it accepts (checked by lint, converted before the handler runs);
        ``else_markers`` names the markers that split its content into pass and fail branches;
        ``extra`` carries anything else a tool wants to know (aliases, theme, source file).
        ``fallback(sc)`` is what the shortcode shows when it fails outside strict mode (after
        the notice in preview, alone for visitors); a gate's is its fail branch. None shows
        nothing.
        """
        validate_name(name)
        if not callable(handler):
            raise TypeError(
                f"the handler for [{name}] must be callable, not {type(handler).__name__}"
            )
        spec = ShortcodeSpec(
            name=name,
            handler=handler,
            enclosing=enclosing,
            attributes=tuple(attributes) if attributes is not None else None,
            else_markers=tuple(m.lower() for m in else_markers),
            description=description or (handler.__doc__ or "").strip().split("\n")[0],
            example=example,
            check=check,
            extra=dict(extra or {}),
            fallback=fallback,
        )
        self.shortcodes[name] = spec
        self._attrs_cache.clear()  # nested shortcodes in attributes depend on the registry
        self.generation += 1
        return spec

    def shortcode(self, name: str, enclosing: bool = False, **options: Any) -> Callable[[F], F]:
        """Decorator twin of :meth:`add_shortcode`."""

        def decorate(handler: F) -> F:
            self.add_shortcode(name, handler, enclosing, **options)
            return handler

        return decorate

    def remove_shortcode(self, name: str) -> None:
        """Unregister ``name`` (a no-op when it is not registered)."""
        self.shortcodes.pop(name, None)
        self._attrs_cache.clear()
        self.generation += 1

    # -- pipeline -----------------------------------------------------------------------------------
    def _lex(self, body: str) -> tuple[AttrItem, ...]:
        found = self._lex_cache.get(body)
        if found is None:
            if len(self._lex_cache) > 20_000:
                self._lex_cache.clear()
            found = self._lex_cache[body] = tuple(lex_attrs(body))
        return found

    def _parse(
        self, text: str, registry: dict[str, ShortcodeSpec] | None = None
    ) -> tuple[Node, ...]:
        if "[" not in text:
            return (Text(text, 0),) if text else ()
        return build_tree(
            text, self.shortcodes if registry is None else registry, self._lex, self.max_depth
        )

    def parse(self, text: str) -> tuple[Node, ...]:
        """Parse ``text`` into a node tree (registered names only; everything else is Text)."""
        return self._parse(text)

    def compile(self, text: str, name: str = "<page>", where: Where | None = None) -> Template:
        """Parse ``text`` once into a Template that renders against any context.

        ``where(offset)`` gives the (line, column) in the author's file of an offset of
        ``text`` when ``text`` is not the file itself (a host page: Markdown converted, front
        matter removed), so inline notices name the lines ``check`` and lint name.
        """
        if not isinstance(text, str):
            raise TypeError(f"page text must be str, not {type(text).__name__}")
        if self.strict:
            errors = [p for p in self.lint(text, name) if p.severity == "error"]
            if errors:
                raise ShortcodeSyntaxError(errors[0])
        return Template(Compiler(self, where).compile_text(text), text, name)

    def render(self, text: str, ctx: Context | None = None) -> Markup:
        """Parse and render ``text`` for ``ctx`` (None is an anonymous visitor)."""
        return self.compile(text).render(ctx)

    def lint(self, text: str, name: str = "<page>") -> list[Problem]:
        """Every problem in ``text`` with line, column and a caret snippet; never raises."""
        from shortcodes.lint import lint

        return lint(self, text, name)

    # -- WordPress helpers --------------------------------------------------------------------------
    def strip(self, text: str, names: Iterable[str] | None = None) -> str:
        """Remove shortcodes and their enclosed content (WordPress ``strip_shortcodes``).

        ``names`` limits it to those shortcodes (registered or not); escaped ``[[tag]]`` becomes
        ``[tag]``, as WordPress does.
        """
        registry = self.shortcodes
        if names is not None:
            registry = {
                n: self.shortcodes.get(n) or ShortcodeSpec(validate_name(n), _no_output)
                for n in names
            }
        # Removing a tag can join the text around it into a new one ("[foot[footag]ag]"), so
        # strip until nothing changes (every pass removes at least one tag). A page with escapes
        # gets one pass, as in WordPress: a second would strip the [tag] an escape printed.
        while True:
            stripped = "".join(n.text for n in self._parse(text, registry) if isinstance(n, Text))
            if stripped == text or "[[" in text:
                return stripped
            text = stripped

    def has_shortcode(self, text: str, name: str) -> bool:
        """True if the registered shortcode ``name`` is used anywhere in ``text``."""
        if name not in self.shortcodes:
            return False
        return any(node.name == name for node in walk(self._parse(text)))


def _no_output(sc: Any, ctx: Any) -> str:
    return ""


def walk(nodes: tuple[Node, ...]) -> Iterator[ShortcodeNode]:
    """Every shortcode node in a tree, depth first, without recursion."""
    pending = list(reversed(nodes))
    while pending:
        node = pending.pop()
        if isinstance(node, ShortcodeNode):
            yield node
            if node.children:
                pending.extend(reversed(node.children))
