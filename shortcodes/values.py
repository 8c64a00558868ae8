"""Value semantics shared by ``memb_if`` and the condition language: numbers versus text.

When both sides of a comparison read as numbers they compare as numbers (``"10" > "9"``,
``"007" == "7"``, ``"1e1" == "10"``); otherwise as text, case-insensitively by default. An
empty value is never a number, so an empty balance never passes ``>= 50``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

# PHP's is_numeric shape (surrounding whitespace, sign, decimals, exponent), ASCII digits only.
# The exponent is capped at 15 digits: larger ones exceed what Decimal can compare without
# raising, and no balance or field is written that way.
_NUMBER_RE = re.compile(
    r"\s*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,15})?\s*", re.ASCII
)

COMPARISON_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
"""The comparison operators of the condition language (``=`` is ``==``)."""


def as_number(text: str) -> Decimal | None:
    """``text`` as an exact number if it reads as one (``"007"``, ``"1e1"``, ``" 2.5"``), else None.

    An empty or blank value is never a number, so an empty balance never passes ``>= 50``.
    """
    if _NUMBER_RE.fullmatch(text) is None:
        return None
    return Decimal(text.strip())


def compare_values(left: str, op: str, right: str, *, case_insensitive: bool = True) -> bool:
    """Compare two values the way ``memb_if`` does.

    When both sides read as numbers (:func:`as_number`) they compare numerically, so
    ``"10" > "9"``, ``"007" == "7"`` and ``"1e1" == "10"``; otherwise they compare as text,
    case-insensitively unless ``case_insensitive`` is false. ``op`` is one of
    :data:`COMPARISON_OPERATORS`; any other raises ``ValueError``.
    """
    try:
        test = COMPARISON_OPERATORS[op]
    except KeyError:
        raise ValueError(f"unknown comparison operator {op!r}") from None
    left_num, right_num = as_number(left), as_number(right)
    if left_num is not None and right_num is not None:
        return bool(test(left_num, right_num))
    if case_insensitive:
        return bool(test(left.casefold(), right.casefold()))
    return bool(test(left, right))
