"""Host account data: balances and ledger history for account pages, read before rendering.

Rendering never touches the database, so the host reads what an account page needs up front and
hands it to the page through ``Context.extra``: ``balances`` (field -> balance), ``balance`` (the
first credit field) and ``credit_history`` (the newest ledger entries, newest first, in the
form the ``credit_history`` builtin reads).
Only the logged-in contact's own data is ever read here.
"""

from __future__ import annotations

from typing import Any

from shortcodes.builtin.credits import HISTORY_KEY
from shortcodes.context import Contact
from shortcodes.store.facade import Store

HISTORY_LIMIT = 20


def account_data(store: Store, contact: Contact, limit: int = HISTORY_LIMIT) -> dict[str, Any]:
    """Balances and the newest ``limit`` ledger entries of ``contact``."""
    fields = store.site.credit_fields
    balances = {name: contact.balance(name) or 0 for name in fields}
    page = store.history(contact.id, None, limit)
    return {
        "balances": balances,
        "balance": balances[fields[0]],
        HISTORY_KEY: list(page.entries),
    }
