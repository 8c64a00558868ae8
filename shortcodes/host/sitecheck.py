"""The site-wide check: every page of a site, as the host would serve it, before it goes live.

``python -m shortcodes check`` starts from the configuration (``site.toml``, read once by
:func:`~shortcodes.membership.config.load_config`), then builds the engine exactly as the host
does (builtins, host and loyalty shortcodes, the theme's shortcodes) and checks every page file:

* its front matter: known keys, valid values, a layout the theme has, tags that exist;
* every shortcode (theme shortcodes included): what ``lint`` finds, typos of gates and declared
  attribute types among it;
* values that must exist: actionset ids (``action_id``), tag names (tag attributes and
  ``access``), products (``product``), credit fields (``field``) and the local URLs of links
  (``*_url`` and ``url``-typed attributes) that no page or host route serves.

Every problem is a :class:`Finding`, printed ``FILE:LINE:COL: severity: message`` with lines
counted from the top of the file, front matter included: the preview, the editor and the
language server show the same lines because they call :func:`check_page` too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shortcodes.attrs import attr_pairs
from shortcodes.automations.loyalty import FIELD as POINTS
from shortcodes.automations.shortcodes import register_loyalty_shortcodes
from shortcodes.builtin.common import tag_name, url
from shortcodes.builtin.conditionals import TAG_ATTRIBUTES
from shortcodes.environment import Environment, walk
from shortcodes.errors import LineIndex, PageError, ThemeError, make_problem
from shortcodes.host.account import register_account_shortcodes
from shortcodes.host.checkout import register_host_shortcodes
from shortcodes.host.pages import (
    EXTENSIONS,
    FrontMatter,
    FrontValue,
    PageStore,
    front_matter,
    read_front_matter,
)
from shortcodes.membership.site import SiteSettings
from shortcodes.nodes import ShortcodeNode
from shortcodes.registry import ShortcodeSpec
from shortcodes.themes import Theme, load_theme, theme_path

#: Paths the host itself serves (not pages): a local link may point at them.
HOST_PATHS = (
    "/login",
    "/logout",
    "/actions/",
    "/checkout/",
    "/theme/",
    "/hooks/",
    "/admin",
    "/_preview",
    "/_shortcodes",
)

#: The ``data:`` values a page may ask for in its front matter.
PAGE_DATA = ("account", "tags")


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem of a site: file, 1-based line and column, severity and message."""

    file: str
    line: int
    column: int
    severity: str
    message: str

    def format(self) -> str:
        """``FILE:LINE:COL: severity: message``."""
        return f"{self.file}:{self.line}:{self.column}: {self.severity}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        """The finding as JSON-ready data (``check --format json``)."""
        return asdict(self)


@dataclass(frozen=True)
class SiteFacts:
    """What must exist for a page's values to be right: from site.toml, the theme and pages."""

    actionsets: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    products: frozenset[str] = frozenset()
    credit_fields: tuple[str, ...] = ("_Credits",)
    layouts: frozenset[str] = frozenset({"page"})
    pages: PageStore | None = field(default=None, compare=False)

    @classmethod
    def of(cls, site: SiteSettings, theme: Theme | None, pages: PageStore | None) -> SiteFacts:
        """The facts of a loaded site (its settings hold the membership model's declarations)."""
        layouts = {"page"}
        if theme is not None:
            layouts = {f.stem for f in theme.path.glob("*.html")}
        return cls(
            frozenset(site.actions.actionsets),
            frozenset(site.actions.tags),
            frozenset(site.products),
            tuple(site.actions.credit_fields),
            frozenset(layouts),
            pages,
        )

    def serves(self, path: str) -> bool:
        """True if a page or a host route answers the local ``path``."""
        path = path.split("#", 1)[0].split("?", 1)[0] or "/"
        if any(path == p.rstrip("/") or path.startswith(p) for p in HOST_PATHS):
            return True
        return self.pages is None or self.pages.find(path) is not None


