"""Condition stage, reading: condition text to a Lark tree, every Lark error to a clear message.

This module is where ``conditions.lark`` is loaded and where Lark's exceptions are translated, in
exactly one place (:func:`parse_condition`): a refused character or token, with the tokens read
before it, becomes a :class:`ConditionSyntaxError` that says what was expected and where (a
1-based column in the condition text). :mod:`shortcodes.conditions` builds the AST from the tree.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from functools import cache
from importlib import resources

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from shortcodes.errors import ConditionSyntaxError

#: The functions a condition may call (the AST builder in ``conditions`` defines what each does).
FUNCTION_NAMES = ("has_tag", "has_any_tag", "has_all_tags", "field", "credits", "logged_in")


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


def parse_condition(text: str) -> Tree[Token]:
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


def clip(text: str, limit: int = 30) -> str:
    """``text``, cut to ``limit`` characters with an ellipsis, for quoting in a message."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(token: Token) -> str:
    if token.type == "$END":
        return "the end of the condition"
    if token.type == "STRING":
        return f"the text {clip(token.value)}"
    if token.type == "NUMBER":
        return f"the number {clip(token.value)}"
    return f"'{clip(token.value)}'"


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
            return self.fail(bare_name_message(prev.value), prev.start_pos)
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
        if name.casefold() not in FUNCTION_NAMES:
            # The name is the first thing wrong; its arguments can wait.
            return self.fail(unknown_function_message(name, called=True), name_token.start_pos)
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


def bare_name_message(name: str) -> str:
    """The message for a name written without a call: a function missing its '(' or a value
    missing its quotes."""
    if name.casefold() in FUNCTION_NAMES:
        return f"expected '(' after '{name}': write {name.lower()}(...)"
    return unknown_function_message(name, called=False)


def unknown_function_message(name: str, *, called: bool) -> str:
    """The message for a name that is no function (``called``: it was written with '(')."""
    suggestion = _suggest(name, list(FUNCTION_NAMES))
    if suggestion:
        return f"unknown function '{name}' (did you mean {suggestion}?)"
    if called:
        return f"unknown function '{name}': the functions are {', '.join(f'{n}()' for n in FUNCTION_NAMES)}"
    return f"'{name}' is neither a value nor a function: put text in quotes, e.g. '{name}'"
