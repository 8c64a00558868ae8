"""Condition stage: compile ``[memb_if condition="..."]`` text to an immutable AST and evaluate it.

The language is one boolean expression over the current contact, parsed by the small LALR grammar
in ``conditions.lark`` (package data, loaded once per process)::

    credits('_Credits') >= 50 and not has_tag('Owns Course B')
    has_any_tag('Gold', 'Silver') or field('Country') == "NZ"
    (logged_in() and credits() < 10) or has_all_tags(12, 'VIP')

* ``and``, ``or``, ``not`` (case-insensitive) and parentheses. Precedence, loosest first:
  ``or``, ``and``, ``not``, comparison -- as in Python and SQL, so ``not credits() >= 50`` reads
  ``not (credits() >= 50)``. Comparisons do not chain (``1 < x < 5`` is an error; use ``and``).
* Comparisons ``== = != < <= > >=`` follow ``memb_if``: see :func:`compare_values`.
* Values: numbers (``50``, ``-2``, ``1.5``), single- or double-quoted text (a backslash escapes
  the next character), ``true``/``false``, and the functions below.
* Functions (names case-insensitive; checked with their argument counts at compile time):
  ``has_tag(x)``, ``has_any_tag(x, ...)``, ``has_all_tags(x, ...)`` -- a tag by id or name
  (a comma list inside one argument is split, as in Memberium's ``tagid``);
  ``field('Name')`` -- the field as text, empty when missing;
  ``credits('_Credits')`` -- the integer balance as text, empty when the contact has none
  (the argument defaults to ``_Credits``); ``logged_in()``.
* ``and``/``or``/``not`` and the whole condition take conditions (comparisons, tag tests,
  ``logged_in()``, ``true``/``false``). A bare value such as ``field('Nickname')`` is a compile
  error that asks for a comparison, because its truthiness would be a guess.

Anonymous visitors (``ctx.contact is None``): tag tests and ``logged_in()`` are false,
``field()`` and ``credits()`` are empty. An empty value is never a number, so ``credits() >= 0``
is false for them, ``credits() == ''`` is true, and ``credits() < 50`` is true (text order puts
the empty text first) -- the same answers ``memb_if`` gives for an empty balance.

Compiling never evaluates anything and evaluation never calls ``eval``; evaluation cannot raise.
Every syntax problem raises :class:`ConditionSyntaxError` with a 1-based column inside the
condition text; reading the text, and translating Lark's exceptions, is
:mod:`shortcodes.condition_syntax`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar, Literal, TypeAlias

from lark import Token, Tree

from shortcodes.condition_syntax import (
    FUNCTION_NAMES,
    clip,
    parse_condition,
    unknown_function_message,
)
from shortcodes.context import Contact, Context
from shortcodes.errors import ConditionSyntaxError
from shortcodes.values import COMPARISON_OPERATORS, as_number, compare_values

__all__ = [
    "COMPARISON_OPERATORS",
    "MAX_CONDITION_LENGTH",
    "MAX_NESTING",
    "Condition",
    "as_number",
    "compare_values",
    "compile_condition",
]

MAX_CONDITION_LENGTH = 2000
"""Longest condition text accepted; an attribute longer than this is a mistake, not a test."""

MAX_NESTING = 32
"""Deepest nesting of and/or/not/comparison nodes accepted (parentheses alone do not count);
keeps compilation and evaluation far from Python's recursion limit."""

Value: TypeAlias = str | bool
"""What an expression evaluates to: text (numbers are numeric text) or a truth value."""


def _text(value: object) -> str:
    """A field value as the text conditions compare (None, a missing field, is empty)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _truth(value: Value) -> bool:
    # Compilation guarantees boolean operands; this fallback only keeps evaluation total.
    return value if isinstance(value, bool) else value != ""


# --- the AST -----------------------------------------------------------------------------------
# Every node is a frozen, slotted dataclass carrying its span (0-based ``start``/``end`` offsets
# in the condition text) and evaluating itself against a contact (None = anonymous).


@dataclass(frozen=True, slots=True)
class Text:
    """A number or quoted-text literal; its value is its text (numbers stay numeric text)."""

    start: int
    end: int
    text: str
    is_condition: ClassVar[bool] = False

    def value(self, contact: Contact | None) -> Value:
        """The literal's text."""
        return self.text


@dataclass(frozen=True, slots=True)
class Truth:
    """``true`` or ``false``."""

    start: int
    end: int
    truth: bool
    is_condition: ClassVar[bool] = True

    def value(self, contact: Contact | None) -> Value:
        """The literal's truth value."""
        return self.truth


@dataclass(frozen=True, slots=True)
class TagTest:
    """``has_tag``/``has_any_tag``/``has_all_tags``: tag ids or names, case-insensitive."""

    start: int
    end: int
    refs: tuple[str, ...]
    mode: Literal["any", "all"]
    is_condition: ClassVar[bool] = True

    def value(self, contact: Contact | None) -> Value:
        """Whether the contact holds any (or all) of the tags; never for an anonymous visitor."""
        if contact is None:
            return False
        held = (contact.has_tag(ref) for ref in self.refs)
        return all(held) if self.mode == "all" else any(held)


