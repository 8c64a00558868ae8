"""Host state: the per-app objects every view needs (store, site, engine, pages, signer, theme).

One :class:`HostState` lives in ``app.extensions["shortcodes"]``; views reach it with
:func:`host`. Nothing here is per-request; per-request values (the contact) live on ``flask.g``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flask import abort, current_app, g, session

from shortcodes.automations.rules import AutomationConfig
from shortcodes.automations.shortcodes import with_points
from shortcodes.context import Contact
from shortcodes.environment import Environment
from shortcodes.errors import UnknownContact
from shortcodes.membership.signing import AccountSigner, ActionSigner
from shortcodes.payments.stripe_settings import StripeSettings
from shortcodes.store.facade import Store
from shortcodes.themes import Theme

if TYPE_CHECKING:
    from shortcodes.host.pages import PageStore
    from shortcodes.membership.site import SiteSettings

EXTENSION = "shortcodes"


@dataclass(slots=True)
class HostState:
    """Everything the host's views share for the life of the app."""

    site: SiteSettings
    store: Store
    env: Environment
    pages: PageStore
    signer: ActionSigner
    theme: Theme
    #: The site's automation settings (rules run in the worker; loyalty is read on every page).
    automations: AutomationConfig = field(default_factory=AutomationConfig)
    #: The Stripe secrets and API address (from ``SHORTCODES_STRIPE_*``); empty: not configured.
    stripe: StripeSettings = field(default_factory=StripeSettings)
    #: Signs account links (verify, reset, email change) and the known-device cookie.
    links: AccountSigner | None = None

    @property
    def account_signer(self) -> AccountSigner:
        """The account-link signer (set by the app factory)."""
        if self.links is None:
            raise RuntimeError("the host was built without an account signer")
        return self.links


def host() -> HostState:
    """The state of the current app."""
    state: HostState = current_app.extensions[EXTENSION]
    return state


#: The session cookie's key holding the server-side session token (see ``store.identity``).
SESSION_KEY = "sid"


def session_contact_id() -> int | None:
    """The contact of this request's server-side session (one indexed read), or None. A cookie
    whose session ended (logout, password change, "log out everywhere") is cleared."""
    token = session.get(SESSION_KEY)
    if not isinstance(token, str):
        return None
    found = host().store.accounts().session_contact(token)
    if found is None:
        session.clear()
    return found


def current_contact() -> Contact | None:
    """The logged-in contact (a fresh snapshot, read once per request), or None."""
    if "contact" in g:
        found: Contact | None = g.contact
        return found
    contact = None
    contact_id = session_contact_id()
    if contact_id is not None:
        try:
            state = host()
            contact = with_points(
                state.store, state.automations.loyalty, state.store.get_contact(contact_id)
            )
        except UnknownContact:
            session.clear()  # the contact was deleted: the session means nothing any more
    g.contact = contact
    return contact


def signed_in() -> Contact:
    """The logged-in contact, for views behind ``login_required`` (401 should there be none)."""
    contact = current_contact()
    if contact is None:
        abort(401)
    return contact


def is_admin(contact: Contact | None) -> bool:
    """True when the contact holds the site's admin tag."""
    return contact is not None and contact.has_tag(host().site.admin_tag)
