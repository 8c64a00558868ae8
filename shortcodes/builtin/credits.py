"""Builtins, credits: ``credit_balance``, ``credit_history`` and ``credit_grants`` read from the
render context.

Balances are contact fields (``_Credits`` by default; an exact Decimal on a field with
decimals). The history is what the host put in ``ctx.extra["credit_history"]``: ledger entries
of the current contact (objects or mappings with ``field``, ``delta``, ``balance_after``,
``reason``, ``created_at`` and optionally ``contact_id``), e.g. ``shortcodes.store.ledger.Entry``.
The grants are ``ctx.extra["credit_grants"]`` (mappings with ``field``, ``remaining``,
``source``, ``category``, ``status``, ``expires_at``, ``contact_id``) as of
``ctx.extra["credits_now"]``: what ``expiring`` counts and ``credit_grants`` lists. What a
refund took below zero is ``ctx.extra["credit_debts"]`` (mappings with ``field``, ``owed``,
``contact_id``), which ``credit_grants`` states above the grants.
Rendering never queries a database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from markupsafe import Markup

from shortcodes.context import Context
from shortcodes.membership import vocabulary as vocab
from shortcodes.membership.vocabulary import Duration
from shortcodes.registry import Attribute
from shortcodes.runtime import Shortcode

from .common import text_of

if TYPE_CHECKING:
    from shortcodes.environment import Environment

#: The ``ctx.extra`` key the host fills with the contact's ledger entries.
HISTORY_KEY: Final = "credit_history"
#: The ``ctx.extra`` keys the host fills with the contact's grants and the time it read them.
GRANTS_KEY: Final = "credit_grants"
NOW_KEY: Final = "credits_now"
#: The ``ctx.extra`` key the host fills with what the contact owes, per field.
DEBTS_KEY: Final = "credit_debts"

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
    """The contact's balance (0 without one); with ``expiring="30d"``, the part of it that
    expires within that time. Nothing for visitors."""
    if ctx.contact is None:
        return ""
    field = text_of(sc.attrs.get("field", "_Credits")) or "_Credits"
    window = sc.attrs.get("expiring")
    if window is not None:
        return str(sum((_get(g, "remaining", 0) for g in expiring(ctx, field, window)), start=0))
    try:
        balance = ctx.contact.balance(field)
    except ValueError:  # digit-like text int() refuses ("²"): not a balance
        balance = None
    return str(balance if balance is not None else 0)


def grants_for(ctx: Context, field: str) -> list[Any]:
    """The current contact's live grants of ``field`` (never another contact's)."""
    return _mine(ctx, GRANTS_KEY, field)


def owed(ctx: Context, field: str) -> Any:
    """What the current contact owes in ``field`` (a refund took its balance below zero), as
    people read it; None when nothing is owed."""
    found = [_get(d, "owed") for d in _mine(ctx, DEBTS_KEY, field)]
    return next((amount for amount in found if amount), None)


def _mine(ctx: Context, key: str, field: str) -> list[Any]:
    """The rows of ``ctx.extra[key]`` about ``field`` of the current contact: a row naming
    another contact is dropped (a page must never show someone else's credits)."""
    contact = ctx.contact
    raw = ctx.extra.get(key) or ()
    if contact is None or not isinstance(raw, Iterable):
        return []
    wanted = field.casefold()
    return [
        row
        for row in raw
        if str(_get(row, "field", "")).casefold() == wanted
        and _get(row, "contact_id", contact.id) == contact.id
    ]


def expiring(ctx: Context, field: str, window: Duration) -> list[Any]:
    """The contact's grants of ``field`` with something left that expire within ``window``
    of the time the host read them, soonest first."""
    now = ctx.extra.get(NOW_KEY)
    if not isinstance(now, datetime):
        return []
    until = window.after(now)
    found = [
        g
        for g in grants_for(ctx, field)
        if isinstance(_get(g, "expires_at"), datetime)
        and now < _get(g, "expires_at") <= until
        and _get(g, "remaining", 0)
    ]
    return sorted(found, key=lambda g: _get(g, "expires_at"))


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
    amount = _number(_get(entry, "delta", 0))
    iso, day = _moment(moment)
    return _ROW.format(
        iso=iso,
        day=day,
        kind="credit" if amount >= 0 else "debit",
        delta=f"+{amount}" if amount >= 0 else str(amount),
        balance=text_of(_get(entry, "balance_after", "")),
        reason=text_of(_get(entry, "reason", "")),
    )


def _number(value: Any) -> int | Decimal:
    if isinstance(value, Decimal):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _moment(moment: Any) -> tuple[str, str]:
    if isinstance(moment, datetime | date):
        return moment.isoformat(), moment.strftime("%Y-%m-%d")
    text = "" if moment is None else str(moment)
    return text, text


_EXPIRING: Final = Markup(
    '<li><span class="amount">{amount}</span> expire on <time datetime="{iso}">{day}</time></li>'
)
_GRANT: Final = Markup(
    '<tr class="{status}"><td>{left}</td><td>{source}</td><td>{category}</td>'
    '<td><time datetime="{iso}">{day}</time></td></tr>'
)
_DEBT: Final = Markup(
    '<p class="credit-debt">You owe <span class="amount">{amount}</span> credits: the next '
    "credits you get pay this first.</p>"
)
_GRANTS_HEAD: Final = Markup(
    '<table class="credit-grants"><thead><tr><th>Left</th><th>From</th><th>Kind</th>'
    "<th>Expires</th></tr></thead><tbody>"
)


def _expiring_list(ctx: Context, field: str, window: Duration) -> Markup:
    soon = expiring(ctx, field, window)
    if not soon:
        return Markup()
    items = Markup("").join(
        _EXPIRING.format(amount=text_of(_get(g, "remaining", 0)), **_when(g)) for g in soon
    )
    return Markup('<ul class="credit-expiring">') + items + Markup("</ul>")


def _when(grant: Any) -> dict[str, str]:
    expires = _get(grant, "expires_at")
    if expires is None:
        return {"iso": "", "day": "never"}
    iso, day = _moment(expires)
    return {"iso": iso, "day": day}


def credit_grants(sc: Shortcode, ctx: Context) -> Markup:
    """The contact's credits of a field by grant: what is left, where it came from, whether it
    is paid or promotional, and when it expires; first what the contact owes, if anything."""
    if ctx.contact is None:
        return Markup()
    field = text_of(sc.attrs.get("field", "_Credits")) or "_Credits"
    found = grants_for(ctx, field)
    debt = owed(ctx, field)
    note = Markup() if debt is None else _DEBT.format(amount=text_of(debt))
    if not found:
        return note or Markup('<p class="credit-grants-empty">No credits yet.</p>')
    rows = Markup("").join(
        _GRANT.format(
            status=text_of(_get(g, "status", "")),
            left=text_of(_get(g, "remaining", 0)),
            source=text_of(_get(g, "source", "")),
            category=text_of(_get(g, "category", "")),
            **_when(g),
        )
        for g in found
    )
    return note + _GRANTS_HEAD + rows + Markup("</tbody></table>")


def credit_history(sc: Shortcode, ctx: Context) -> Markup:
    """The contact's ledger entries for a field, newest first, as a table."""
    if ctx.contact is None:
        return Markup()
    field = text_of(sc.attrs.get("field", "_Credits")) or "_Credits"
    limit = sc.attrs.get("limit", 10)
    entries = entries_for(ctx, field)
    if limit and limit > 0:
        entries = entries[:limit]
    window = sc.attrs.get("expiring")
    soon = Markup() if window is None else _expiring_list(ctx, field, window)
    if not entries:
        return Markup('<p class="credit-history-empty">No credit history yet.</p>') + soon
    rows = Markup("").join(_row(e) for e in entries)
    return _HEAD + rows + Markup("</tbody></table>") + soon


def register(env: Environment) -> None:
    """Register ``credit_balance`` and ``credit_history``."""
    field = Attribute("field", str, default="_Credits", doc="the credit field")
    window = Attribute(
        "expiring", vocab.duration, doc="a duration such as 7d: only what expires within it"
    )
    env.add_shortcode(
        "credit_balance",
        credit_balance,
        attributes=[field, window],
        description="The contact's credit balance (0 when the contact has none; nothing for "
        "anonymous visitors); with expiring, the part that expires within that time.",
        example='You have [credit_balance field="_Credits"] credits.',
    )
    env.add_shortcode(
        "credit_history",
        credit_history,
        attributes=[
            field,
            Attribute("limit", int, default=10, doc="how many entries, newest first (0 for all)"),
            window,
        ],
        description="The contact's ledger entries for a credit field, newest first, as a table; "
        "with expiring, then the credits that expire within that time.",
        example='[credit_history field="_Credits" limit="5"]',
    )
    env.add_shortcode(
        "credit_grants",
        credit_grants,
        attributes=[field],
        description="The contact's credits of a field by grant: left, source, paid or "
        "promotional, and expiry, after what the contact owes if a refund took it below zero "
        "(account pages).",
        example='[credit_grants field="_Credits"]',
    )
