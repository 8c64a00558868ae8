"""Themes: a folder of Jinja2 layouts plus shortcodes defined as templates or in Python.

A theme is ``themes/<name>/``::

    base.html, page.html ...      layouts the host renders pages into (Theme.render)
    static/                       CSS and images, served by the host at ``static_url``
    shortcodes/<name>.html        each template is a shortcode named after its file
    shortcodes.py                 optional: ``register(env)`` adds Python shortcodes

A template shortcode declares itself in a leading Jinja comment holding TOML::

    {# shortcode
    description = "The three-branch credit button."
    example = '[creditbutton tag_id="Owns Course B" cost="50" ...]'
    enclosing = false

    [attributes]
    cost = { type = "int", required = true, doc = "price in credits" }
    #}

Attribute types: ``str``, ``tag``, ``int``, ``float``, ``bool`` and ``url`` (a link target;
``javascript:`` and other unsafe schemes are refused). Declared attributes are converted before
the template runs and checked by lint (unknown, missing, wrong type) like a builtin's.

The template sees ``attrs`` (named attributes, declared ones defaulted), ``args`` (positional
values), ``content`` (the rendered content, computed only if used), ``branch(passed)`` (the
part before or after ``[else]``/``[else_<name>]``, for enclosing templates), ``contact``, ``logged_in``, ``has_tag()``, ``has_any_tag('A, B')``, ``balance()``,
``field()``, ``action_button()``, ``is_local()``, ``url_for()``, ``request``, ``site`` and
``extra``. Autoescape is on: contact data and attribute values are escaped.
"""

from __future__ import annotations

import importlib.util
import re
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import jinja2
from markupsafe import Markup

from shortcodes.builtin.actions import action_form
from shortcodes.builtin.common import local_url, safe_url, split_list, tag_name, url
from shortcodes.context import Context
from shortcodes.errors import ThemeError
from shortcodes.registry import Attribute, validate_name
from shortcodes.runtime import Shortcode

if TYPE_CHECKING:
    from shortcodes.environment import Environment

#: The attribute types a template may declare, and the converter each one uses.
ATTRIBUTE_TYPES: Final[dict[str, Callable[[str], Any]]] = {
    "str": str,
    "tag": tag_name,
    "int": int,
    "float": float,
    "bool": bool,
    "url": url,
}

_HEADER: Final = re.compile(r"\A\s*\{#-?[ \t]*shortcode\b[^\n]*\n(?P<body>.*?)-?#\}", re.DOTALL)
_TOML_POS: Final = re.compile(r"\(at line (\d+), column (\d+)\)")
_ATTRIBUTE_KEYS: Final = frozenset({"type", "required", "default", "doc"})
_HEADER_KEYS: Final = frozenset({"description", "example", "enclosing", "attributes"})


@dataclass(frozen=True, slots=True)
class TemplateShortcode:
    """What a template's header declares."""

    name: str
    template: str
    attributes: tuple[Attribute, ...] | None
    description: str = ""
    example: str = ""
    enclosing: bool = False


# -- the header -----------------------------------------------------------------------------------


def read_header(source: str, file: Path, name: str) -> TemplateShortcode:
    """Parse the ``{# shortcode ... #}`` TOML header of a template (none: no declarations)."""
    template = f"shortcodes/{file.name}"
    m = _HEADER.match(source)
    if m is None:
        return TemplateShortcode(name, template, None)
    first_line = source.count("\n", 0, m.start("body")) + 1
    try:
        data = tomllib.loads(m.group("body"))
    except tomllib.TOMLDecodeError as error:
        pos = _TOML_POS.search(str(error))
        line = first_line + int(pos.group(1)) - 1 if pos else first_line
        raise ThemeError(f"the shortcode header is not TOML: {error}", file, line) from None
    unknown = sorted(set(data) - _HEADER_KEYS)
    if unknown:
        keys = ", ".join(sorted(_HEADER_KEYS))
        raise ThemeError(f"unknown header key {unknown[0]!r} (keys: {keys})", file, first_line)
    raw_attrs = data.get("attributes", {})
    if not isinstance(raw_attrs, dict):
        raise ThemeError("[attributes] must be a table", file, first_line)
    attributes = tuple(_attribute(key, spec, file, first_line) for key, spec in raw_attrs.items())
    return TemplateShortcode(
        name,
        template,
        attributes,
        description=str(data.get("description", "")),
        example=str(data.get("example", "")),
        enclosing=bool(data.get("enclosing", False)),
    )


