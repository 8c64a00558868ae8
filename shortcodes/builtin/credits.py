"""Builtins, credits: ``credit_balance`` and ``credit_history`` read from the render context.

Balances are contact fields (``_Credits`` by default). The history is what the host put in
``ctx.extra["credit_history"]``: ledger entries of the current contact (objects or mappings with
``field``, ``delta``, ``balance_after``, ``reason``, ``created_at`` and optionally
``contact_id``), e.g. ``shortcodes.store.ledger.Entry``. Rendering never queries a database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Final

from markupsafe import Markup

from shortcodes.context import Context
from shortcodes.registry import Attribute
from shortcodes.runtime import Shortcode

from .common import text_of

if TYPE_CHECKING:
    from shortcodes.environment import Environment

#: The ``ctx.extra`` key the host fills with the contact's ledger entries.
HISTORY_KEY: Final = "credit_history"

_ROW: Final = Markup(
    '<tr><td><time datetime="{iso}">{day}</time></td><td class="{kind}">{delta}</td>'
    "<td>{balance}</td><td>{reason}</td></tr>"
)
_HEAD: Final = Markup(
    '<table class="credit-history"><thead><tr><th>Date</th><th>Change</th><th>Balance</th>'
    "<th>Reason</th></tr></thead><tbody>"
)


def _get(entry: Any, name: str, default: Any = None) -> Any:
    if isinstance(entry, Mapping):
        return entry.get(name, default)
    return getattr(entry, name, default)


def credit_balance(sc: Shortcode, ctx: Context) -> str:
    """The contact's balance as a whole number (0 without one); nothing for visitors."""
    if ctx.contact is None:
        return ""
    field = text_of(sc.attrs.get("field", "_Credits")) or "_Credits"
    try:
        balance = ctx.contact.balance(field)
    except ValueError:  # digit-like text int() refuses ("²"): not a balance
        balance = None
    return str(balance if balance is not None else 0)


def entries_for(ctx: Context, field: str) -> list[Any]:
    """The current contact's entries for ``field``, newest first.

    Entries of another contact are dropped: a page must never show someone else's ledger.
    """
    contact = ctx.contact
    raw = ctx.extra.get(HISTORY_KEY) or ()
    if contact is None or not isinstance(raw, Iterable):
        return []
    wanted = field.casefold()
    mine = [
        e
        for e in raw
        if str(_get(e, "field", "_Credits")).casefold() == wanted
        and _get(e, "contact_id", contact.id) == contact.id
    ]
    if all(isinstance(_get(e, "created_at"), datetime) for e in mine):
        mine.sort(key=lambda e: _get(e, "created_at"), reverse=True)
    return mine


def _row(entry: Any) -> Markup:
    moment = _get(entry, "created_at")
    delta = _get(entry, "delta", 0)
    try:
        amount = int(delta)
    except (TypeError, ValueError):
        amount = 0
    if isinstance(moment, datetime | date):
        iso, day = moment.isoformat(), moment.strftime("%Y-%m-%d")
    else:
        iso = day = "" if moment is None else str(moment)
    return _ROW.format(
        iso=iso,
        day=day,
        kind="credit" if amount >= 0 else "debit",
        delta=f"{amount:+d}",
        balance=text_of(_get(entry, "balance_after", "")),
        reason=text_of(_get(entry, "reason", "")),
    )


def credit_history(sc: Shortcode, ctx: Context) -> Markup:
    """The contact's ledger entries for a field, newest first, as a table."""
    if ctx.contact is None:
        return Markup()
    field = text_of(sc.attrs.get("field", "_Credits")) or "_Credits"
    limit = sc.attrs.get("limit", 10)
    entries = entries_for(ctx, field)
    if limit and limit > 0:
        entries = entries[:limit]
    if not entries:
        return Markup('<p class="credit-history-empty">No credit history yet.</p>')
    return _HEAD + Markup("").join(_row(e) for e in entries) + Markup("</tbody></table>")


def register(env: Environment) -> None:
    """Register ``credit_balance`` and ``credit_history``."""
    field = Attribute("field", str, default="_Credits", doc="the credit field")
    env.add_shortcode(
        "credit_balance",
        credit_balance,
        attributes=[field],
        description="The contact's credit balance as a whole number (0 when the contact has "
        "none; nothing for anonymous visitors).",
        example='You have [credit_balance field="_Credits"] credits.',
    )
    env.add_shortcode(
        "credit_history",
        credit_history,
        attributes=[
            field,
            Attribute("limit", int, default=10, doc="how many entries, newest first (0 for all)"),
        ],
        description="The contact's ledger entries for a credit field, newest first, as a table.",
        example='[credit_history field="_Credits" limit="5"]',
    )
