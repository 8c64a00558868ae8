"""Errors and diagnostics: every exception the package raises, in one hierarchy, in one module.

A :class:`Problem` is what ``Environment.lint`` reports; a :class:`ShortcodeSyntaxError` is the
same problem raised in strict mode. Both point at a 1-based line and column and carry a caret
snippet of the offending line, like Lark's ``UnexpectedInput.get_context``.

Every class derives from :class:`ShortcodeError` and survives ``pickle`` (workers and log handlers
move exceptions between processes): the base class pickles the ``args`` and the attributes, not
the ``__init__`` signature, so a subclass with its own ``__init__`` needs nothing more.

The hierarchy::

    ShortcodeError
        ShortcodeSyntaxError, ShortcodeRenderError, ConditionSyntaxError
        AuthorError (also ValueError): AttributeValueError, GateError, ActionButtonError
        ConfigError, ThemeError, PageError, HookError
        ActionTokenError: ActionTokenInvalid, ActionTokenExpired, ActionTokenWrongContact,
                          ActionTokenWrongAction
        StoreError: InvalidInput, UnknownContact, UnknownTag, UnknownField, UnknownAction,
                    DuplicateContact, InsufficientCredits, InsufficientPoints, RunRefused,
                    IdempotencyConflict, RefundError, RetryExhausted
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pathlib import Path

Severity = Literal["error", "warning"]


def line_col(text: str, offset: int) -> tuple[int, int]:
    """Return the 1-based (line, column) of ``offset`` in ``text``."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


class LineIndex:
    """Where each line of one text starts, so that many positions cost a bisection each.

    :func:`line_col` counts newlines from the top, which is fine once but quadratic for a page
    with a problem on every tag; lint and check use one index per page instead.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0]
        find = text.find
        at = find("\n")
        while at >= 0:
            self.starts.append(at + 1)
            at = find("\n", at + 1)

    def line_col(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of ``offset``."""
        line = bisect_right(self.starts, offset)
        return line, offset - self.starts[line - 1] + 1

    def bounds(self, offset: int) -> tuple[int, int]:
        """Start and end (before its newline) of the line holding ``offset``."""
        line = bisect_right(self.starts, offset)
        end = self.starts[line] - 1 if line < len(self.starts) else len(self.text)
        return self.starts[line - 1], end


def caret_snippet(
    text: str, offset: int, width: int = 1, bounds: tuple[int, int] | None = None
) -> str:
    """The source line around ``offset`` with a caret line under the offending span."""
    if bounds is None:
        start = text.rfind("\n", 0, offset) + 1
        end = text.find("\n", offset)
        if end == -1:
            end = len(text)
    else:
        start, end = bounds
    # Long lines are clipped around the offset so the snippet stays readable (and only the
    # clipped part is copied: a long line with a problem on every tag stays linear).
    col = offset - start
    if end - start > 120:
        left = max(0, col - 60)
        line = ("…" if left else "") + text[start + left : min(end, start + left + 120)]
        col = col - left + (1 if left else 0)
    else:
        line = text[start:end]
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


def _restore(cls: type[ShortcodeError], args: tuple[Any, ...]) -> ShortcodeError:
    # BaseException.__new__ stores ``args`` without running __init__; pickle then restores the
    # attributes from the saved __dict__, so no subclass's __init__ signature matters.
    return cls.__new__(cls, *args)


class ShortcodeError(Exception):
    """Base class of every error this package raises on purpose; every subclass pickles."""

    def __reduce__(self) -> tuple[Any, ...]:
        # The default (cls, args, state) calls cls(*args), which breaks every subclass whose
        # __init__ takes other arguments than the message it hands to Exception.
        return (_restore, (type(self), self.args), self.__dict__)


# -- the shortcode language ----------------------------------------------------------------------


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
    """A shortcode failed while rendering in strict mode: its name, line and column.

    Raised ``from`` the original exception, which stays reachable as ``__cause__``.
    """

    def __init__(self, name: str, line: int, column: int, error: BaseException) -> None:
        super().__init__(f"[{name}] at line {line}, column {column} failed: {error}")
        self.name = name
        self.line = line
        self.column = column


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


class AuthorError(ShortcodeError, ValueError):
    """A mistake in a page that its author can fix, found while rendering.

    The error policy logs it without a traceback (it is not a bug in the code) and shows its
    message in the inline notice. It is a ValueError too, as these errors were before.
    """


class AttributeValueError(AuthorError):
    """A declared attribute's value does not convert to its type, or a required one is missing."""


class GateError(AuthorError):
    """A gate that cannot decide (unknown operator, bad condition, empty tag list): it fails."""


class ActionButtonError(AuthorError):
    """A button that cannot be rendered (no action_id, no signer): a notice in preview."""


# -- sites, themes, pages and the host -----------------------------------------------------------


class ConfigError(ShortcodeError):
    """A site configuration problem: file, 1-based line and column (0 when unknown), dotted key.

    ``str(error)`` is ``FILE:LINE:COL: KEY: MESSAGE``; ``:LINE:COL`` is left out when the line is
    unknown (0) and ``KEY: `` when there is no key. ``reason`` is the message alone.
    """

    def __init__(
        self, message: str, *, file: str, key: str = "", line: int = 0, column: int = 0
    ) -> None:
        self.file = file
        self.key = key
        self.line = line
        self.column = column
        self.reason = message
        super().__init__(f"{self._where()}: {self._what()}")

    def _where(self) -> str:
        return f"{self.file}:{self.line}:{self.column}" if self.line else self.file

    def _what(self) -> str:
        return f"{self.key}: {self.reason}" if self.key else self.reason

    def format(self, severity: str = "error") -> str:
        """The ``check`` command's line: ``FILE:LINE:COL: error: KEY: MESSAGE`` (``warning``
        in place of ``error`` for a problem that does not stop the site)."""
        return f"{self._where()}: {severity}: {self._what()}"


