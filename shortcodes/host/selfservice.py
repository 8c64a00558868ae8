"""Host self-service accounts: sign-up with a verified email, password reset, account settings.

* ``/signup`` (when ``[accounts] signup`` is ``open``, or ``invite`` for contacts the site already
  has) records a pending sign-up and emails a signed link; ``/verify?token=`` asks for one click
  (a POST, so a mail scanner fetching the link changes nothing), then creates the contact and
  logs the browser in.
* ``/reset`` emails a link valid for an hour; ``/reset/new?token=`` sets a new password once (the
  link binds a digest of the old password hash) and ends every session of the contact.
* ``/account/settings`` changes the name, the email (confirmed by a link sent to the new address,
  ``/account/email?token=``) and the password (which ends every other session), and logs out
  everywhere.

Every email goes through the outbox (templates ``account-*`` in the site's ``emails/`` folder or
the package's). The sign-up and reset forms answer exactly the same page whether or not the email
has an account, and do the same work either way (one password hash for sign-up, one queued email
each), so neither the answer nor its time tells who is a member; the emails themselves say what
applies. Each form's emails are limited per typed address and per visitor address
(``[accounts]``), answered 429 past the limit.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.security import generate_password_hash

from shortcodes.errors import InvalidInput
from shortcodes.host.auth import MAX_FIELD, end_session, login_required, start_session
from shortcodes.host.render import host_template, simple_page
from shortcodes.host.state import current_contact, host, signed_in
from shortcodes.membership import vocabulary as vocab
from shortcodes.membership.signing import digest
from shortcodes.store.events import enqueue
from shortcodes.store.session import Tx

bp = Blueprint("selfservice", __name__)


def field(name: str, limit: int = MAX_FIELD) -> str:
    """A form field, refused (:class:`InvalidInput`, shown above the form with a 400) when longer
    than ``limit``: nothing is cut silently."""
    value = request.form.get(name, "")
    if len(value) > limit:
        raise InvalidInput(f"{name} is longer than {limit} characters")
    return value


def checked(check: Any, value: str) -> Any:
    """``check(value)``, an :class:`InvalidInput` with its message when it refuses."""
    try:
        return check(value)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def queue_mail(template: str, email: str, contact_id: int | None, **values: Any) -> None:
    """Queue an account email in the outbox (delivered by the worker, like every email)."""
    state = host()
    payload = {"template": template, "email": email, "site": state.site.name, **values}
    key = f"account:{template}:{uuid.uuid4().hex}"

    def work(tx: Tx) -> None:
        enqueue(tx, "email", key, payload, contact_id)

    state.store.run_in_transaction(work)


def link(endpoint: str, token: str | None = None) -> str:
    """The absolute URL of an emailed link (the site's ``url`` when set, else this host)."""
    path = url_for(endpoint) if token is None else url_for(endpoint, token=token)
    base = host().site.url.rstrip("/") or request.host_url.rstrip("/")
    return base + path


def form_html(title: str, template: str, **values: Any) -> str:
    """One of the account forms in the theme's page layout."""
    return simple_page(title, host_template(template, **values), current_contact())


def form_page(title: str, template: str, status: int = 200, **values: Any) -> ResponseReturnValue:
    """:func:`form_html` answered with ``status``."""
    return form_html(title, template, **values), status


def mail_allowed(kind: str, email: str) -> bool:
    """Record an account email to ``email`` unless a limit of ``[accounts]`` is reached."""
    state = host()
    policy = state.site.accounts.mail
    address = request.remote_addr or "unknown"
    return state.store.accounts().claim_mail(kind, email, address, policy)


def too_many(title: str, template: str) -> ResponseReturnValue:
    """The answer past the email limit (the same whoever the email belongs to)."""
    flash("Too many emails were requested. Try again in an hour.", "error")
    seconds = int(host().site.accounts.mail.window.total_seconds())
    return form_html(title, template), 429, {"Retry-After": str(seconds)}


# -- sign-up -------------------------------------------------------------------------------------


@bp.get("/signup")
def signup_page() -> ResponseReturnValue:
    """The sign-up form (403 with a sentence when the site does not take sign-ups)."""
    if host().site.accounts.signup == "closed":
        return form_page("Sign up", "signup", 403, closed=True)
    return form_page("Sign up", "signup", invite=host().site.accounts.signup == "invite")


@bp.post("/signup")
def signup() -> ResponseReturnValue:
    """Record a sign-up and email its verification link (see the module docstring)."""
    mode = host().site.accounts.signup
    if mode == "closed":
        return form_page("Sign up", "signup", 403, closed=True)
    try:
        name = checked(_name, field("name", 200))
        email = checked(vocab.email, field("email"))
        password = checked(vocab.password, field("password"))
    except InvalidInput as exc:
        flash(str(exc), "error")
        return form_page("Sign up", "signup", 400, typed_name=request.form.get("name", "")[:200])
    if not mail_allowed("signup", email):
        return too_many("Sign up", "signup")
    _signup_mail(mode, email, name, password)
    return form_page("Check your email", "mail_sent", email=email)


def _name(value: str) -> str:
    from shortcodes.store.identity import check_name

    clean = check_name(value)
    if not clean:
        raise ValueError("give your name")
    return clean


def _signup_mail(mode: str, email: str, name: str, password: str) -> None:
    """Queue the one email this sign-up gets: the verification link, or why there is none."""
    state = host()
    accounts = state.store.accounts()
    found = accounts.account_state(email)
    if (found is None and mode == "open") or (found is not None and not found[1]):
        signup_id = accounts.add_signup(email, name, password)  # hashes the password
        token = state.account_signer.sign("verify", {"s": signup_id, "e": email})
        queue_mail("account-verify", email, None, name=name, link=link("selfservice.verify", token))
        return
    generate_password_hash(password)  # the same work as a real sign-up: timing says nothing
    template = "account-exists" if found is not None else "account-invite-only"
    queue_mail(template, email, None, name=name, link=link("selfservice.reset_page"))


@bp.get("/verify")
def verify_page() -> ResponseReturnValue:
    """Ask for one click to confirm (a GET changes nothing: mail scanners follow links)."""
    token = request.args.get("token", "")
    if host().account_signer.load("verify", token) is None:
        return _dead_link()
    return form_page("Confirm your email", "confirm", action=url_for("selfservice.verify"),
                     token=token, button="Confirm and log in")  # fmt: skip


@bp.post("/verify")
def verify() -> ResponseReturnValue:
    """Create the contact of a verified sign-up and log this browser in."""
    payload = host().account_signer.load("verify", field("token", 4096))
    signup_id, email = (payload or {}).get("s"), (payload or {}).get("e")
    if not (isinstance(signup_id, int) and isinstance(email, str)):
        return _dead_link()
    contact_id = host().store.accounts().complete_signup(signup_id, email)
    if contact_id is None:
        return _dead_link()
    start_session(contact_id)
    flash("Your email is confirmed and you are logged in. Welcome!", "success")
    return redirect("/account", 303)


def _dead_link() -> ResponseReturnValue:
    return form_page("Link not valid", "dead_link", 400)


# -- password reset ------------------------------------------------------------------------------


@bp.get("/reset")
def reset_page() -> ResponseReturnValue:
    """The form asking for the email to send a reset link to."""
    return form_page("Reset your password", "reset_request")


@bp.post("/reset")
def reset() -> ResponseReturnValue:
    """Email a reset link (or, for an unknown email, a note saying there is no account)."""
    try:
        email = checked(vocab.email, field("email"))
    except InvalidInput as exc:
        flash(str(exc), "error")
        return form_page("Reset your password", "reset_request", 400)
    if not mail_allowed("reset", email):
        return too_many("Reset your password", "reset_request")
    state = host()
    found = state.store.accounts().account_state(email)
    # Both branches sign a token and queue one email with no contact row to reference: the same
    # work, so the same time (bench/accounts.py; a contact reference measurably slowed one side).
    contact_id, current = found or (0, "")
    token = state.account_signer.sign("reset", {"c": contact_id, "h": digest(current)})
    if found is None:
        queue_mail("account-unknown", email, None, link=link("selfservice.signup_page"))
    else:
        queue_mail("account-reset", email, None, link=link("selfservice.new_password", token))
    return form_page("Check your email", "mail_sent", email=email)


def _reset_claim(token: str) -> tuple[int, str] | None:
    """(contact id, current password hash) while the reset link is unused and unexpired."""
    payload = host().account_signer.load("reset", token) or {}
    contact_id, bound = payload.get("c"), payload.get("h")
    if not (isinstance(contact_id, int) and isinstance(bound, str)):
        return None
    current = host().store.accounts().password_hash(contact_id)
    return (contact_id, current) if digest(current) == bound else None


@bp.get("/reset/new")
def new_password_page() -> ResponseReturnValue:
    """The new-password form of a valid reset link."""
    token = request.args.get("token", "")
    if _reset_claim(token) is None:
        return _dead_link()
    return form_page("Choose a new password", "reset_new", token=token)


@bp.post("/reset/new")
def new_password() -> ResponseReturnValue:
    """Set the new password (once per link) and end every session of the contact."""
    token = field("token", 4096)
    claim = _reset_claim(token)
    if claim is None:
        return _dead_link()
    try:
        password = checked(vocab.password, field("password"))
    except InvalidInput as exc:
        flash(str(exc), "error")
        return form_page("Choose a new password", "reset_new", 400, token=token)
    if not host().store.accounts().set_password(claim[0], password, expected_hash=claim[1]):
        return _dead_link()
    end_session()
    flash("Your password is changed and every session is logged out. Log in with it.", "success")
    return redirect(url_for("auth.login_page"), 303)


# -- settings ------------------------------------------------------------------------------------


@bp.get("/account/settings")
@login_required
def settings_page() -> ResponseReturnValue:
    """Name, email and password forms, and "log out everywhere"."""
    contact = signed_in()
    sessions = host().store.accounts().session_count(contact.id)
    return form_page("Account settings", "settings", contact=contact, sessions=sessions)


@bp.post("/account/settings")
@login_required
def settings() -> ResponseReturnValue:
    """Apply one of the settings forms (``form`` says which)."""
    contact = signed_in()
    try:
        which = request.form.get("form", "")
        if which == "name":
            _change_name(contact.id)
        elif which == "email":
            _change_email(contact.id, contact.email)
        elif which == "password":
            return _change_password(contact.id, contact.email)
        else:
            abort(400)
    except InvalidInput as exc:
        flash(str(exc), "error")
        sessions = host().store.accounts().session_count(contact.id)
        return form_page("Account settings", "settings", 400, contact=contact, sessions=sessions)
    return redirect(url_for("selfservice.settings_page"), 303)


def _change_name(contact_id: int) -> None:
    name = checked(_name, field("name", 200))
    host().store.accounts().set_name(contact_id, name)
    flash("Your name is changed.", "success")


def _current_password(email: str) -> None:
    if host().store.check_password(email, field("current_password")) is None:
        raise InvalidInput("your current password is not right")


def _change_email(contact_id: int, old: str) -> None:
    new = checked(vocab.email, field("email"))
    _current_password(old)
    if not mail_allowed("email", new):
        raise InvalidInput("too many emails were requested; try again in an hour")
    token = host().account_signer.sign("email", {"c": contact_id, "o": old, "n": new})
    queue_mail("account-email", new, contact_id, link=link("selfservice.email_page", token))
    flash(f"We sent a link to {new}. Your email changes when you follow it.", "success")


def _change_password(contact_id: int, email: str) -> ResponseReturnValue:
    password = checked(vocab.password, field("password"))
    _current_password(email)
    host().store.accounts().set_password(contact_id, password)  # ends every session
    start_session(contact_id)  # ...but this browser stays logged in with a new one
    flash("Your password is changed; every other session is logged out.", "success")
    return redirect(url_for("selfservice.settings_page"), 303)


@bp.post("/account/sessions/end")
@login_required
def logout_everywhere() -> ResponseReturnValue:
    """End every session of the contact, this one included."""
    host().store.accounts().end_all_sessions(signed_in().id)
    end_session()
    flash("You are logged out everywhere.", "success")
    return redirect(url_for("auth.login_page"), 303)


@bp.get("/account/email")
def email_page() -> ResponseReturnValue:
    """Ask for one click to confirm a new email (a GET changes nothing)."""
    token = request.args.get("token", "")
    if host().account_signer.load("email", token) is None:
        return _dead_link()
    return form_page("Confirm your new email", "confirm", action=url_for("selfservice.confirm_email"),
                     token=token, button="Use this email")  # fmt: skip


@bp.post("/account/email")
def confirm_email() -> ResponseReturnValue:
    """Move the contact to the confirmed new email (once: the link binds the old one)."""
    payload = host().account_signer.load("email", field("token", 4096)) or {}
    contact_id, old, new = payload.get("c"), payload.get("o"), payload.get("n")
    if not (isinstance(contact_id, int) and isinstance(old, str) and isinstance(new, str)):
        return _dead_link()
    if not host().store.accounts().change_email(contact_id, old, new):
        return _dead_link()
    flash(f"Your email is now {new}.", "success")
    return redirect("/account", 303)