def site_environment(
    site: SiteSettings, themes_dir: Path, url_for: Any = None
) -> tuple[Environment, Theme]:
    """The engine the host builds for ``site``: builtins, host, account, loyalty and theme
    shortcodes."""
    env = Environment()
    register_host_shortcodes(env)
    register_account_shortcodes(env)
    register_loyalty_shortcodes(env)
    theme = load_theme(env, theme_path(site.theme, themes_dir), url_for=url_for)
    return env, theme


# -- one page ------------------------------------------------------------------------------------


def check_page(env: Environment, facts: SiteFacts, text: str, name: str) -> list[Finding]:
    """Every problem of one page file's text (front matter and body), in file order."""
    try:
        values, body, taken = read_front_matter(text, name)
        meta = front_matter(values, name)
    except PageError as error:
        return [_page_finding(name, error)]
    found = list(_front_matter_values(facts, values, meta, name))
    found.extend(_shortcode_findings(env, facts, body, name, taken + 1, 1))
    if "offer" in values and meta.offer:
        found.extend(_offer_findings(env, facts, values["offer"], meta, name))
    return sorted(found, key=lambda f: (f.line, f.column, f.message))


def _shortcode_findings(
    env: Environment,
    facts: SiteFacts,
    text: str,
    name: str,
    line: int,
    column: int,
    prefix: str = "",
) -> Iterator[Finding]:
    """What lint and the values that must exist find in shortcode ``text`` that starts at
    ``line``:``column`` of the file (its later lines start at column 1)."""

    def where(at_line: int, at_column: int) -> tuple[int, int]:
        return line + at_line - 1, at_column + (column - 1 if at_line == 1 else 0)

    for problem in env.lint(text, name):
        yield Finding(
            name, *where(problem.line, problem.column), problem.severity, prefix + problem.message
        )
    lines = LineIndex(text)
    for offset, width, message in _missing_values(env, facts, text):
        p = make_problem(text, offset, message, "error", width, name, lines)
        yield Finding(name, *where(p.line, p.column), "error", prefix + message)


def _offer_findings(
    env: Environment, facts: SiteFacts, item: FrontValue, meta: FrontMatter, name: str
) -> Iterator[Finding]:
    """The ``offer`` is shortcode text shown to a contact the page locks out: checked like the
    body, at its place on its front matter line; an offer no one can be shown is a warning."""
    yield from _shortcode_findings(
        env, facts, item.value, name, item.line, item.column, "front matter 'offer': "
    )
    if not meta.access:
        yield Finding(
            name, item.line, item.column, "warning",
            "front matter 'offer' is shown only to a contact without one of the page's 'access' "
            "tags; this page has no 'access', so no one sees it",
        )  # fmt: skip


def _page_finding(name: str, error: PageError) -> Finding:
    message = str(error)
    prefix = f"{name}:{error.line}:{error.column}: "
    return Finding(name, error.line or 1, error.column or 1, "error", message.removeprefix(prefix))


def _front_matter_values(
    facts: SiteFacts, values: dict[str, Any], meta: Any, name: str
) -> Iterator[Finding]:
    if "layout" in values and meta.layout not in facts.layouts:
        item = values["layout"]
        known = ", ".join(sorted(facts.layouts))
        yield Finding(
            name, item.line, item.column, "error",
            f"front matter 'layout': the theme has no layout {meta.layout!r} (it has: {known})",
        )  # fmt: skip
    for key, allowed, what in (("access", facts.tags, "tag"), ("data", PAGE_DATA, "data")):
        if key not in values:
            continue
        item = values[key]
        for value in getattr(meta, key):
            if value not in allowed:
                yield Finding(
                    name, item.line, item.column, "error",
                    f"front matter '{key}': no {what} {value!r} "
                    f"(known: {', '.join(sorted(allowed)) or 'none'})",
                )  # fmt: skip


# -- values that must exist ------------------------------------------------------------------------