def _attribute(key: str, spec: Any, file: Path, line: int) -> Attribute:
    where = f"attributes.{key}"
    if not re.fullmatch(r"[a-z0-9_-]+", key):
        raise ThemeError(
            f"{where}: attribute names are lower-case letters, digits, _ and -", file, line
        )
    if not isinstance(spec, dict):
        raise ThemeError(f'{where} must be a table such as {{ type = "str" }}', file, line)
    unknown = sorted(set(spec) - _ATTRIBUTE_KEYS)
    if unknown:
        raise ThemeError(f"{where}: unknown key {unknown[0]!r}", file, line)
    type_name = spec.get("type", "str")
    if type_name not in ATTRIBUTE_TYPES:
        raise ThemeError(
            f"{where}: unknown type {type_name!r} (types: {', '.join(ATTRIBUTE_TYPES)})", file, line
        )
    attr = Attribute(
        key,
        ATTRIBUTE_TYPES[type_name],
        bool(spec.get("required", False)),
        spec.get("default"),
        str(spec.get("doc", "")),
    )
    if attr.default is not None:
        _check_default(attr, type_name, where, file, line)
    return attr


def _check_default(attr: Attribute, type_name: str, where: str, file: Path, line: int) -> None:
    from shortcodes.registry import convert

    try:
        convert(attr, attr.default)
    except ValueError as error:
        message = f"{where}: the default is not a {type_name}: {error}"
        raise ThemeError(message, file, line) from None


# -- what a template sees -------------------------------------------------------------------------


class LazyContent:
    """The rendered content of a template shortcode, computed the first time it is printed."""

    __slots__ = ("_done", "_sc")

    def __init__(self, sc: Shortcode) -> None:
        self._sc = sc
        self._done: Markup | None = None

    def __html__(self) -> str:
        if self._done is None:
            self._done = self._sc.render_content()
        return str(self._done)

    def __str__(self) -> str:
        return self.__html__()

    def __bool__(self) -> bool:
        return bool(self._sc.content) and bool(self.__html__().strip())


def _balance(ctx: Context) -> Callable[..., int | Decimal | None]:
    def balance(field: str = "_Credits") -> int | Decimal | None:
        """The contact's balance in ``field`` (a Decimal on a field with decimals); None
        without one."""
        if ctx.contact is None:
            return None
        try:
            return ctx.contact.balance(str(field))
        except ValueError:  # digit-like text that int() refuses is no balance
            return None

    return balance


def _action_button(ctx: Context) -> Callable[..., Markup]:
    def action_button(
        action_id: str,
        button_text: Any = "Submit",
        css_class: str = "",
        redirect_url: str = "",
        **params: Any,
    ) -> Markup:
        """The signed POST form of ``shortcodes.builtin.actions``; empty for visitors."""
        return action_form(
            ctx,
            str(action_id),
            button_text=button_text,
            css_class=css_class,
            redirect_url=redirect_url,
            params=params,
        )

    return action_button


def _is_local(url: Any) -> bool:
    try:
        local_url(url)
    except ValueError:
        return False
    return True


