"""Store errors: every refusal of the contact store and credit ledger, each with a clear message.

A refusal always means nothing was written: the operation's transaction is rolled back before the
error reaches the caller.
"""

from __future__ import annotations

from shortcodes.errors import ShortcodeError


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


class RunRefused(StoreError):
    """An actionset's preconditions (``requires`` / ``blocked_by`` tags) do not hold."""


class IdempotencyConflict(StoreError):
    """The idempotency key was already used for an operation with other parameters."""


class RefundError(StoreError):
    """A refund names an entry that is missing, already reversed, or itself a reversal."""


class RetryExhausted(StoreError):
    """The database kept reporting serialization failures or deadlocks after every retry."""
