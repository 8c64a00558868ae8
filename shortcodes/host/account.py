"""Host account data: balances, ledger history and tag expiries for pages, read before rendering.

Rendering never touches the database, so the host reads what a page asks for in its front matter
up front and hands it to the page through ``Context.extra``. ``data: account`` gives
``balances`` (field -> balance), ``balance`` (the first credit field) and ``credit_history``
(the newest ledger entries, newest first, in the form the ``credit_history`` builtin reads);
``data: tags`` gives ``tag_expiry`` (tag name, casefolded -> when it expires), which the
``[tag_expiry]`` shortcode prints ("the lock ends on ..."). Only the logged-in contact's own data
is ever read here.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from shortcodes.builtin.credits import DEBTS_KEY, GRANTS_KEY, HISTORY_KEY, NOW_KEY
from shortcodes.context import Contact, Context
from shortcodes.environment import Environment
from shortcodes.registry import Attribute
from shortcodes.runtime import Shortcode
from shortcodes.store import console
from shortcodes.store.facade import Store
from shortcodes.store.grants import Grant
from shortcodes.store.ledger import Entry
from shortcodes.store.session import run_read, to_db_time

HISTORY_LIMIT = 20
#: The ``ctx.extra`` key holding the contact's tag expiries.
EXPIRY_KEY = "tag_expiry"
EXPIRY_FORMAT = "%d %B %Y at %H:%M UTC"


def account_data(store: Store, contact: Contact, limit: int = HISTORY_LIMIT) -> dict[str, Any]:
    """Balances, the newest ``limit`` ledger entries, the live grants and the debts of
    ``contact``, with amounts as people read them (``2.50`` on a field with two decimals)."""
    fields = store.site.credit_fields
    balances = {name: contact.balance(name) or 0 for name in fields}
    page = store.history(contact.id, None, limit)
    return {
        "balances": balances,
        "balance": balances[fields[0]],
        HISTORY_KEY: [_shown_entry(store, e) for e in page.entries],
        GRANTS_KEY: [_shown_grant(store, contact.id, g) for g in store.grants(contact.id)],
        DEBTS_KEY: [
            {"contact_id": contact.id, "field": name, "owed": store.site.policy(name).show(units)}
            for name, units in store.debts(contact.id).items()
        ],
        NOW_KEY: to_db_time(store.clock()),
    }


def _shown_entry(store: Store, entry: Entry) -> Any:
    policy = store.site.policy(entry.field)
    if not policy.decimals:
        return entry
    return asdict(entry) | {
        "delta": policy.show(entry.delta),
        "balance_after": policy.show(entry.balance_after),
    }


def _shown_grant(store: Store, contact_id: int, grant: Grant) -> dict[str, Any]:
    policy = store.site.policy(grant.field)
    return asdict(grant) | {
        "contact_id": contact_id,
        "remaining": policy.show(grant.remaining),
        "amount": policy.show(grant.amount),
        "expires_at": None if grant.expires_at is None else to_db_time(grant.expires_at),
    }


def tag_data(store: Store, contact: Contact) -> dict[str, Any]:
    """When each of the contact's expiring tags expires (tags held for good are left out)."""
    now = to_db_time(store.clock())
    rows = run_read(store.engine, lambda conn: console.held_tags(conn, contact.id, now))
    return {EXPIRY_KEY: {r.name.casefold(): r.expires_at for r in rows if r.expires_at}}


def tag_expiry(sc: Shortcode, ctx: Context) -> str:
    """When the contact's tag ``tag`` expires (UTC), or ``default`` when it does not."""
    expiries: dict[str, datetime] = ctx.extra.get(EXPIRY_KEY) or {}
    found = expiries.get(str(sc.attrs.get("tag", "")).casefold())
    if found is None:
        return str(sc.attrs.get("default", ""))
    return found.strftime(str(sc.attrs.get("format") or EXPIRY_FORMAT))


def register_account_shortcodes(env: Environment) -> None:
    """Register ``[tag_expiry]`` through the public API."""
    env.add_shortcode(
        "tag_expiry",
        tag_expiry,
        attributes=[
            Attribute("tag", str, required=True, doc="the tag whose expiry to print"),
            Attribute("default", str, default="", doc="printed when the tag does not expire"),
            Attribute("format", str, default=EXPIRY_FORMAT, doc="a strftime format"),
        ],
        example='[tag_expiry tag="Lock Field Guide"] (needs "data: tags" in the front matter)',
    )