def template_variables(
    sc: Shortcode, ctx: Context, decl: TemplateShortcode, url_for: Callable[..., str]
) -> dict[str, Any]:
    """Everything a template shortcode sees (see the module docstring)."""
    attrs: dict[str, Any] = {a.name: a.default for a in decl.attributes or ()}
    args: list[Any] = []
    for key, value in sc.attrs.items():
        if isinstance(key, int):
            args.append(value)
        else:
            attrs[key] = value
    contact = ctx.contact
    return {
        "attrs": attrs,
        "args": args,
        "content": LazyContent(sc),
        "branch": sc.render_branch,
        "contact": contact,
        "logged_in": contact is not None,
        "has_tag": lambda ref: contact is not None and contact.has_tag(str(ref)),
        "has_any_tag": lambda refs: (
            contact is not None and any(contact.has_tag(ref) for ref in split_list(str(refs or "")))
        ),
        "field": lambda name, default="": (
            default if contact is None else contact.field(name, default)
        ),
        "balance": _balance(ctx),
        "action_button": _action_button(ctx),
        "is_local": _is_local,
        "url_for": url_for,
        "request": ctx.request,
        "site": ctx.site,
        "extra": ctx.extra,
        "shortcode": {"name": sc.name, "line": sc.line, "column": sc.column},
    }


def _no_url_for(endpoint: str, **values: Any) -> str:
    raise RuntimeError(f"url_for({endpoint!r}) is not available: pass url_for= to load_theme()")


# -- the theme ------------------------------------------------------------------------------------


