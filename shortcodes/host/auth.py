"""Host authentication: login with hashed passwords, logout, and the session cookie's settings.

A login starts a server-side session (:mod:`shortcodes.store.identity`): the signed cookie holds
only its random token, and every request looks the session up, so logout (which deletes it), a
password change and "log out everywhere" refuse every copy of the cookie afterwards. The cookie is
cleared and re-issued at login so a session planted before login is worth nothing.

Password guesses are limited per account and per address by the store's login throttle
(``[login]`` in ``site.toml``): past a limit the form answers 429 with ``Retry-After`` and the
password is not checked. A successful login also sets a signed, year-long **device cookie**
naming (by digest) the accounts this browser has logged into; from such a browser a correct
password is not held by the per-address limit, so strangers behind the same NAT or proxy cannot
lock a regular user out (see :mod:`shortcodes.store.throttle`). The cookie settings (HttpOnly,
SameSite=Lax, Secure when configured) are defaults of :mod:`shortcodes.host.app`.

Views that need a visitor say so with :func:`login_required` (anonymous visitors are sent to the
login page and come back afterwards) or :func:`admin_required` (the same, and 403 for a contact
without the site's admin tag). Every redirect target a visitor can influence goes through
:func:`safe_target`, whose decision is :func:`shortcodes.builtin.common.is_local_path`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from markupsafe import Markup
from werkzeug.wrappers import Response

from shortcodes.automations.dispatch import record_login
from shortcodes.builtin.common import is_local_path
from shortcodes.host.render import host_template, simple_page
from shortcodes.host.state import SESSION_KEY, current_contact, host, is_admin
from shortcodes.membership.signing import digest
from shortcodes.store.throttle import Locked, email_key

bp = Blueprint("auth", __name__)
log = logging.getLogger(__name__)

#: Longest email and password the form accepts (werkzeug hashes whatever it is given).
MAX_FIELD = 320
#: The known-device cookie, and how many accounts one browser remembers.
DEVICE_COOKIE = "shortcodes_device"
DEVICE_ACCOUNTS = 5


P = ParamSpec("P")


def safe_target(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path on this site (:func:`is_local_path`), else ``default``."""
    return target if target and is_local_path(target) else default


def login_required(view: Callable[P, ResponseReturnValue]) -> Callable[P, ResponseReturnValue]:
    """Run ``view`` for a logged-in contact; send anyone else to the login page."""

    @functools.wraps(view)
    def checked(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
        if current_contact() is None:
            return login_redirect()
        return view(*args, **kwargs)

    return checked


def admin_required(view: Callable[P, ResponseReturnValue]) -> Callable[P, ResponseReturnValue]:
    """Run ``view`` for a contact holding the site's admin tag: anonymous visitors are sent to
    the login page, other contacts get 403."""

    @functools.wraps(view)
    def checked(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
        contact = current_contact()
        if contact is None:
            return login_redirect()
        if not is_admin(contact):
            abort(403)
        return view(*args, **kwargs)

    return checked


def login_form(next_url: str, email: str = "") -> Markup:
    """The login form (``host/login.html``: escaped values, CSRF token included)."""
    return host_template("login", next_url=next_url, email=email)


@bp.get("/login")
def login_page() -> ResponseReturnValue:
    """Show the login form (or go on if already logged in)."""
    next_url = safe_target(request.args.get("next"))
    contact = current_contact()
    if contact is not None:
        return redirect(next_url)
    return simple_page("Log in", login_form(next_url), None)


@bp.post("/login")
def login() -> ResponseReturnValue:
    """Check the password; on success start a fresh session and go to ``next``."""
    email = request.form.get("email", "")[:MAX_FIELD]
    password = request.form.get("password", "")[:MAX_FIELD]
    next_url = safe_target(request.form.get("next"))
    if not (email and password):
        return _refused(next_url, email)
    state = host()
    throttle = state.store.login_throttle(state.site.login)
    known = _email_digest(email) in known_accounts()
    address = request.remote_addr or "unknown"
    contact = throttle.check_password(email, password, address, known_device=known)
    if isinstance(contact, Locked):
        return _locked(next_url, email, contact)
    if contact is None:
        return _refused(next_url, email)
    start_session(contact.id)
    contact_id = contact.id
    state.store.run_in_transaction(lambda tx: record_login(tx, contact_id))  # `login` rules
    flash(f"Welcome, {contact.field('Name') or contact.email}.", "success")
    response = redirect(next_url, 303)
    remember_device(response, email)
    return response


def start_session(contact_id: int) -> None:
    """Log this browser in as the contact: a new server-side session in a fresh cookie."""
    token = host().store.accounts().start_session(contact_id)
    session.clear()
    session.permanent = True
    session[SESSION_KEY] = token


def end_session() -> None:
    """End this browser's server-side session and clear its cookie."""
    token = session.get(SESSION_KEY)
    if isinstance(token, str):
        host().store.accounts().end_session(token)
    session.clear()


def _email_digest(email: str) -> str:
    return digest(email_key(email))


def known_accounts() -> list[str]:
    """The account digests this browser's device cookie vouches for (empty when none/invalid)."""
    payload = host().account_signer.load("device", request.cookies.get(DEVICE_COOKIE, ""))
    found = payload.get("a") if payload else None
    return [a for a in found if isinstance(a, str)] if isinstance(found, list) else []


def remember_device(response: Response, email: str) -> None:
    """Add the account to this browser's device cookie (newest first, a few accounts)."""
    mine = _email_digest(email)
    accounts = [mine, *(a for a in known_accounts() if a != mine)][:DEVICE_ACCOUNTS]
    token = host().account_signer.sign("device", {"a": accounts})
    response.set_cookie(
        DEVICE_COOKIE,
        token,
        max_age=365 * 86400,
        httponly=True,
        samesite="Lax",
        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
    )


def _refused(next_url: str, email: str) -> ResponseReturnValue:
    flash("That email and password do not match an account.", "error")
    return simple_page("Log in", login_form(next_url, email), None), 401


def _locked(next_url: str, email: str, locked: Locked) -> ResponseReturnValue:
    # Logged for the operator (``python -m shortcodes contacts unlock EMAIL`` lifts an account's
    # lock); the visitor hears the same sentence whichever limit it was.
    log.warning(
        "login refused unchecked: %s reached for %r from %s", locked.limit, email,
        request.remote_addr,
    )  # fmt: skip
    minutes = locked.minutes
    flash(
        f"Too many failed logins. Try again in {minutes} minute{'s' if minutes > 1 else ''}.",
        "error",
    )
    page = simple_page("Log in", login_form(next_url, email), None)
    return page, 429, {"Retry-After": str(locked.seconds)}


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """End the session on the server (a copy of the cookie is refused afterwards)."""
    end_session()
    flash("You are logged out.", "success")
    return redirect("/", 303)


def login_redirect() -> ResponseReturnValue:
    """Send an anonymous visitor to the login page, coming back here afterwards."""
    target = request.full_path.rstrip("?") if request.query_string else request.path
    return redirect(url_for("auth.login_page", next=target))
