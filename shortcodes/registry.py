"""What the environment knows about each registered shortcode, and which names are valid."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from markupsafe import Markup

if TYPE_CHECKING:
    from shortcodes.context import Context
    from shortcodes.runtime import Shortcode

Handler = Callable[["Shortcode", "Context"], "str | Markup"]

# Names may contain anything but these (and whitespace / control characters), per spec/syntax.md.
_BAD_NAME_CHAR: Final = re.compile(r"[<>&/\[\]=\s\x00-\x1f\x7f]")


def validate_name(name: str) -> str:
    """Return ``name`` if it can be a shortcode name; raise ValueError naming the bad character."""
    if not isinstance(name, str) or not name:
        raise ValueError("a shortcode name must be a non-empty string")
    bad = _BAD_NAME_CHAR.search(name)
    if bad:
        raise ValueError(
            f"invalid shortcode name {name!r}: {bad.group()!r} at position {bad.start()} is not "
            "allowed (names may not contain < > & / [ ] =, whitespace or control characters)"
        )
    return name


@dataclass(frozen=True, slots=True)
class Attribute:
    """A declared attribute of a shortcode: checked by lint and converted before the handler runs.

    ``type`` converts the text value (``int``, ``float``, ``bool`` or any callable that raises
    ValueError on bad input); ``required`` attributes must be given; ``default`` fills a missing one.
    """

    name: str
    type: Callable[[str], Any] = str
    required: bool = False
    default: Any = None
    doc: str = ""


_TRUE: Final = frozenset({"1", "yes", "true", "on", "y"})
_FALSE: Final = frozenset({"0", "no", "false", "off", "n", ""})


def as_bool(value: str) -> bool:
    """Read yes/no, true/false, on/off, 1/0 (any case); anything else is a ValueError."""
    lowered = str(value).strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{value!r} is not yes or no")


def convert(attr: Attribute, value: Any) -> Any:
    """Convert an attribute's text to its declared type, with a message an author understands."""
    kind = as_bool if attr.type is bool else attr.type
    if kind is str:
        return value
    try:
        return kind(str(value).strip())
    except (ValueError, TypeError) as error:
        type_name = getattr(attr.type, "__name__", "value")
        expected = {"int": "a whole number", "float": "a number", "bool": "yes or no"}
        raise ValueError(
            f"attribute {attr.name}={str(value)!r} is not {expected.get(type_name, type_name)}"
        ) from error


@dataclass(frozen=True, slots=True)
class ShortcodeSpec:
    """A registered shortcode: its handler and how the parser and lint should treat it."""

    name: str
    handler: Handler
    enclosing: bool = False
    #: Declared attributes; None means the shortcode accepts any attributes.
    attributes: tuple[Attribute, ...] | None = None
    #: Lower-cased else markers (``else``, ``else_memb_if`` ...) that split the content in two.
    else_markers: tuple[str, ...] = ()
    description: str = ""
    example: str = ""
    #: Extra lint checks for this shortcode: ``check(node, report)`` (see ``shortcodes.lint``).
    check: Callable[[Any, Callable[[int, int, str, str], None]], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: What visitors see when the shortcode fails (a gate: its fail branch); None is nothing.
    fallback: Callable[[Shortcode], str | Markup] | None = None
    #: For the stand-in of a typo pair (``shortcodes.typos``): the enclosing name it misspells.
    typo_of: str = ""
