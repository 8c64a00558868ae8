"""Host account data: balances and ledger history for account pages, read before rendering.

Rendering never touches the database, so the host reads what an account page needs up front and
hands it to the page through ``Context.extra``: ``balances`` (field -> balance), ``balance`` (the
first credit field) and ``credit_history`` (the newest ledger entries, newest first, in the
form the ``credit_history`` builtin reads).
Only the logged-in contact's own data is ever read here.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from shortcodes.builtin.credits import GRANTS_KEY, HISTORY_KEY, NOW_KEY
from shortcodes.context import Contact
from shortcodes.store.facade import Store
from shortcodes.store.grants import Grant
from shortcodes.store.ledger import Entry
from shortcodes.store.session import to_db_time

HISTORY_LIMIT = 20


def account_data(store: Store, contact: Contact, limit: int = HISTORY_LIMIT) -> dict[str, Any]:
    """Balances, the newest ``limit`` ledger entries and the live grants of ``contact``, with
    amounts as people read them (``2.50`` on a field with two decimals)."""
    fields = store.site.credit_fields
    balances = {name: contact.balance(name) or 0 for name in fields}
    page = store.history(contact.id, None, limit)
    return {
        "balances": balances,
        "balance": balances[fields[0]],
        HISTORY_KEY: [_shown_entry(store, e) for e in page.entries],
        GRANTS_KEY: [_shown_grant(store, contact.id, g) for g in store.grants(contact.id)],
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
