"""Stage 4, rendering: compiled pages rendered against a context, with the one error policy.

A :class:`Template` is a tuple of parts: trusted page text (``str``) and compiled shortcodes.
Rendering walks the parts once; a handler's result is escaped unless it is ``Markup``.
Rendering reads the context and never writes anywhere.

Every failure of a shortcode while rendering (its handler raised, an attribute did not convert,
a gate could not decide) goes through :meth:`CompiledShortcode.fail`, the only place that
decides what happens next:

* strict mode (``Environment(strict=True)``) raises :class:`ShortcodeRenderError` with the
  shortcode's name, line and column, ``from`` the original error;
* preview (``ctx.show_errors``, the default) renders the escaped inline notice, then the fallback;
* visitors (``show_errors=False``) get the shortcode's safe fallback only: what its spec's
  ``fallback`` renders (a gate's fail branch), or nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

from shortcodes.context import ANONYMOUS, Context
from shortcodes.errors import AttributeValueError, AuthorError, LineIndex, ShortcodeRenderError
from shortcodes.variables import resolve

if TYPE_CHECKING:
    from shortcodes.compiler import CompiledAttrs
    from shortcodes.registry import ShortcodeSpec

log = logging.getLogger("shortcodes")


@lru_cache(maxsize=16)
def _line_index(source: str) -> LineIndex:
    """The line index of a page, made once: a page whose every tag fails (a preview of a page
    full of typos) asks for as many positions as it has tags. The source's hash is cached by
    the string itself, so a lookup does not read the page again."""
    return LineIndex(source)


_new_object = object.__new__

#: Maps an offset in the compiled text to (line, column) in the author's file.
Where = Callable[[int], tuple[int, int]]

#: A dynamic attribute value: computed from the context when the handler reads it.
ValueFn = Callable[[Context], Any]


class Var:
    """A ``{{variable}}`` inside an attribute value that holds shortcodes: escaped on output."""

    __slots__ = ("name", "root")

    def __init__(self, root: str, name: str | None) -> None:
        self.root = root
        self.name = name

    def render(self, ctx: Context) -> str:
        return str(escape(resolve(ctx, self.root, self.name)))


def render_parts(parts: tuple[Any, ...], ctx: Context) -> str:
    """Render a sequence of parts to one string (trusted text is joined as is)."""
    out: list[str] = []
    append = out.append
    for part in parts:
        if part.__class__ is str:
            append(part)
        else:
            append(part.render(ctx))
    return "".join(out)


class Attrs(Mapping[int | str, Any]):
    """A shortcode's attributes: source order, positional under int keys, named lower-case.

    Static values are shared by every render; dynamic ones (``{{variables}}``, nested shortcodes)
    are computed on first read, so a nested shortcode in an attribute runs only when the handler
    reads that attribute.
    """

    __slots__ = ("_ctx", "_done", "_dynamic", "_keys", "_static")

    def __init__(
        self,
        keys: tuple[int | str, ...],
        static: Mapping[int | str, Any],
        dynamic: Mapping[int | str, ValueFn],
        ctx: Context,
    ) -> None:
        self._keys = keys
        self._static = static
        self._dynamic = dynamic
        self._ctx = ctx
        self._done: dict[int | str, Any] = {}

    def __getitem__(self, key: int | str) -> Any:
        if key in self._static:
            return self._static[key]
        if key in self._done:
            return self._done[key]
        fn = self._dynamic[key]
        value = self._done[key] = fn(self._ctx)
        return value

    def __iter__(self) -> Iterator[int | str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._static or key in self._dynamic

    def __repr__(self) -> str:
        return f"Attrs({dict(self)!r})"


class Shortcode:
    """One shortcode invocation, as its handler sees it.

    ``name``; ``attrs`` (ordered mapping, positional under int keys 0, 1 ...); ``content`` (the
    raw enclosed text, or None when self-closing or unclosed); ``line``/``column`` in the page.
    """

    __slots__ = ("_attrs", "_compiled", "ctx")

    def __init__(self, compiled: CompiledShortcode, ctx: Context) -> None:
        # CompiledShortcode.render sets these same slots itself: keep the two in step.
        self._compiled = compiled
        self.ctx = ctx
        self._attrs: Mapping[int | str, Any] | None = None

    @property
    def name(self) -> str:
        """The shortcode's registered name."""
        return self._compiled.spec.name

    @property
    def attrs(self) -> Mapping[int | str, Any]:
        """The attributes, with ``{{variables}}`` substituted and declared types converted."""
        if self._attrs is None:
            a = self._compiled.attrs
            self._attrs = (
                a.static_attrs if not a.dynamic else Attrs(a.keys, a.static, a.dynamic, self.ctx)
            )
        return self._attrs

    def is_dynamic(self, key: int | str) -> bool:
        """True if attribute ``key`` is computed per render (``{{variables}}`` or a nested
        shortcode), so its value may come from contact data rather than from the author."""
        return key in self._compiled.attrs.dynamic

    @property
    def content(self) -> str | None:
        """The raw text between the tags, or None when there is no closer."""
        return self._compiled.node_content

    @property
    def line(self) -> int:
        """1-based line of the opening tag."""
        return self._compiled.position()[0]

    @property
    def column(self) -> int:
        """1-based column of the opening tag."""
        return self._compiled.position()[1]

    @property
    def has_else(self) -> bool:
        """True if the content holds an else marker at its own nesting level."""
        return self._compiled.fail_parts is not None

    def render_content(self) -> Markup:
        """Render the content (nested shortcodes run now, with the same context)."""
        parts = self._compiled.content_parts
        return Markup(render_parts(parts, self.ctx)) if parts else Markup()

    def render_branch(self, passed: bool) -> Markup:
        """Render the part before the else marker (``passed``) or after it; only that part runs.

        Without an else marker the pass branch is the whole content and the fail branch is empty.
        """
        c = self._compiled
        parts: tuple[Any, ...] | None
        if passed:
            parts = c.pass_parts if c.fail_parts is not None else c.content_parts
        else:
            parts = c.fail_parts
        return Markup(render_parts(parts, self.ctx)) if parts else Markup()

    def get(self, key: int | str, default: Any = None) -> Any:
        """``attrs.get`` shorthand."""
        return self.attrs.get(key, default)

    def __repr__(self) -> str:
        return f"<Shortcode [{self.name}] at {self.line}:{self.column}>"


