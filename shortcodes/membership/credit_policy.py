"""Credit policies: how each credit field of ``[credits.policy.FIELD]`` in site.toml behaves.

Read by ``actionsets.load_actions`` (with the rest of ``[credits]``) and by the store, which
applies them to grants (:mod:`shortcodes.store.grants`): decimals, the default expiry of grants
by source, the subscription rollover cap, promotional-first spending and refund clawback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from shortcodes.membership import vocabulary as vocab

#: Where a grant's credits came from (``credit_grants.source``).
GRANT_SOURCES = (
    "purchase",
    "subscription",
    "admin",
    "promotion",
    "refund",
    "loyalty",
    "actionset",
    "transfer",
    "opening",
)
#: What a refund does with credits of its grant that were already spent: ``grant`` takes back
#: only what is left of the grant (the spent part stays spent, and the answer says how much);
#: ``balance`` takes the spent part from the contact's other grants, as far as they go;
#: ``below_zero`` does that and takes the rest below zero, a debt the next credit settles.
CLAWBACKS = ("grant", "balance", "below_zero")


@dataclass(frozen=True, slots=True)
class CreditPolicy:
    """How one credit field behaves: its decimals, default expiry of grants by source, the
    subscription rollover cap, whether promotional credit is spent first, refund clawback."""

    decimals: int = 0
    expires: Mapping[str, vocab.Duration] = field(default_factory=dict)
    rollover_cap: int | None = None  # in units (see :meth:`units`)
    promotional_first: bool = True
    clawback: str = "grant"

    @property
    def scale(self) -> int:
        """Units per credit: 100 for two decimals."""
        return int(10**self.decimals)

    def units(self, value: Any) -> int:
        """An amount as written (``5``, ``2.5``, ``"2.50"``) in whole units; ValueError if it
        has more decimals than the field, is not positive, or is too large."""
        return vocab.credit_units(value, self.decimals)

    def show(self, units: int) -> int | Decimal:
        """Units as the amount people read: an int without decimals, else an exact Decimal."""
        return vocab.from_units(units, self.decimals)


DEFAULT_POLICY = CreditPolicy()