class Theme:
    """A loaded theme: its Jinja2 environment, layouts and the shortcodes it registered."""

    def __init__(
        self,
        path: str | Path,
        *,
        url_for: Callable[..., str] | None = None,
        static_url: str = "/theme/",
    ) -> None:
        self.path = Path(path).resolve()
        if not self.path.is_dir():
            raise ThemeError("no such theme folder", self.path)
        self.name = self.path.name
        self.url_for = url_for or _no_url_for
        self.static_url = static_url.rstrip("/") + "/"
        self.shortcodes: list[str] = []
        self._templates: dict[str, TemplateShortcode] = {}  # registered from shortcodes/*.html
        self._stamp: tuple[tuple[str, int, int], ...] = ()
        self._checked = 0.0
        #: Seconds between two looks at the template files (:meth:`refresh`).
        self.check_every = 1.0
        self.jinja = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.path),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=True,
        )
        self.jinja.globals.update(url_for=self.url_for, theme_asset=self.asset, theme=self)
        self.jinja.filters["safe_url"] = _safe_url_filter

    @property
    def static_folder(self) -> Path:
        """The folder the host serves at ``static_url``."""
        return self.path / "static"

    def asset(self, name: str) -> str:
        """The URL of a file in ``static/``."""
        return self.static_url + name.lstrip("/")

    def render(self, template: str, **context: Any) -> Markup:
        """Render a layout (``page.html`` ...) with ``context``; autoescaped."""
        # Safe: the environment autoescapes everything the layout prints.
        return Markup(self.jinja.get_template(template).render(**context))  # noqa: S704

    # -- shortcodes ---------------------------------------------------------------------------
    def template_shortcodes(self) -> list[TemplateShortcode]:
        """The declarations of every ``shortcodes/*.html`` template, sorted by name."""
        folder = self.path / "shortcodes"
        found = []
        for file in sorted(folder.glob("*.html")) if folder.is_dir() else ():
            try:
                name = validate_name(file.stem)
            except ValueError as error:
                raise ThemeError(str(error), file) from None
            found.append(read_header(file.read_text("utf-8"), file, name))
        return found

    def register(self, env: Environment) -> list[str]:
        """Register the theme's template shortcodes, then its ``shortcodes.py``; returns names."""
        self._stamp = self._template_stamp()
        for decl in self.template_shortcodes():
            self._add(env, decl)
        python = self.path / "shortcodes.py"
        if python.is_file():
            before = set(env.shortcodes)
            self._run_python(python, env)
            self.shortcodes.extend(sorted(set(env.shortcodes) - before))
        return list(self.shortcodes)

    def _add(self, env: Environment, decl: TemplateShortcode) -> None:
        self._check_compiles(decl)
        spec = env.add_shortcode(
            decl.name,
            self._handler(decl),
            decl.enclosing,
            attributes=decl.attributes,
            description=decl.description,
            example=decl.example,
            # An enclosing template can be a gate: branch(passed) picks a side of [else].
            else_markers=("else", f"else_{decl.name}") if decl.enclosing else (),
        )
        spec.extra.update(theme=self.name, source=str(self.path / decl.template))
        self._templates[decl.name] = decl
        if decl.name not in self.shortcodes:
            self.shortcodes.append(decl.name)

    def _template_stamp(self) -> tuple[tuple[str, int, int], ...]:
        """(file, mtime, size) of every ``shortcodes/*.html``: what a reload looks at."""
        folder = self.path / "shortcodes"
        files = sorted(folder.glob("*.html")) if folder.is_dir() else []
        stamp = []
        for file in files:
            try:
                stat = file.stat()
            except OSError:
                continue  # removed while we looked: the next check sees it gone
            stamp.append((file.name, stat.st_mtime_ns, stat.st_size))
        return tuple(stamp)

    def refresh(self, env: Environment) -> bool:
        """Pick up new, changed and removed template shortcodes without a restart.

        Looks at most once per :attr:`check_every` seconds (a glob and a stat per template); when a file
        changed, the template shortcodes are registered again from their headers and the
        removed ones are unregistered, and True is returned (pages then recompile, see
        ``Environment.generation``). A template with a broken header keeps the last good
        registration and raises :class:`ThemeError` naming the file, as at startup.
        ``shortcodes.py`` is Python: it is read at startup only.
        """
        now = time.monotonic()
        if now - self._checked < self.check_every:
            return False
        self._checked = now
        stamp = self._template_stamp()
        if stamp == self._stamp:
            return False
        declared = self.template_shortcodes()  # raises before anything is changed
        for decl in declared:
            self._check_compiles(decl)
        self._stamp = stamp
        names = {decl.name for decl in declared}
        for gone in set(self._templates) - names:
            env.remove_shortcode(gone)
            del self._templates[gone]
            self.shortcodes.remove(gone)
        for decl in declared:
            if self._templates.get(decl.name) != decl:
                self._add(env, decl)
        return True

    def _check_compiles(self, decl: TemplateShortcode) -> None:
        try:
            self.jinja.get_template(decl.template)
        except jinja2.TemplateSyntaxError as error:
            raise ThemeError(
                f"template error: {error.message}", self.path / decl.template, error.lineno
            ) from None

    def _handler(self, decl: TemplateShortcode) -> Callable[[Shortcode, Context], Markup]:
        def handler(sc: Shortcode, ctx: Context) -> Markup:
            template = self.jinja.get_template(decl.template)
            html = template.render(template_variables(sc, ctx, decl, self.url_for))
            return Markup(html)  # noqa: S704 - autoescaped by the theme's environment

        handler.__doc__ = decl.description
        return handler

    def _run_python(self, file: Path, env: Environment) -> None:
        module_name = f"_shortcodes_theme_{re.sub(r'[^A-Za-z0-9_]', '_', self.name)}"
        spec = importlib.util.spec_from_file_location(module_name, file)
        if spec is None or spec.loader is None:  # pragma: no cover - a .py file always loads
            raise ThemeError("cannot load", file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        register = getattr(module, "register", None)
        if not callable(register):
            raise ThemeError("defines no register(env) function", file)
        register(env)


def _safe_url_filter(value: Any) -> str:
    """Jinja filter: the URL if it is a safe link target, else ``#``."""
    try:
        return safe_url(value)
    except ValueError:
        return "#"


def load_theme(
    env: Environment,
    path: str | Path,
    *,
    url_for: Callable[..., str] | None = None,
    static_url: str = "/theme/",
) -> Theme:
    """Load the theme folder ``path`` and register its shortcodes on ``env``."""
    theme = Theme(path, url_for=url_for, static_url=static_url)
    theme.register(env)
    return theme


def theme_path(name: str, root: str | Path = "themes") -> Path:
    """``<root>/<name>``, refusing names that would leave ``root``."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) or ".." in name:
        raise ThemeError(f"{name!r} is not a theme name", root)
    return Path(root) / name


__all__ = [
    "ATTRIBUTE_TYPES",
    "Theme",
    "load_theme",
    "read_header",
    "theme_path",
]