class ThemeError(ShortcodeError):
    """A theme that cannot be loaded: names the file (and line) and what is wrong."""

    def __init__(self, message: str, file: Path | str, line: int | None = None) -> None:
        where = f"{file}:{line}" if line else str(file)
        super().__init__(f"{where}: {message}")
        self.file = str(file)
        self.line = line
        self.reason = message


class PageError(ShortcodeError):
    """A page file the host cannot serve: bad front matter, unreadable file.

    ``line`` and ``column`` (1-based, 0 when unknown) say where in the file, counted from its
    top: ``check``, the preview, the editor and the language server all report them.
    """

    def __init__(self, message: str, line: int = 0, column: int = 0) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


class HookError(ShortcodeError):
    """A refused webhook: HTTP status, a machine code and a sentence."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class NotOurEvent(ShortcodeError):
    """A payment provider's event concerns no contact or product of this site: it is answered
    200 and logged as ignored (the provider must not retry it)."""


# -- action tokens -------------------------------------------------------------------------------


class ActionTokenError(ShortcodeError):
    """An action token the host must refuse; the message says why, without leaking secrets."""


class ActionTokenInvalid(ActionTokenError):
    """The token is empty, garbled, too long, altered, or signed with another secret."""


class ActionTokenExpired(ActionTokenError):
    """The token is older than ``max_age``; the visitor should reload the page."""

    def __init__(self, age: int, max_age: int) -> None:
        super().__init__(
            f"action token expired: issued {age} seconds ago, valid for {max_age}; "
            "reload the page for a fresh button"
        )
        self.age = age
        self.max_age = max_age


class ActionTokenWrongContact(ActionTokenError):
    """The token was issued to another contact than the one posting it."""

    def __init__(self, token_contact_id: int, contact_id: int) -> None:
        # The ids stay off the message: it may reach a page, and one of them is someone else's.
        super().__init__("action token was issued to another contact")
        self.token_contact_id = token_contact_id
        self.contact_id = contact_id


class ActionTokenWrongAction(ActionTokenError):
    """The token is for another actionset than the one requested."""

    def __init__(self, token_action_id: str, action_id: str) -> None:
        super().__init__(f"action token is for action {token_action_id!r}, not {action_id!r}")
        self.token_action_id = token_action_id
        self.action_id = action_id


# -- the store -----------------------------------------------------------------------------------
# A store refusal always means nothing was written: the operation's transaction is rolled back
# before the error reaches the caller.


class StoreError(ShortcodeError):
    """Base class of every error the store raises on purpose."""


class InvalidInput(StoreError):
    """An argument that can never be valid: a negative amount, a malformed email, a bad name."""


class UnknownContact(StoreError):
    """No contact has that id or email."""


class UnknownTag(StoreError):
    """No tag has that id or name (tags are created explicitly, never by a typo)."""


class UnknownField(StoreError):
    """A credit field the site does not declare, or a field name that cannot be used here."""


class UnknownAction(StoreError):
    """No actionset has that name."""


class DuplicateContact(StoreError):
    """A contact with that email already exists."""


class InsufficientCredits(StoreError):
    """A debit would take a balance below zero; carries what was needed and what there is."""

    def __init__(self, field: str, needed: int, balance: int) -> None:
        super().__init__(f"You need {needed} credits; you have {balance}")
        self.field = field
        self.needed = needed
        self.balance = balance


class InsufficientPoints(StoreError):
    """A spend larger than the available loyalty points; nothing was taken."""

    def __init__(self, needed: int, available: int) -> None:
        super().__init__(f"You need {needed} points; you have {available} available")
        self.needed = needed
        self.available = available


class RunRefused(StoreError):
    """An actionset's preconditions (``requires`` / ``blocked_by`` tags) do not hold."""


class IdempotencyConflict(StoreError):
    """The idempotency key was already used for an operation with other parameters."""


class RefundError(StoreError):
    """A refund names an entry that is missing, already reversed, or itself a reversal."""


class RetryExhausted(StoreError):
    """The database kept reporting serialization failures or deadlocks after every retry."""


def make_problem(
    text: str,
    offset: int,
    message: str,
    severity: Severity = "error",
    width: int = 1,
    source_name: str = "<page>",
    lines: LineIndex | None = None,
) -> Problem:
    """Build a :class:`Problem` at ``offset`` of ``text`` (the single helper all checks use).

    ``lines`` (an index of ``text``) makes it cost a bisection instead of a scan of the text.
    """
    if lines is None:
        line, column = line_col(text, offset)
        bounds = None
    else:
        line, column = lines.line_col(offset)
        bounds = lines.bounds(offset)
    return Problem(
        line=line,
        column=column,
        message=message,
        severity=severity,
        snippet=caret_snippet(text, offset, width, bounds),
        offset=offset,
        source_name=source_name,
    )


class SettingsError(ShortcodeError, ValueError):
    """A host setting that cannot work (a missing site folder, say): says which and why."""


class ActionsetParamError(ShortcodeError):
    """Parameters a button bound that the actionset does not accept (``cost="fifty"``)."""
