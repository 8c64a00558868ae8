"""The membership vocabulary: what a name, a tag, a field, an amount, a duration and a URL may be.

Every rule is defined here once and used by everything that accepts one: ``site.toml``
validation, the store, the webhooks and the CLI. So what the configuration accepts, the store
accepts. Each checker takes the raw value and returns it normalized, or raises ``ValueError``
with a sentence that says what was expected; the caller turns it into its own error (a
:class:`~shortcodes.errors.ConfigError` with file, line and key, or a store refusal).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

#: The largest credit amount one operation may move (and a balance may reach in one step).
MAX_AMOUNT = 10**12
#: The longest text a tag name, a title or a parameter value may be.
MAX_TEXT = 200
#: The longest duration a site may configure: ten years, in any unit.
MAX_DURATION = timedelta(days=3660)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_EMAIL = re.compile(r"[^@\s,;<>\"']+@[^@\s,;<>\"']+")
_DURATION = re.compile(r"\s*([0-9]{1,7})\s*(mo|s|m|h|d|w|y)\s*")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_STRIPE_PRICE = re.compile(r"[A-Za-z0-9_]{6,255}")
_DECIMAL = re.compile(r"-?[0-9]{1,16}(\.[0-9]{1,16})?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

#: Fields every contact has in its own row; they are not custom fields and cannot be set as one.
BUILTIN_FIELDS = frozenset({"email", "name"})


def accepts(check: Callable[[Any], object], value: Any) -> bool:
    """Whether ``check`` accepts ``value`` (for callers that only need a yes or no)."""
    try:
        check(value)
    except ValueError:
        return False
    return True


def name(value: Any, what: str = "a name") -> str:
    """An identifier of the site's own things (actionsets, rules, products): letters, digits,
    ``-``, ``_`` and ``.``, starting with a letter or digit, at most 100 characters."""
    if isinstance(value, str) and _NAME.fullmatch(value):
        return value
    raise ValueError(
        f"{what} uses letters, digits, '-', '_' and '.', starts with a letter or digit "
        f"and has at most 100 characters; got {value!r}"
    )


def tag_name(value: Any) -> str:
    """A tag name, trimmed: 1 to 200 characters, no comma, not starting with ``-``, not a number.

    Shortcode attributes list tags with commas, write ``-X`` for "lacks X", and name a tag by
    id when the text is a number, so none of those can be part of a name.
    """
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > MAX_TEXT or _CONTROL.search(text):
        raise ValueError(f"a tag name is 1 to {MAX_TEXT} printable characters, got {value!r}")
    if "," in text or text.startswith("-") or text.isdigit():
        raise ValueError(
            f"a tag name cannot contain a comma, start with '-' or be a number: {value!r}"
        )
    return text


def field_name(value: Any) -> str:
    """A field name: a letter or ``_`` then letters, digits and ``_``, at most 64 characters."""
    if isinstance(value, str) and _FIELD.fullmatch(value):
        return value
    raise ValueError(f"not a field name (letters, digits and '_', like '_Credits'): {value!r}")


def custom_field(value: Any, credit_fields: tuple[str, ...]) -> str:
    """A field that may be set directly: neither built into the contact nor a credit balance."""
    checked = field_name(value)
    folded = checked.casefold()
    if folded in BUILTIN_FIELDS:
        raise ValueError(f"field {checked!r} is part of the contact itself and cannot be set here")
    if folded in {f.casefold() for f in credit_fields}:
        raise ValueError(
            f"field {checked!r} is a credit balance: change it with credit/debit, never by setting it"
        )
    return checked


def credit_field(value: Any, credit_fields: tuple[str, ...]) -> str:
    """The declared spelling of a credit field named case-insensitively."""
    if isinstance(value, str):
        for declared in credit_fields:
            if declared.casefold() == value.strip().casefold():
                return declared
    known = ", ".join(credit_fields)
    raise ValueError(f"unknown credit field {value!r} (declared in [credits]: {known})")


def amount(value: Any, *, allow_zero: bool = True) -> int:
    """A whole number of credits from 0 (or 1) to :data:`MAX_AMOUNT`; a zero moves nothing."""
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_AMOUNT:
        raise ValueError(f"an amount is a whole number from {low} to {MAX_AMOUNT}, got {value!r}")
    return value


def credit_units(value: Any, decimals: int, *, allow_zero: bool = False) -> int:
    """An amount of a field with ``decimals`` decimals, as whole units (``2.5`` with two
    decimals is 250). Takes ints, Decimals, texts like ``"2.50"`` and TOML floats (read as the
    shortest decimal that prints them, i.e. as written); never rounds: ``2.555`` with two
    decimals is refused, like anything not positive (or zero when allowed) or above
    :data:`MAX_AMOUNT` credits."""
    exact = _exact_decimal(value)
    shown = str(value) if isinstance(value, Decimal) else value  # as typed, not Decimal('…')
    low = 0 if allow_zero else 1
    units = exact.scaleb(decimals) if exact is not None else None
    if units is None or units != units.to_integral_value() or not low <= units:
        places = "a whole number" if not decimals else f"a number with at most {decimals} decimals"
        sign = "from 0" if allow_zero else "above 0"
        raise ValueError(f"an amount is {places} {sign}, got {shown!r}")
    if units > MAX_AMOUNT * 10**decimals:
        raise ValueError(f"an amount is at most {MAX_AMOUNT}, got {shown!r}")
    return int(units)


def _exact_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        value = repr(value)
    if isinstance(value, Decimal | str):
        text_value = str(value).strip()
        if not _DECIMAL.fullmatch(text_value):
            return None
        return Decimal(text_value)
    return None


def from_units(units: int, decimals: int) -> int | Decimal:
    """Whole units back to the amount people read: an int for a field without decimals, else
    an exact Decimal with the field's places (250 with two decimals is ``Decimal("2.50")``)."""
    if not decimals:
        return units
    return Decimal(units).scaleb(-decimals)


