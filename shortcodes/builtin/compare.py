"""Builtins, the comparison gate: ``memb_if`` (twin ``memb_compare``).

It compares ``value1`` with ``value2`` by ``test``, or evaluates a ``condition``.

Operators (any case; HTML-encoded ``&gt;`` and ``&lt;`` as editors write them are accepted):
``= == eq``, ``!= ne``, ``> gt``, ``< lt``, ``>= ge``, ``<= le``, ``bw`` (begins with), ``ew``
(ends with), ``contains``, ``in``/``!in`` (value2 is a comma list), ``range``/``!range`` (value2
is ``min,max``, inclusive). When both sides read as numbers they compare as numbers (``"10" >
"9"``, ``"007" = "7"``, ``"1e1" = "10"``); otherwise as text, case-insensitively unless
``caseinsensitive="no"``. An empty value is never a number.

``condition="..."`` is the safe expression language of :mod:`shortcodes.conditions`; it is
compiled once per distinct attribute text (errors included) and never holds ``{{variables}}``
or shortcodes, because substituted contact data must not change an expression's structure.
"""

from __future__ import annotations

import html
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from shortcodes.conditions import Condition, compare_values, compile_condition
from shortcodes.context import Context
from shortcodes.errors import ConditionSyntaxError, GateError
from shortcodes.nodes import ShortcodeNode
from shortcodes.parser import AttrItem
from shortcodes.registry import Attribute
from shortcodes.runtime import Shortcode

from .common import Report, given_attrs, is_dynamic, raw_index, static_value, text_of, value_offset
from .gates import NOT, register_gate

if TYPE_CHECKING:
    from shortcodes.environment import Environment

#: Every spelling of an operator, mapped to its canonical form.
OPERATORS: Final[dict[str, str]] = {
    "=": "=",
    "==": "=",
    "eq": "=",
    "!=": "!=",
    "ne": "!=",
    ">": ">",
    "gt": ">",
    "<": "<",
    "lt": "<",
    ">=": ">=",
    "ge": ">=",
    "<=": "<=",
    "le": "<=",
    "bw": "bw",
    "ew": "ew",
    "contains": "contains",
    "in": "in",
    "!in": "!in",
    "range": "range",
    "!range": "!range",
}
_SPELLINGS: Final = " ".join(OPERATORS)


def operator(test: str) -> str:
    """The canonical operator for ``test`` (``"GT"``, ``"&gt;"`` ...); GateError if unknown."""
    key = html.unescape(test).strip().lower()
    try:
        return OPERATORS[key]
    except KeyError:
        raise GateError(f"unknown test {test!r}; the tests are: {_SPELLINGS}") from None


def _range(value2: str) -> tuple[str, str]:
    parts = value2.split(",")
    if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
        raise GateError(f'range needs value2="min,max", got {value2!r}')
    return parts[0].strip(), parts[1].strip()


def _text_test(left: str, op: str, right: str, fold: bool) -> bool:
    if fold:
        left, right = left.casefold(), right.casefold()
    if op == "bw":
        return left.startswith(right)
    if op == "ew":
        return left.endswith(right)
    return right in left


def compare(value1: str, op: str, value2: str, case_insensitive: bool = True) -> bool:
    """Apply canonical operator ``op`` to two values with ``memb_if`` semantics."""
    if op in ("bw", "ew", "contains"):
        return _text_test(value1, op, value2, case_insensitive)
    if op in ("in", "!in"):
        found = any(
            compare_values(value1, "=", item.strip(), case_insensitive=case_insensitive)
            for item in value2.split(",")
        )
        return found if op == "in" else not found
    if op in ("range", "!range"):
        low, high = _range(value2)
        inside = compare_values(value1, ">=", low, case_insensitive=case_insensitive) and (
            compare_values(value1, "<=", high, case_insensitive=case_insensitive)
        )
        return inside if op == "range" else not inside
    return compare_values(value1, op, value2, case_insensitive=case_insensitive)


class ConditionCache:
    """Compiled conditions (and their errors) by attribute text, bounded; one per environment."""

    def __init__(self, size: int = 2048) -> None:
        self.size = size
        self._items: OrderedDict[str, Condition | ConditionSyntaxError] = OrderedDict()

    def get(self, text: str) -> Condition:
        """The compiled condition; raises GateError (cached too) when it does not compile."""
        found = self._items.get(text)
        if found is None:
            try:
                found = compile_condition(text)
            except ConditionSyntaxError as error:
                found = error
            self._items[text] = found
            if len(self._items) > self.size:
                self._items.popitem(last=False)
        if isinstance(found, ConditionSyntaxError):
            raise GateError(f"condition: {found}")
        return found


