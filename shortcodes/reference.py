"""Reference stage: the shortcode reference, generated from an environment's registry as Markdown.

Every registered shortcode gets a section: its description, whether it encloses content (and
its else markers), its attributes (name, type, required, default, meaning) and an example.
Aliases (``memb_if1`` ... ``memb_if9``, ``memb_compare``) are listed under the shortcode they
alias instead of repeating it. Theme shortcodes name the theme and file they come from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

from shortcodes.builtin.common import tag_name, url
from shortcodes.registry import Attribute, ShortcodeSpec, as_bool

if TYPE_CHECKING:
    from shortcodes.environment import Environment

_TYPE_NAMES: Final[dict[Callable[..., Any], str]] = {
    str: "text",
    int: "whole number",
    float: "number",
    bool: "yes/no",
    as_bool: "yes/no",
    url: "link (path or http/https/mailto/tel URL)",
}


def type_name(kind: Callable[..., Any]) -> str:
    """A reader's name for an attribute type."""
    return _TYPE_NAMES.get(kind, getattr(kind, "__name__", "value"))


def _cell(text: Any) -> str:
    # A pipe would end a Markdown table cell; a newline would end the row.
    return str(text).replace("|", "\\|").replace("\n", " ")


def _default(attr: Attribute) -> str:
    if attr.required:
        return "required"
    if attr.default is None or attr.default == "":
        return ""
    if isinstance(attr.default, str) and not attr.default.strip():
        return "a space" if attr.default == " " else repr(attr.default)
    if isinstance(attr.default, bool):
        return "yes" if attr.default else "no"
    return f"`{attr.default}`"


def attribute_table(attributes: Iterable[Attribute]) -> list[str]:
    """The Markdown table of declared attributes."""
    lines = ["| attribute | type | default | meaning |", "|---|---|---|---|"]
    for attr in attributes:
        lines.append(
            f"| `{attr.name}` | {_cell(type_name(attr.type))} | {_cell(_default(attr))} "
            f"| {_cell(attr.doc)} |"
        )
    return lines


def _fence(example: str) -> list[str]:
    return ["```", example, "```"]


def section(spec: ShortcodeSpec, aliases: list[str]) -> list[str]:
    """The Markdown section of one shortcode (and the names that alias it)."""
    lines = [f"### `{spec.name}`", ""]
    if spec.description:
        lines += [spec.description, ""]
    if aliases:
        lines += ["Also: " + ", ".join(f"`{a}`" for a in aliases) + ".", ""]
    if spec.enclosing:
        markers = ", ".join(f"`[{m}]`" for m in spec.else_markers)
        lines += [
            "Encloses content (unclosed, it hides the rest of its parent)."
            + (f" Else markers: {markers}." if markers else ""),
            "",
        ]
    if "theme" in spec.extra:
        lines += [f"From theme `{spec.extra['theme']}` (`{spec.extra.get('source', '')}`).", ""]
    attributes = spec.attributes
    if attributes is None:
        attributes = spec.extra.get("documented_attributes")
        if attributes is not None:
            lines += ["Any other named attribute is passed on as a parameter.", ""]
    if attributes:
        lines += [*attribute_table(attributes), ""]
    elif attributes is None:
        lines += ["Takes any attributes.", ""]
    if spec.example:
        lines += ["Example:", "", *_fence(spec.example), ""]
    return lines


def reference(env: Environment, title: str = "Shortcode reference") -> str:
    """The whole reference for ``env``: builtins first, then theme and other shortcodes."""
    aliases: dict[str, list[str]] = {}
    for name, spec in env.shortcodes.items():
        base = spec.extra.get("alias_of")
        if base in env.shortcodes:
            aliases.setdefault(base, []).append(name)
    main = [
        s
        for n, s in sorted(env.shortcodes.items())
        if s.extra.get("alias_of") not in env.shortcodes
    ]
    groups = {
        "Builtins": [s for s in main if _is_builtin(s)],
        "Theme shortcodes": [s for s in main if "theme" in s.extra],
        "Other shortcodes": [s for s in main if not _is_builtin(s) and "theme" not in s.extra],
    }
    lines = [f"# {title}", "", "Generated from the registry by `python -m shortcodes docs`.", ""]
    for heading, specs in groups.items():
        if specs:
            lines += [f"## {heading}", ""]
            for spec in specs:
                lines += section(spec, aliases.get(spec.name, []))
    return "\n".join(lines).rstrip() + "\n"


def _is_builtin(spec: ShortcodeSpec) -> bool:
    module = getattr(spec.handler, "__module__", "") or ""
    return module.startswith("shortcodes.builtin")


_TYPE_IDS: Final[dict[Callable[..., Any], str]] = {
    str: "str",
    int: "int",
    float: "float",
    bool: "bool",
    as_bool: "bool",
    url: "url",
    tag_name: "tag",
}


def registry_schema(env: Environment) -> dict[str, Any]:
    """The registry as JSON-ready data for editors: every name with its attributes and types.

    ``attributes`` is None for a shortcode that takes any attributes. Types are ``str``,
    ``int``, ``float``, ``bool``, ``url``, ``tag`` or the converter's name.
    """
    shortcodes = {}
    for name in sorted(env.shortcodes):
        spec = env.shortcodes[name]
        attributes = None
        if spec.attributes is not None:
            attributes = [
                {
                    "name": a.name,
                    "type": _TYPE_IDS.get(a.type, getattr(a.type, "__name__", "value")),
                    "required": a.required,
                    "default": None if a.default is None else str(a.default),
                    "doc": a.doc,
                }
                for a in spec.attributes
            ]
        shortcodes[name] = {
            "enclosing": spec.enclosing,
            "description": spec.description,
            "example": spec.example,
            "else_markers": list(spec.else_markers),
            "attributes": attributes,
            "source": spec.extra.get("source"),
        }
    return {"shortcodes": shortcodes}
