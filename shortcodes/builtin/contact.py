"""Builtins, contact data: ``memb_contact`` prints fields of the current contact, always escaped.

``fields`` is a comma list (names are case-insensitive; credit balances are fields too; ``id``
and ``email`` read the contact's own id and address unless a field has that name). A field that
does not exist prints ``default``; an existing empty field prints nothing. Values are joined with
``separator`` (a space). ``date_format`` formats date values with PHP ``date()`` letters, as
Memberium pages are written (``F j, Y``), or with ``strftime`` when it contains ``%``.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Final

from shortcodes.context import Contact, Context
from shortcodes.nodes import ShortcodeNode
from shortcodes.registry import Attribute
from shortcodes.runtime import Shortcode

from .common import Report, given_attrs, split_list, static_value, text_of, value_offset

if TYPE_CHECKING:
    from shortcodes.environment import Environment

_MISSING: Final = object()

# Dates as CRMs store them: ISO (2024-03-05, 2024-03-05 14:30:00, 2024-03-05T14:30:00) and
# Infusionsoft's compact form (20240305T14:30:00).
_DATE_RE: Final = re.compile(
    r"(\d{4})-?(\d{2})-?(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?"
    r"(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?"
)


def read_field(contact: Contact | None, name: str) -> Any:
    """The value of field ``name`` for ``contact``, or the ``_MISSING`` sentinel."""
    if contact is None:
        return _MISSING
    if contact.has_field(name):
        return contact.field(name)
    lowered = name.casefold()
    if lowered in ("id", "contactid"):
        return contact.id
    if lowered == "email":
        return contact.email
    return _MISSING


def as_datetime(value: Any) -> datetime | None:
    """A date or datetime value, or text that reads as one; None otherwise."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if not isinstance(value, str):
        return None
    m = _DATE_RE.fullmatch(value.strip())
    if m is None:
        return None
    parts = [int(p) if p else 0 for p in m.groups()]
    try:
        return datetime(*parts)  # type: ignore[arg-type]
    except ValueError:
        return None


def _suffix(day: int) -> str:
    if 11 <= day % 100 <= 13:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


_PHP: Final[dict[str, Any]] = {
    "d": lambda d: f"{d.day:02d}",
    "j": lambda d: str(d.day),
    "D": lambda d: d.strftime("%a"),
    "l": lambda d: d.strftime("%A"),
    "N": lambda d: str(d.isoweekday()),
    "w": lambda d: str(d.isoweekday() % 7),
    "S": lambda d: _suffix(d.day),
    "z": lambda d: str(d.timetuple().tm_yday - 1),
    "F": lambda d: d.strftime("%B"),
    "M": lambda d: d.strftime("%b"),
    "m": lambda d: f"{d.month:02d}",
    "n": lambda d: str(d.month),
    "Y": lambda d: str(d.year),
    "y": lambda d: f"{d.year % 100:02d}",
    "a": lambda d: "am" if d.hour < 12 else "pm",
    "A": lambda d: "AM" if d.hour < 12 else "PM",
    "g": lambda d: str(d.hour % 12 or 12),
    "G": lambda d: str(d.hour),
    "h": lambda d: f"{d.hour % 12 or 12:02d}",
    "H": lambda d: f"{d.hour:02d}",
    "i": lambda d: f"{d.minute:02d}",
    "s": lambda d: f"{d.second:02d}",
    "c": lambda d: d.isoformat(),
    "U": lambda d: str(int(d.timestamp())),
}


def format_date(value: datetime, fmt: str) -> str:
    """Format with PHP ``date()`` letters (backslash escapes a letter), or strftime with ``%``."""
    if "%" in fmt:
        return value.strftime(fmt)
    out: list[str] = []
    chars = iter(fmt)
    for char in chars:
        if char == "\\":
            out.append(next(chars, ""))
        elif char in _PHP:
            out.append(_PHP[char](value))
        else:
            out.append(char)
    return "".join(out)


def show(value: Any, date_format: str) -> str:
    """A field value as text (None is empty; dates formatted when a format is given)."""
    if value is None:
        return ""
    if date_format:
        moment = as_datetime(value)
        if moment is not None:
            return format_date(moment, date_format)
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    return str(value)


def memb_contact(sc: Shortcode, ctx: Context) -> str:
    """Prints fields of the current contact (escaped); a missing field prints `default`."""
    attrs = sc.attrs
    default = text_of(attrs.get("default", ""))
    date_format = text_of(attrs.get("date_format", ""))
    out: list[str] = []
    for name in split_list(text_of(attrs.get("fields", ""))):
        value = read_field(ctx.contact, name)
        out.append(default if value is _MISSING else show(value, date_format))
    # A plain str: the engine escapes it, so contact data never reaches the page as HTML.
    return text_of(attrs.get("separator", " ")).join(out)


def check_contact(node: ShortcodeNode, report: Report) -> None:
    """Lint: ``fields`` must name at least one field."""
    given = given_attrs(node)
    if "fields" not in given:
        report(node.offset, len(node.name) + 1, f'[{node.name}] needs fields="FirstName"', "error")
        return
    value, item = given["fields"]
    if static_value(value) and not list(split_list(value)):
        report(value_offset(node, item), 1, f"[{node.name}]: fields names no field", "error")


def register(env: Environment) -> None:
    """Register ``memb_contact``."""
    env.add_shortcode(
        "memb_contact",
        memb_contact,
        check=check_contact,
        attributes=[
            Attribute(
                "fields",
                str,
                doc="comma list of field names (credit balances are "
                "fields; `id` and `email` read the contact's own)",
            ),
            Attribute("default", str, default="", doc="printed for a field that does not exist"),
            Attribute("separator", str, default=" ", doc="between the fields"),
            Attribute(
                "date_format",
                str,
                default="",
                doc="PHP date() letters such as `F j, Y`, or strftime with `%`",
            ),
        ],
        description="Prints fields of the current contact, HTML-escaped.",
        example='Hello [memb_contact fields="FirstName" default="friend"], you have '
        '[memb_contact fields="_Credits" default="0"] credits.',
    )