def make_test(cache: ConditionCache) -> Callable[[Shortcode, Context], bool]:
    """The ``memb_if`` test bound to an environment's condition cache."""

    def memb_if(sc: Shortcode, ctx: Context) -> bool:
        """Compares value1 with value2 (or evaluates a condition) for the current contact."""
        attrs = sc.attrs
        if "condition" in attrs:
            if is_dynamic(sc, "condition"):
                raise GateError(
                    "a condition cannot hold {{variables}} or shortcodes; "
                    "use field('Name') or credits('_Credits') inside it"
                )
            return cache.get(text_of(attrs["condition"])).evaluate(ctx)
        op = operator(text_of(attrs.get("test", "=")))
        fold = bool(attrs.get("caseinsensitive", True))
        return compare(text_of(attrs.get("value1")), op, text_of(attrs.get("value2")), fold)

    return memb_if


# -- lint -----------------------------------------------------------------------------------------


def check_memb_if(node: ShortcodeNode, report: Report) -> None:
    """Lint: unknown tests, malformed ranges, conditions that do not compile (at their column)."""
    given = given_attrs(node)
    if "condition" in given:
        _check_condition(node, *given["condition"], report)
        for key in ("value1", "test", "value2"):
            if key in given:
                item = given[key][1]
                report(
                    node.body_offset + item.offset,
                    len(item.source),
                    f"[{node.name}]: {key} is ignored because condition is given",
                    "warning",
                )
        return
    if "value1" not in given:
        report(
            node.offset,
            len(node.name) + 1,
            f"[{node.name}] has no value1 (or condition); it compares an empty value",
            "warning",
        )
    op = "="
    if "test" in given:
        value, item = given["test"]
        if not static_value(value):
            return
        try:
            op = operator(value)
        except GateError as error:
            report(
                value_offset(node, item), max(1, len(item.raw)), f"[{node.name}]: {error}", "error"
            )
            return
    if op in ("range", "!range") and "value2" in given:
        value, item = given["value2"]
        if static_value(value):
            try:
                _range(value)
            except GateError as error:
                report(
                    value_offset(node, item),
                    max(1, len(item.raw)),
                    f"[{node.name}]: {error}",
                    "error",
                )


def _check_condition(node: ShortcodeNode, value: str, item: AttrItem, report: Report) -> None:
    start = value_offset(node, item)
    if not static_value(value):
        report(
            start,
            max(1, len(item.raw)),
            f"[{node.name}]: a condition cannot hold {{{{variables}}}} or shortcodes; "
            "use field('Name') or credits('_Credits') inside it",
            "error",
        )
        return
    try:
        compile_condition(value)
    except ConditionSyntaxError as error:
        at = start + raw_index(item.raw, min(error.offset, len(value)))
        report(at, 1, f"[{node.name}] condition, column {error.column}: {error.message}", "error")


def register(env: Environment) -> None:
    """Register ``memb_if``, ``memb_compare`` and their numbered aliases."""
    attributes = [
        Attribute(
            "value1",
            str,
            doc="the first value; `{{contact.Field}}` and nested "
            "shortcodes in quotes are evaluated",
        ),
        Attribute(
            "test",
            str,
            default="=",
            doc="the operator: = != > < >= <= (or eq ne gt lt "
            "ge le), bw, ew, contains, in, !in, range, !range",
        ),
        Attribute("value2", str, doc="the second value (a comma list for in, `min,max` for range)"),
        Attribute("caseinsensitive", bool, default=True, doc="compare text ignoring case"),
        Attribute(
            "condition",
            str,
            doc="instead of value1/test/value2: an expression such as "
            "`credits('_Credits') >= 50 and not has_tag('Owns Course B')`",
        ),
        NOT,
    ]
    register_gate(
        env,
        "memb_if",
        make_test(ConditionCache()),
        attributes=attributes,
        check=check_memb_if,
        aliases=["memb_compare"],
        description="Compares two values (numbers as numbers, text ignoring case) or evaluates "
        "a condition, and shows the pass or the else branch.",
        example='[memb_if value1="{{contact._Credits}}" test=">=" value2="50"]You can buy it'
        "[else_memb_if]Buy more credits[/memb_if]",
    )