class CompiledShortcode:
    """A shortcode ready to render: handler bound, attributes and content compiled.

    The position is kept as an offset into the page and turned into a line and column only
    when an error or a handler asks (most renders never do).
    """

    __slots__ = (
        "attrs", "content_parts", "fail_parts", "handler", "node_content", "offset", "pass_parts",
        "source", "spec", "strict", "where",
    )  # fmt: skip

    def __init__(
        self,
        spec: ShortcodeSpec,
        attrs: CompiledAttrs,
        source: str,
        offset: int,
        strict: bool,
        where: Where | None = None,
    ) -> None:
        self.spec = spec
        self.where = where
        self.handler = spec.handler
        self.attrs = attrs
        self.source = source
        self.offset = offset
        self.strict = strict
        self.node_content: str | None = None
        self.content_parts: tuple[Any, ...] = ()
        self.pass_parts: tuple[Any, ...] = ()
        self.fail_parts: tuple[Any, ...] | None = None

    def position(self) -> tuple[int, int]:
        """1-based (line, column) of the opening tag, in the author's file when the page was
        compiled from converted text (Markdown, front matter) with a ``where`` map."""
        if self.where is not None:
            return self.where(self.offset)
        return _line_index(self.source).line_col(self.offset)

    def render(self, ctx: Context) -> str:
        """Run the handler for ``ctx``; the escaped result (or the error policy's answer)."""
        # Shortcode(self, ctx), written out: this runs once per tag and render, and building
        # the object here saves the Python frame of __init__ (about 1% of a cold render).
        sc = _new_object(Shortcode)
        sc._compiled = self
        sc.ctx = ctx
        sc._attrs = None
        attr_error = self.attrs.error
        if attr_error is not None:
            return self.fail(AttributeValueError(attr_error), sc)
        try:
            result = self.handler(sc, ctx)
        except Exception as error:
            return self.fail(error, sc)
        if result.__class__ is Markup:
            return result  # already safe; join takes it as it is
        # Handlers are typed to return str | Markup; a None from a careless one renders nothing.
        return escape(result) if result is not None else ""  # type: ignore[redundant-expr,unused-ignore]

    def fail(self, error: Exception, sc: Shortcode) -> str:
        """The error policy, decided here and nowhere else (see the module docstring).

        Strict mode raises; otherwise the failure is logged, and the result is the escaped
        notice (``ctx.show_errors``) followed by the shortcode's safe fallback.
        """
        line, column = self.position()
        name = self.spec.name
        if self.strict:
            if isinstance(error, ShortcodeRenderError):
                raise error  # a nested shortcode failed first and already says where
            raise ShortcodeRenderError(name, line, column, error) from error
        where = f"[{name}] at line {line}, column {column}"
        if isinstance(error, AuthorError):
            # An author's mistake, reported by lint too: no traceback on every render.
            log.warning("shortcode %s: %s", where, error)
        else:
            log.error("shortcode %s failed: %s", where, error, exc_info=error)
        fallback = self._fallback(sc)
        if not sc.ctx.show_errors:
            return fallback
        return str(notice(name, line, column, str(error))) + fallback

    def _fallback(self, sc: Shortcode) -> str:
        make = self.spec.fallback
        if make is None:
            return ""
        try:
            # Escaped like a handler's result: only Markup is trusted as HTML.
            return str(escape(make(sc)))
        except Exception as error:
            # A fallback must never take the page down; a broken one renders nothing.
            log.error("shortcode [%s]: its fallback failed: %s", sc.name, error, exc_info=error)
            return ""


def notice(name: str, line: int, column: int, message: str) -> Markup:
    """The inline notice authors see in preview: one style for every failure, message escaped."""
    text = f"[{name}] (line {line}, column {column}): {message}"
    return Markup('<span class="shortcode-error">{}</span>').format(text)


class Template:
    """A page parsed once, ready to render against any visitor without parsing again."""

    __slots__ = ("name", "parts", "source")

    def __init__(self, parts: tuple[Any, ...], source: str, name: str = "<page>") -> None:
        self.parts = parts
        self.source = source
        self.name = name

    def render(self, ctx: Context | None = None) -> Markup:
        """Render for ``ctx`` (None is an anonymous visitor)."""
        return Markup(render_parts(self.parts, ctx or ANONYMOUS))

    def __repr__(self) -> str:
        return f"<Template {self.name} ({len(self.parts)} parts)>"