def amount_text(value: Any, *, allow_zero: bool = True) -> int:
    """:func:`amount` for a value that arrives as text (a form, a CSV cell, an attribute)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return amount(value, allow_zero=allow_zero)
    text = value.strip() if isinstance(value, str) else ""
    if not (text.isascii() and text.isdigit()) or len(text) > 13:
        low = 0 if allow_zero else 1
        raise ValueError(f"an amount is a whole number from {low} to {MAX_AMOUNT}, got {value!r}")
    return amount(int(text), allow_zero=allow_zero)


def text(value: Any, what: str = "this", limit: int = 2000) -> str:
    """A non-empty text of at most ``limit`` characters."""
    if isinstance(value, str) and value.strip() and len(value) <= limit:
        return value
    raise ValueError(
        f"{what} must be a non-empty text of at most {limit} characters, got {value!r}"
    )


def http_url(value: Any) -> str:
    """An absolute ``http(s)://`` URL without spaces or control characters."""
    if (
        isinstance(value, str)
        and value.startswith(("https://", "http://"))
        and len(value) > len("https://")
        and not re.search(r"[\s\x00-\x1f\x7f]", value)
    ):
        return value
    raise ValueError(f"needs an absolute http(s) url, got {value!r}")


def site_path(value: Any) -> str:
    """A path on this site (``/credits``): starts with one ``/``, no scheme, no ``\\``, no
    spaces or control characters, so no browser reads it as another host."""
    if (
        isinstance(value, str)
        and value.startswith("/")
        and not value.startswith("//")
        and "\\" not in value
        and not re.search(r"[\s\x00-\x1f\x7f]", value)
    ):
        return value
    raise ValueError(f"needs a site path like '/credits', got {value!r}")


def url_or_path(value: Any) -> str:
    """An absolute http(s) URL or a path on this site (where a visitor may be sent)."""
    if isinstance(value, str) and value.startswith("/"):
        return site_path(value)
    try:
        return http_url(value)
    except ValueError:
        raise ValueError(
            f"needs an absolute http(s) url or a site path (/...), got {value!r}"
        ) from None


