"""Errors and diagnostics: one hierarchy, every syntax problem carries where it happened.

A :class:`Problem` is what ``Environment.lint`` reports; a :class:`ShortcodeSyntaxError` is the
same problem raised in strict mode. Both point at a 1-based line and column and carry a caret
snippet of the offending line, like Lark's ``UnexpectedInput.get_context``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Severity = Literal["error", "warning"]


def line_col(text: str, offset: int) -> tuple[int, int]:
    """Return the 1-based (line, column) of ``offset`` in ``text``."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def caret_snippet(text: str, offset: int, width: int = 1) -> str:
    """The source line around ``offset`` with a caret line under the offending span."""
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    if end == -1:
        end = len(text)
    line = text[start:end]
    # Long lines are clipped around the offset so the snippet stays readable.
    col = offset - start
    if len(line) > 120:
        left = max(0, col - 60)
        line = ("…" if left else "") + line[left : left + 120]
        col = col - left + (1 if left else 0)
    width = max(1, min(width, len(line) - col))
    return f"{line}\n{' ' * col}{'^' * width}"


@dataclass(frozen=True, slots=True)
class Problem:
    """One lint finding: where it is, how bad it is, what is wrong, and the line with a caret."""

    line: int
    column: int
    message: str
    severity: Severity
    snippet: str
    offset: int = 0
    source_name: str = "<page>"

    def format(self) -> str:
        """``file:line:col: severity: message`` followed by the caret snippet."""
        head = f"{self.source_name}:{self.line}:{self.column}: {self.severity}: {self.message}"
        return f"{head}\n{self.snippet}"

    def __str__(self) -> str:
        return self.format()


class ShortcodeError(Exception):
    """Base class of every error this package raises on purpose."""


class ShortcodeSyntaxError(ShortcodeError):
    """A page (or attribute, or condition) that does not read as intended; raised in strict mode.

    Carries the same position as the :class:`Problem` lint reports for it.
    """

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.format())
        self.problem = problem
        self.line = problem.line
        self.column = problem.column
        self.message = problem.message
        self.snippet = problem.snippet


class ShortcodeRenderError(ShortcodeError):
    """A handler raised while rendering; wraps the original exception as ``__cause__``."""

    def __init__(self, name: str, line: int, column: int, error: BaseException) -> None:
        super().__init__(f"[{name}] at line {line}, column {column} failed: {error}")
        self.name = name
        self.line = line
        self.column = column


def make_problem(
    text: str,
    offset: int,
    message: str,
    severity: Severity = "error",
    width: int = 1,
    source_name: str = "<page>",
) -> Problem:
    """Build a :class:`Problem` at ``offset`` of ``text`` (the single helper all checks use)."""
    line, column = line_col(text, offset)
    return Problem(
        line=line,
        column=column,
        message=message,
        severity=severity,
        snippet=caret_snippet(text, offset, width),
        offset=offset,
        source_name=source_name,
    )


class ConfigError(ShortcodeError):
    """A site configuration problem: file, 1-based line and column (0 when unknown), dotted key."""

    def __init__(
        self, message: str, *, file: str, key: str = "", line: int = 0, column: int = 0
    ) -> None:
        self.file = file
        self.key = key
        self.line = line
        self.column = column
        self.reason = message
        super().__init__(self._where() + (f"{key}: " if key else "") + message)

    def _where(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: " if self.line else f"{self.file}: "

    def format(self) -> str:
        """The ``check`` command's line: ``FILE:LINE:COL: error: KEY: MESSAGE``."""
        return self._where() + "error: " + (f"{self.key}: " if self.key else "") + self.reason

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments: rebuild through a function that takes them by position.
        return (_config_error, (self.reason, self.file, self.key, self.line, self.column))


def _config_error(message: str, file: str, key: str, line: int, column: int) -> ConfigError:
    return ConfigError(message, file=file, key=key, line=line, column=column)


class ActionsetParamError(ShortcodeError):
    """Parameters a button bound that the actionset does not accept (``cost="fifty"``)."""