@dataclass(frozen=True, slots=True)
class FieldValue:
    """``field('Name')``: the contact's field as text; empty when missing or anonymous."""

    start: int
    end: int
    name: str
    is_condition: ClassVar[bool] = False

    def value(self, contact: Contact | None) -> Value:
        """The field's text."""
        return "" if contact is None else _text(contact.field(self.name))


@dataclass(frozen=True, slots=True)
class Credits:
    """``credits('_Credits')``: the integer balance as text; empty when there is none."""

    start: int
    end: int
    name: str
    is_condition: ClassVar[bool] = False

    def value(self, contact: Contact | None) -> Value:
        """The balance's text, or empty (which no numeric test passes)."""
        if contact is None:
            return ""
        try:
            balance = contact.balance(self.name)
        except ValueError:
            # Contact.balance lets int() fail on digit-like text it does not guard against
            # ("²", "--5", more than 4300 digits); such a field is no balance, and a render
            # must not fail over it.
            return ""
        return "" if balance is None else str(balance)


@dataclass(frozen=True, slots=True)
class LoggedIn:
    """``logged_in()``: a contact is logged in."""

    start: int
    end: int
    is_condition: ClassVar[bool] = True

    def value(self, contact: Contact | None) -> Value:
        """True for a contact, false for an anonymous visitor."""
        return contact is not None


@dataclass(frozen=True, slots=True)
class Compare:
    """``left OP right`` with :func:`compare_values` semantics (true/false compare as text)."""

    start: int
    end: int
    left: Expr
    op: str
    right: Expr
    is_condition: ClassVar[bool] = True

    def value(self, contact: Contact | None) -> Value:
        """The comparison's outcome."""
        left, right = self.left.value(contact), self.right.value(contact)
        return compare_values(_text(left), self.op, _text(right))


@dataclass(frozen=True, slots=True)
class Not:
    """``not operand``."""

    start: int
    end: int
    operand: Expr
    is_condition: ClassVar[bool] = True

    def value(self, contact: Contact | None) -> Value:
        """The negated operand."""
        return not _truth(self.operand.value(contact))


@dataclass(frozen=True, slots=True)
class And:
    """``a and b and ...`` (short-circuit, left to right)."""

    start: int
    end: int
    operands: tuple[Expr, ...]
    is_condition: ClassVar[bool] = True

    def value(self, contact: Contact | None) -> Value:
        """True when every operand is."""
        return all(_truth(op.value(contact)) for op in self.operands)


@dataclass(frozen=True, slots=True)
class Or:
    """``a or b or ...`` (short-circuit, left to right)."""

    start: int
    end: int
    operands: tuple[Expr, ...]
    is_condition: ClassVar[bool] = True

    def value(self, contact: Contact | None) -> Value:
        """True when any operand is."""
        return any(_truth(op.value(contact)) for op in self.operands)