def canonical_email(value: Any) -> str:
    """The form emails are stored and compared in: trimmed, lower case. Checks nothing and never
    raises, so whatever a visitor typed can still be looked up or counted (the login throttle)."""
    return value.strip().lower() if isinstance(value, str) else ""


def email(value: Any) -> str:
    """The stored form of an email address (:func:`canonical_email`); refuses non-addresses."""
    found = canonical_email(value)
    if len(found) > 320 or not _EMAIL.fullmatch(found):
        raise ValueError(f"not a valid email address: {value!r}")
    return found


#: A new password's length: long enough to resist guessing, short enough that hashing it is cheap.
PASSWORD_LENGTH = (8, 320)


def password(value: Any) -> str:
    """A new password: 8 to 320 characters, no NUL (ValueError saying so otherwise)."""
    low, high = PASSWORD_LENGTH
    if not isinstance(value, str) or not low <= len(value) <= high or "\x00" in value:
        raise ValueError(f"a password has {low} to {high} characters")
    return value


@dataclass(frozen=True, slots=True)
class Duration:
    """A validated duration: fixed seconds, or calendar months (``4mo`` ends on the same day of
    the month, clamped to the month's last day)."""

    text: str
    seconds: int = 0
    months: int = 0

    def after(self, start: datetime) -> datetime:
        """The moment this long after ``start``."""
        if not self.months:
            return start + timedelta(seconds=self.seconds)
        index = start.month - 1 + self.months
        year, month = start.year + index // 12, index % 12 + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        return start.replace(year=year, month=month, day=day)

    def approximate(self) -> timedelta:
        """The duration as a timedelta (a month counted as 31 days): for limits and windows."""
        return timedelta(seconds=self.seconds, days=31 * self.months)

    def __str__(self) -> str:
        return self.text


def duration(value: Any) -> Duration:
    """``"90s"``, ``"30m"``, ``"24h"``, ``"14d"``, ``"2w"``, ``"4mo"``, ``"1y"`` (at most ten
    years) as a :class:`Duration`. ``m`` is minutes; ``mo`` is calendar months."""
    if isinstance(value, Duration):
        return value
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) == 0:
        raise ValueError(
            "a duration is a positive whole number and a unit s, m (minutes), h, d, w, "
            f"mo (months) or y, like '14d' or '4mo'; got {value!r}"
        )
    number, unit = int(match.group(1)), match.group(2)
    if unit in ("mo", "y"):
        found = Duration(value.strip(), months=number * (12 if unit == "y" else 1))
    else:
        found = Duration(value.strip(), seconds=number * _SECONDS[unit])
    if found.approximate() > MAX_DURATION:
        raise ValueError(f"the duration {value!r} is longer than ten years")
    return found


#: What :func:`delay_or_now` answers for "now": no wait at all.
NOW: Literal["now"] = "now"


def delay_or_now(value: Any) -> Duration | Literal["now"]:
    """A wait before something takes effect: ``"now"`` (none) or a duration like ``"14d"``."""
    if isinstance(value, str) and value.strip().lower() == NOW:
        return NOW
    try:
        return duration(value)
    except ValueError:
        raise ValueError(f"write 'now' or a duration like '14d'; got {value!r}") from None


def flag(value: Any) -> bool:
    """A TOML boolean (``true``/``false``), never a text or a number that looks like one."""
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def stripe_price(value: Any) -> str:
    """A Stripe price id (``price_…``; a legacy plan id ``plan_…`` is accepted too)."""
    if (
        isinstance(value, str)
        and _STRIPE_PRICE.fullmatch(value)
        and value.startswith(("price_", "plan_"))
    ):
        return value
    raise ValueError(f"a Stripe price id looks like 'price_1AbC…', got {value!r}")


def whole_number(value: Any, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high`` (not a boolean)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"must be a whole number from {low} to {high}, got {value!r}")
    return value
