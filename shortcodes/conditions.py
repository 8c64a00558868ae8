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
condition text; Lark's exceptions are translated in exactly one place (:func:`_parse`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import ClassVar, Literal, TypeAlias

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from shortcodes.context import Contact, Context
from shortcodes.errors import Problem, ShortcodeError, make_problem
from shortcodes.values import COMPARISON_OPERATORS, as_number, compare_values

__all__ = [
    "COMPARISON_OPERATORS",
    "MAX_CONDITION_LENGTH",
    "MAX_NESTING",
    "Condition",
    "ConditionSyntaxError",
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


class ConditionSyntaxError(ShortcodeError):
    """A condition that does not compile: ``message`` says what was expected, ``column`` where.

    ``column`` is 1-based and counts characters from the start of the condition text (a newline
    inside the attribute counts as one character); ``offset`` is the same place, 0-based, for
    mapping onto the page.
    """

    def __init__(self, message: str, column: int, condition: str = "") -> None:
        super().__init__(f"column {column}: {message}")
        self.message = message
        self.column = column
        self.condition = condition

    @property
    def offset(self) -> int:
        """The 0-based character offset of the problem inside the condition text."""
        return self.column - 1

    def to_problem(self, page: str, value_offset: int, source_name: str = "<page>") -> Problem:
        """This error as a lint :class:`Problem` on ``page``, whose condition value starts at
        ``value_offset``. Exact when the value is written literally (no entities or escapes).
        """
        return make_problem(page, value_offset + self.offset, self.message, source_name=source_name)


# as_number, compare_values and COMPARISON_OPERATORS are re-exported: memb_if imports them here.
__all__ = [
    "COMPARISON_OPERATORS",
    "Condition",
    "ConditionSyntaxError",
    "as_number",
    "compare_values",
    "compile_condition",
]


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
    tree = _parse(text)
    return Condition(text, _Builder(text).condition(tree, 0))


# --- parsing and the one place Lark errors are translated ---------------------------------------


@cache
def _parser() -> Lark:
    # Built once per process: the grammar is a constant, and building the LALR tables is the
    # expensive part of using Lark.
    grammar = resources.files("shortcodes").joinpath("conditions.lark").read_text("utf-8")
    return Lark(
        grammar,
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=False,
    )


def _parse(text: str) -> Tree[Token]:
    # Interactive parsing keeps the tokens read so far, so an error can name what came before
    # it ("expected a value after '>='") and where an unclosed parenthesis was opened.
    interactive = _parser().parse_interactive(text)
    seen: list[Token] = []
    try:
        for token in interactive.iter_parse():
            seen.append(token)
        # Lark leaves feed_eof unannotated; it returns the finished tree.
        tree: Tree[Token] = interactive.feed_eof(seen[-1] if seen else None)  # type: ignore[no-untyped-call]
    except UnexpectedInput as exc:
        raise _translate(text, exc, seen) from None
    return tree


def _translate(text: str, exc: UnexpectedInput, seen: list[Token]) -> ConditionSyntaxError:
    if isinstance(exc, UnexpectedCharacters):
        return _bad_character(text, exc.pos_in_stream or 0)
    if isinstance(exc, UnexpectedToken):
        token: Token = exc.token
        # A token the parser refused was yielded (and recorded) before it was fed; one the
        # contextual lexer refused never was.
        consumed = seen[:-1] if seen and seen[-1] is token else seen
        return _TokenError(text, token, frozenset(exc.expected), consumed).error()
    return ConditionSyntaxError("this condition cannot be read", 1, text)  # pragma: no cover


def _bad_character(text: str, pos: int) -> ConditionSyntaxError:
    char, pair = text[pos], text[pos : pos + 2]
    if char in "'\"":
        message = f"unclosed string: the quote at column {pos + 1} is never closed"
    elif pair == "&&" or char == "&":
        message = "use 'and' instead of '&&'"
    elif pair == "||" or char == "|":
        message = "use 'or' instead of '||'"
    elif char == "!":
        message = "use 'not' instead of '!' ('!=' compares)"
    else:
        message = f"unexpected character {char!r}"
    return ConditionSyntaxError(message, pos + 1, text)


_OPERAND_START = frozenset({"NUMBER", "STRING", "NAME", "TRUE", "FALSE", "LPAR", "NOT"})
_KEYWORDS = {"and": "_AND", "or": "_OR"}
_EXPECTED_WORDS = {
    "COMP_OP": "a comparison such as '>='",
    "_AND": "'and'",
    "_OR": "'or'",
    "RPAR": "')'",
    "COMMA": "','",
    "LPAR": "'('",
    "$END": "the end of the condition",
}


def _clip(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(token: Token) -> str:
    if token.type == "$END":
        return "the end of the condition"
    if token.type == "STRING":
        return f"the text {_clip(token.value)}"
    if token.type == "NUMBER":
        return f"the number {_clip(token.value)}"
    return f"'{_clip(token.value)}'"


def _suggest(name: str, choices: Sequence[str]) -> str | None:
    matches = difflib.get_close_matches(name.casefold(), choices, n=1, cutoff=0.6)
    return matches[0] if matches else None


class _TokenError:
    """Turns one refused token, and the tokens before it, into a message a page author can act on.

    Checks run from the most specific mistake to the generic "unexpected X; expected Y".
    """

    def __init__(
        self, text: str, token: Token, expected: frozenset[str], consumed: list[Token]
    ) -> None:
        # Where only a value may follow, the contextual lexer reads a stray 'and'/'or' as a
        # function name and the parser only balks after it; report the keyword itself.
        last = consumed[-1] if consumed else None
        if last is not None and last.type == "NAME" and last.value.casefold() in _KEYWORDS:
            token = Token.new_borrow_pos(_KEYWORDS[last.value.casefold()], last.value, last)
            consumed, expected = consumed[:-1], frozenset()
        self.text = text
        self.token = token
        self.expected = expected
        self.prev = consumed[-1] if consumed else None
        self.at_end = token.type == "$END"
        self.found = _describe(token)
        self.opened = _open_parens(consumed)
        # Where the caret goes: the refused token, or just past the last token at the end.
        if not self.at_end:
            self.offset = token.start_pos or 0
        else:
            self.offset = (self.prev.end_pos or 0) if self.prev is not None else 0

    def fail(self, message: str, offset: int | None = None) -> ConditionSyntaxError:
        at = self.offset if offset is None else offset
        return ConditionSyntaxError(message, at + 1, self.text)

    def found_suffix(self) -> str:
        return "" if self.at_end else f", found {self.found}"

    def error(self) -> ConditionSyntaxError:
        prev = self.prev
        if prev is None:
            return self.at_start()
        if prev.type == "NAME":
            return self.fail(_bare_name_message(prev.value), prev.start_pos)
        if prev.type == "COMP_OP":
            return self.after_operator(prev)
        if prev.type in {"_AND", "_OR", "NOT"}:
            word = prev.value.lower()
            return self.fail(f"expected a condition after '{word}'{self.found_suffix()}")
        if self.opened and self.opened[-1][1] is not None:
            return self.in_call(self.opened[-1][1], self.opened[-1][0])
        if prev.type == "LPAR":
            if self.token.type == "RPAR":
                return self.fail("empty parentheses: put a condition inside them")
            return self.fail(f"expected a condition after '('{self.found_suffix()}")
        return self.after_operand()

    def at_start(self) -> ConditionSyntaxError:
        if self.at_end:
            return self.fail(
                "empty condition: write a test such as has_tag('Gold') or credits() >= 50", 0
            )
        return self.fail(f"a condition cannot start with {self.found}")

    def after_operator(self, op: Token) -> ConditionSyntaxError:
        token = self.token
        if op.value == "<" and token.value == ">" and op.end_pos == token.start_pos:
            return self.fail("use '!=' instead of '<>'", op.start_pos)
        return self.fail(f"expected a value after '{op.value}'{self.found_suffix()}")

    def in_call(self, name_token: Token, paren: Token) -> ConditionSyntaxError:
        prev, token, name = self.prev, self.token, name_token.value
        assert prev is not None
        if name.casefold() not in _FUNCTIONS:
            # The name is the first thing wrong; its arguments can wait.
            return self.fail(_unknown_function_message(name, called=True), name_token.start_pos)
        if token.type == "NAME":
            rest = self.text[token.end_pos or 0 :].lstrip()
            if rest.startswith("("):
                return self.fail(f"{name}() takes quoted names or numbers, not a function call")
            return self.fail(f"{name}() takes quoted names or numbers: write '{token.value}'")
        if prev.type in {"LPAR", "COMMA"}:
            where = "after ','" if prev.type == "COMMA" else f"in {name}()"
            return self.fail(f"expected a quoted name or a number {where}{self.found_suffix()}")
        if self.at_end:
            start = paren.start_pos or 0
            return self.fail(
                f"unclosed parenthesis of {name}() opened at column {start + 1}", start
            )
        return self.fail(
            f"expected ',' or ')' after {_describe(prev)} in {name}(){self.found_suffix()}"
        )

    def after_operand(self) -> ConditionSyntaxError:
        token = self.token
        if self.at_end and self.opened:
            start = self.opened[-1][0].start_pos or 0
            return self.fail(f"unclosed parenthesis opened at column {start + 1}", start)
        if token.type == "RPAR":
            return self.fail("unmatched ')': there is no '(' to close")
        if token.type == "COMP_OP":
            return self.fail(
                "comparisons cannot be chained: join them with 'and', "
                "e.g. credits() >= 10 and credits() <= 50"
            )
        if token.type == "NAME" and (word := _suggest(token.value, ["and", "or"])):
            return self.fail(f"unknown word '{token.value}' (did you mean '{word}'?)")
        if token.type in _OPERAND_START:
            wanted = (
                "'and', 'or' or a comparison" if "COMP_OP" in self.expected else "'and' or 'or'"
            )
            return self.fail(f"expected {wanted} before {self.found}")
        return self.fail(f"unexpected {self.found}; expected {self.describe_expected()}")

    def describe_expected(self) -> str:
        words = sorted({_EXPECTED_WORDS.get(name, "a value") for name in self.expected})
        return " or ".join(words) if words else "nothing more"


def _open_parens(tokens: list[Token]) -> list[tuple[Token, Token | None]]:
    """The parentheses still open after ``tokens``, each with its function's name (None: group)."""
    stack: list[tuple[Token, Token | None]] = []
    for i, token in enumerate(tokens):
        if token.type == "LPAR":
            before = tokens[i - 1] if i else None
            stack.append((token, before if before and before.type == "NAME" else None))
        elif token.type == "RPAR" and stack:
            stack.pop()
    return stack


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
_FUNCTION_LIST = ", ".join(f"{name}()" for name in _FUNCTIONS)
_TAG_FUNCTIONS = frozenset({"has_tag", "has_any_tag", "has_all_tags"})


def _bare_name_message(name: str) -> str:
    if name.casefold() in _FUNCTIONS:
        return f"expected '(' after '{name}': write {name.lower()}(...)"
    return _unknown_function_message(name, called=False)


def _unknown_function_message(name: str, *, called: bool) -> str:
    suggestion = _suggest(name, list(_FUNCTIONS))
    if suggestion:
        return f"unknown function '{name}' (did you mean {suggestion}?)"
    if called:
        return f"unknown function '{name}': the functions are {_FUNCTION_LIST}"
    return f"'{name}' is neither a value nor a function: put text in quotes, e.g. '{name}'"


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
            snippet = _clip(self.text[expr.start : expr.end], 40)
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
            raise self.fail(_unknown_function_message(name_token.value, called=True), start)
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
                        f"'{_clip(ref)}': to test that a tag is missing, write "
                        f"not has_tag('{_clip(ref[1:].strip())}')",
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