Expr: TypeAlias = (
    Text | Truth | TagTest | FieldValue | Credits | LoggedIn | Compare | Not | And | Or
)
"""Any node of a compiled condition."""


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled condition: the source text and its AST root. Immutable and shareable."""

    source: str
    root: Expr

    def evaluate(self, ctx: Context | None) -> bool:
        """Whether the condition holds for ``ctx.contact`` (None or no contact: anonymous)."""
        contact = None if ctx is None else ctx.contact
        return _truth(self.root.value(contact))


@lru_cache(maxsize=1024)
def compile_condition(text: str) -> Condition:
    """Compile condition text to a :class:`Condition`; raise :class:`ConditionSyntaxError`.

    Results are memoised (they are immutable), so compiling the same attribute on every render
    costs a dictionary lookup.
    """
    if len(text) > MAX_CONDITION_LENGTH:
        raise ConditionSyntaxError(
            f"condition is too long ({len(text)} characters; the limit is {MAX_CONDITION_LENGTH})",
            MAX_CONDITION_LENGTH + 1,
            text,
        )
    tree = parse_condition(text)
    return Condition(text, _Builder(text).condition(tree, 0))


# --- building the AST --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Function:
    min_args: int
    max_args: int | None
    build: Callable[[int, int, list[str]], Expr]


def _tags(mode: Literal["any", "all"]) -> Callable[[int, int, list[str]], Expr]:
    def build(start: int, end: int, args: list[str]) -> Expr:
        return TagTest(start, end, tuple(args), mode)

    return build


_FUNCTIONS: dict[str, _Function] = {
    "has_tag": _Function(1, 1, _tags("any")),
    "has_any_tag": _Function(1, None, _tags("any")),
    "has_all_tags": _Function(1, None, _tags("all")),
    "field": _Function(1, 1, lambda s, e, a: FieldValue(s, e, a[0])),
    "credits": _Function(0, 1, lambda s, e, a: Credits(s, e, a[0] if a else "_Credits")),
    "logged_in": _Function(0, 0, lambda s, e, a: LoggedIn(s, e)),
}
assert tuple(_FUNCTIONS) == FUNCTION_NAMES, (
    "condition_syntax names the functions this module builds"
)
_TAG_FUNCTIONS = frozenset({"has_tag", "has_any_tag", "has_all_tags"})


def _unquote(token: Token) -> str:
    if token.type == "STRING":
        return re.sub(r"\\(.)", r"\1", token.value[1:-1], flags=re.DOTALL)
    return str(token.value)


def _span(node: Tree[Token] | Token) -> tuple[int, int]:
    if isinstance(node, Token):
        return node.start_pos or 0, node.end_pos or 0
    return node.meta.start_pos, node.meta.end_pos


class _Builder:
    """Turns the Lark tree into AST nodes, checking what the grammar cannot (calls, value kinds)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def fail(self, message: str, offset: int) -> ConditionSyntaxError:
        return ConditionSyntaxError(message, offset + 1, self.text)

    def condition(self, node: Tree[Token] | Token, depth: int) -> Expr:
        """A node that must be a condition (whole text, operands of and/or/not)."""
        expr = self.expr(node, depth)
        if not expr.is_condition:
            snippet = clip(self.text[expr.start : expr.end], 40)
            raise self.fail(
                f"{snippet} is a value, not a condition: compare it, e.g. {snippet} != ''",
                expr.start,
            )
        return expr

    def expr(self, node: Tree[Token] | Token, depth: int) -> Expr:
        start, end = _span(node)
        if depth > MAX_NESTING:
            raise self.fail(
                f"condition is nested too deeply (more than {MAX_NESTING} levels)", start
            )
        if isinstance(node, Token):
            return self.literal(node, start, end)
        kids = node.children
        if node.data == "disjunction":
            return Or(start, end, tuple(self.condition(k, depth + 1) for k in kids))
        if node.data == "conjunction":
            return And(start, end, tuple(self.condition(k, depth + 1) for k in kids))
        if node.data == "not_op":
            return Not(start, end, self.condition(kids[1], depth + 1))
        if node.data == "comparison":
            left, op, right = kids
            assert isinstance(op, Token)
            return Compare(
                start, end, self.expr(left, depth + 1), op.value, self.expr(right, depth + 1)
            )
        return self.call(node, start, end)

    def literal(self, token: Token, start: int, end: int) -> Expr:
        if token.type in {"TRUE", "FALSE"}:
            return Truth(start, end, token.type == "TRUE")
        return Text(start, end, _unquote(token))

    def call(self, node: Tree[Token], start: int, end: int) -> Expr:
        name_token, *arg_tokens = node.children
        assert isinstance(name_token, Token)
        name = name_token.value.casefold()
        function = _FUNCTIONS.get(name)
        if function is None:
            raise self.fail(unknown_function_message(name_token.value, called=True), start)
        args = [_unquote(t) for t in arg_tokens if isinstance(t, Token)]
        if name in _TAG_FUNCTIONS:
            args = self.tag_refs(name, arg_tokens, start)
        self.check_arity(name, function, len(args), start)
        if name in {"field", "credits"} and args and not args[0].strip():
            raise self.fail(f"{name}() needs a field name, not empty text", start)
        return function.build(start, end, args)

    def tag_refs(self, name: str, tokens: list[Tree[Token] | Token], start: int) -> list[str]:
        """Split comma lists (Memberium's ``tagid`` habit) and refuse ``-X`` negations."""
        refs: list[str] = []
        for token in tokens:
            assert isinstance(token, Token)
            for item in _unquote(token).split(","):
                ref = item.strip()
                if ref.startswith("-"):
                    raise self.fail(
                        f"'{clip(ref)}': to test that a tag is missing, write "
                        f"not has_tag('{clip(ref[1:].strip())}')",
                        token.start_pos or start,
                    )
                if ref:
                    refs.append(ref)
        if not refs:
            raise self.fail(f"{name}() needs a tag id or name", start)
        return refs

    def check_arity(self, name: str, function: _Function, count: int, start: int) -> None:
        low, high = function.min_args, function.max_args
        if low <= count and (high is None or count <= high):
            return
        if name == "has_tag":
            message = (
                f"has_tag() takes one tag, got {count}: use has_any_tag() or "
                "has_all_tags() for several"
            )
        elif high == 0:
            message = f"{name}() takes no arguments, got {count}"
        elif high is None:
            message = f"{name}() needs at least {low} argument, got {count}"
        elif low == high:
            message = f"{name}() takes exactly {low} argument, got {count}"
        else:
            message = f"{name}() takes at most {high} argument, got {count}"
        raise self.fail(message, start)