def _missing_values(
    env: Environment, facts: SiteFacts, body: str
) -> Iterator[tuple[int, int, str]]:
    """(offset, width, message) for each static attribute value naming something that is not
    there; values with ``{{variables}}`` or nested shortcodes are known only when rendered."""
    for node in walk(env.parse(body)):
        spec = env.shortcodes.get(node.name)
        if spec is None:
            continue
        for key, value, item in attr_pairs(list(node.attrs)):
            if not isinstance(key, str) or "{{" in value or "[" in value:
                continue
            message = _value_problem(facts, spec, node, key, value)
            if message is not None:
                yield node.body_offset + item.offset, len(item.source), message


def _value_problem(
    facts: SiteFacts, spec: ShortcodeSpec, node: ShortcodeNode, key: str, value: str
) -> str | None:
    kind = value_kind(spec, key)
    where = f"[{node.name}] {key}"
    if kind == "action" and value not in facts.actionsets:
        return f"{where}: no actionset {value!r} in site.toml"
    if kind == "product" and value not in facts.products:
        return f"{where}: no product {value!r} in site.toml"
    # Loyalty points are grants of their own field on every site (shown by the same shortcodes).
    if kind == "field" and value not in (*facts.credit_fields, POINTS):
        return f"{where}: {value!r} is not a credit field ({', '.join(facts.credit_fields)})"
    if kind == "tag":
        missing = [t for t in _tag_items(value) if t not in facts.tags]
        if missing:
            return f"{where}: no tag {missing[0]!r} in site.toml"
    local = value.startswith("/") and not value.startswith("//")
    if kind == "url" and local and not facts.serves(value):
        return f"{where}: no page serves {value!r}"
    return None


def value_kind(spec: ShortcodeSpec, key: str) -> str:
    """What an attribute's value names: action, product, field, tag, url, or "" (nothing)."""
    declared = {a.name: a.type for a in spec.attributes or ()}
    kind = declared.get(key)
    if kind is tag_name or (key in TAG_ATTRIBUTES and spec.enclosing):
        return "tag"
    if kind is url or key.endswith("_url"):
        return "url"
    return {"action_id": "action", "product": "product", "field": "field"}.get(key, "")


def _tag_items(value: str) -> list[str]:
    """The tag names of a tag list (``Gold, -Suspended``); numeric ids are the store's."""
    items = (item.strip().removeprefix("-").strip() for item in value.split(","))
    return [item for item in items if item and not item.isdigit()]


# -- the whole site --------------------------------------------------------------------------------


def check_site(site: SiteSettings, themes_dir: Path) -> list[Finding]:
    """Every problem of the theme and every page of a site's loaded settings."""
    try:
        env, theme = site_environment(site, themes_dir)
    except ThemeError as error:
        return [Finding(error.file, error.line or 1, 1, "error", error.reason)]
    pages = PageStore(site.pages_dir, env)
    facts = SiteFacts.of(site, theme, pages)
    found: list[Finding] = []
    for file in page_files(site.pages_dir):
        name = str(file)
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            found.append(Finding(name, 1, 1, "error", f"cannot read the page: {error}"))
            continue
        found.extend(check_page(env, facts, text, name))
    return found


def page_files(root: Path) -> list[Path]:
    """Every page file under ``root``, sorted."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.suffix in EXTENSIONS and p.is_file())


def site_schema(env: Environment, facts: SiteFacts) -> dict[str, Any]:
    """:func:`~shortcodes.reference.registry_schema` plus the values the site allows: each
    attribute that names an actionset, tag, product or credit field lists them (``values``)."""
    from shortcodes.reference import registry_schema

    schema = registry_schema(env)
    choices = {
        "action": sorted(facts.actionsets),
        "tag": sorted(facts.tags),
        "product": sorted(facts.products),
        "field": list(facts.credit_fields),
    }
    for name, entry in schema["shortcodes"].items():
        spec = env.shortcodes[name]
        # Declared attributes, and the well-known keys of shortcodes that take any attributes.
        keys = [a["name"] for a in entry["attributes"] or ()] or [
            "action_id", "product", "field", *TAG_ATTRIBUTES
        ]  # fmt: skip
        entry["values"] = {
            key: choices[kind] for key in keys if (kind := value_kind(spec, key)) in choices
        }
    schema["site"] = choices
    return schema
