"""Host admin console: run the site from the browser at ``/admin`` (admins only).

Pages: an overview; the contact list (search by name or email, filter by tag, pages of 50); a
contact's page (fields, tags with their expiry, balances, ledger history, button and automation
runs, pending steps, outbox messages, audit trail, links to preview pages as the contact); the
site-wide logs of inbound webhooks, Stripe events, outbound deliveries and emails; the result of
``ledger verify``; failed logins, with a button to lift a lock; the audit trail. Payment health
(``/admin/payments``, from :mod:`shortcodes.payments.buying`) and the page editor
(``/admin/pages``, when installed) share the console's navigation (:func:`console_page`).

Every route is behind :func:`~shortcodes.host.auth.admin_required`, every POST is CSRF-checked
by the app, and every change is recorded with the admin as actor: credit adjustments as ledger
entries (actor ``admin``), everything else (tags, sessions, locks) in the audit trail, in the
change's own transaction.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from shortcodes.automations.drip import active_text
from shortcodes.context import Contact
from shortcodes.errors import InsufficientCredits, InvalidInput, StoreError, UnknownContact
from shortcodes.host.auth import admin_required
from shortcodes.host.render import host_template, simple_page
from shortcodes.host.state import host, signed_in
from shortcodes.membership import vocabulary as vocab
from shortcodes.store import console, contacts, ledger
from shortcodes.store.contacts import MAX_ID
from shortcodes.store.identity import audit
from shortcodes.store.session import Actor, Tx, run_read, to_db_time
from shortcodes.store.throttle import address_key, email_key, forget

bp = Blueprint("admin", __name__, url_prefix="/admin")

#: The console's sections: (label, path). "Pages" appears when the page editor is installed.
NAV = (
    ("Overview", "/admin"),
    ("Contacts", "/admin/contacts"),
    ("Logs", "/admin/logs"),
    ("Ledger", "/admin/ledger"),
    ("Login locks", "/admin/locks"),
    ("Audit trail", "/admin/audit"),
    ("Payments", "/admin/payments"),
    ("Pages", "/admin/pages"),
)
MAX_PAGE = 100_000


def nav() -> list[tuple[str, str]]:
    """The console's sections that this app serves (an uninstalled one is left out)."""
    rules = {rule.rule.rstrip("/") or "/" for rule in current_app.url_map.iter_rules()}
    return [(label, path) for label, path in NAV if path in rules]


def console_page(title: str, body: Markup) -> ResponseReturnValue:
    """A console page: the section navigation above ``body``, in the theme's page layout."""
    menu = host_template("admin_nav", nav=nav(), here=request.path)
    return simple_page(title, menu + body, signed_in()), 200


def actor() -> Actor:
    """The admin making this request, as the actor of what it changes."""
    return Actor("admin", signed_in().email)


def read(work: Any) -> Any:
    """Run a read of :mod:`shortcodes.store.console` on the site's database."""
    return run_read(host().store.engine, work)


def now() -> Any:
    """The store's time, as the database keeps it."""
    return to_db_time(host().store.clock())


def bounded_page() -> int:
    """The ``page`` query argument: a whole number from 1 (400 otherwise)."""
    text = request.args.get("page", "1")
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text[:7]) <= MAX_PAGE:
        abort(400, "page is a whole number from 1")
    return int(text)


def contact_or_404(contact_id: int) -> Contact:
    """The contact with this id (404 for none, ids past 32 bits included)."""
    if not 0 < contact_id <= MAX_ID:
        abort(404)
    try:
        return host().store.get_contact(contact_id)
    except UnknownContact:
        abort(404)


# -- pages ---------------------------------------------------------------------------------------


@bp.get("", strict_slashes=False)
@admin_required
def overview() -> ResponseReturnValue:
    """Counts at a glance and the ledger's state."""
    state = host()
    listing = read(lambda conn: console.contact_list(conn, per_page=1))
    pending = read(lambda conn: console.outbox(conn, limit=1000))
    waiting = sum(1 for row in pending if row.status in ("pending", "sending"))
    dead = sum(1 for row in pending if row.status == "dead")
    body = host_template(
        "admin_overview",
        contacts=listing.total,
        waiting=waiting,
        dead=dead,
        signup=state.site.accounts.signup,
    )
    return console_page("Admin", body)


@bp.get("/contacts")
@admin_required
def contact_list() -> ResponseReturnValue:
    """Contacts by name or email, filtered by a tag, a page at a time."""
    search = request.args.get("q", "")[:320]
    tag_name = request.args.get("tag", "")[:200]
    page = bounded_page()
    tag_id = None
    if tag_name:
        try:
            tag_id = host().store.get_tag(tag_name).id
        except StoreError:
            flash(f"There is no tag {tag_name!r}.", "error")
            tag_id = -1
    at = now()
    listing = read(lambda conn: console.contact_list(conn, search, tag_id, page, now=at))
    tags = read(lambda conn: console.tag_list(conn, at))
    body = host_template("admin_contacts", listing=listing, q=search, tag=tag_name, tags=tags)
    return console_page("Contacts", body)


@bp.get("/contacts/<int:contact_id>")
@admin_required
def contact_page(contact_id: int) -> ResponseReturnValue:
    """Everything about one contact, and the forms that change it."""
    state = host()
    contact = contact_or_404(contact_id)
    at = now()

    def gather(conn: Any) -> dict[str, Any]:
        return {
            "tags": console.held_tags(conn, contact_id, at),
            "runs": console.actionset_runs(conn, contact_id, 20),
            "automations": console.automation_runs(conn, contact_id, 20),
            "steps": console.pending_steps(conn, contact_id, 20),
            "drips": console.drip_positions(conn, contact_id),
            "messages": console.outbox(conn, contact_id=contact_id, limit=20),
            "audit": console.audit_trail(conn, contact_id, 20),
        }

    body = host_template(
        "admin_contact",
        contact=contact,
        history=state.store.history(contact_id, None, 50).entries,
        fields=state.store.site.credit_fields,
        all_tags=sorted(state.store.site.tags),
        pages=state.pages.all_urls(),
        sessions=state.store.accounts().session_count(contact_id),
        active_text=active_text,
        **read(gather),
    )
    return console_page(contact.email, body)


@bp.get("/logs")
@admin_required
def logs() -> ResponseReturnValue:
    """Inbound webhooks and Stripe events, outbound deliveries, and emails."""

    def gather(conn: Any) -> dict[str, Any]:
        return {
            "inbound": console.inbound_webhooks(conn),
            "stripe": console.stripe_events(conn),
            "deliveries": console.deliveries(conn),
            "emails": console.outbox(conn, kind="email"),
        }

    return console_page("Logs", host_template("admin_logs", **read(gather)))


@bp.get("/ledger")
@admin_required
def ledger_check() -> ResponseReturnValue:
    """``ledger verify``: replay every entry against the cached balances."""
    report = host().store.verify()
    return console_page("Ledger", host_template("admin_ledger", report=report))


@bp.get("/locks")
@admin_required
def locks() -> ResponseReturnValue:
    """Failed logins inside the window, by email and address, with buttons to lift them."""
    state = host()
    failures = state.store.login_throttle(state.site.login).recent_failures()
    body = host_template("admin_locks", failures=failures, policy=state.site.login)
    return console_page("Login locks", body)


@bp.get("/audit")
@admin_required
def audit_page() -> ResponseReturnValue:
    """The audit trail: every admin change that is not a ledger entry."""
    rows = read(lambda conn: console.audit_trail(conn))
    return console_page("Audit trail", host_template("admin_audit", rows=rows))


# -- changes -------------------------------------------------------------------------------------


def back(contact_id: int) -> ResponseReturnValue:
    """Back to the contact's page (303, so a reload does not post again)."""
    return redirect(url_for("admin.contact_page", contact_id=contact_id), 303)


def refused(contact_id: int, message: str, status: int = 400) -> ResponseReturnValue:
    """Show the contact's page again with what was wrong (nothing was changed)."""
    flash(message, "error")
    page, _ = contact_page.__wrapped__(contact_id)  # type: ignore[attr-defined]
    return page, status


@bp.post("/contacts/<int:contact_id>/tags")
@admin_required
def change_tag(contact_id: int) -> ResponseReturnValue:
    """Apply a tag (for good, or for a duration such as ``14d``) or remove it; audited."""
    contact = contact_or_404(contact_id)
    operation = request.form.get("op", "")
    try:
        tag = host().store.get_tag(request.form.get("tag", "")[:200])
        length = _duration(request.form.get("for", "")) if operation == "apply" else None
    except (StoreError, ValueError) as exc:
        return refused(contact.id, str(exc))
    if operation not in ("apply", "remove"):
        return refused(contact.id, "choose apply or remove")
    who = actor()

    def work(tx: Tx) -> bool:
        cid = contacts.lock_contact(tx, contact.id)
        source = f"admin:{who.id}"[:200]
        if operation == "remove":
            changed = contacts.remove_tag(tx, cid, tag, source)
        else:
            expires = length.after(tx.now) if length is not None else None
            changed = contacts.apply_tag(tx, cid, tag, source, expires)
        detail = {"tag": tag.name, "for": length.text if length else None, "changed": changed}
        audit(tx, who, f"tag.{operation}", cid, detail)
        return changed

    host().store.run_in_transaction(work)
    flash(f"{'Applied' if operation == 'apply' else 'Removed'} {tag.name}.", "success")
    return back(contact.id)


def _duration(text: str) -> vocab.Duration | None:
    return vocab.duration(text.strip()[:40]) if text.strip() else None


@bp.post("/contacts/<int:contact_id>/credits")
@admin_required
def adjust_credits(contact_id: int) -> ResponseReturnValue:
    """Add (``50``) or take (``-50``) credits with a reason: a ledger entry by the admin."""
    contact = contact_or_404(contact_id)
    store = host().store
    reason = request.form.get("reason", "").strip()
    text = request.form.get("amount", "").strip()
    try:
        field = ledger.check_credit_field(store.credit_fields, request.form.get("field", ""))
        amount = vocab.amount_text(text.removeprefix("-"), allow_zero=False)
        if not reason or len(reason) > 400:
            raise InvalidInput("give a reason of 1 to 400 characters")
    except (ValueError, StoreError) as exc:
        return refused(contact.id, str(exc))
    note = f"admin adjustment: {reason}"
    try:
        move = store.debit if text.startswith("-") else store.credit
        result = move(contact.id, amount, field, reason=note, actor=actor())
    except InsufficientCredits as exc:
        return refused(contact.id, str(exc), 409)
    flash(f"{field} is now {result.balances[field]}.", "success")
    return back(contact.id)


@bp.post("/contacts/<int:contact_id>/sessions")
@admin_required
def end_sessions(contact_id: int) -> ResponseReturnValue:
    """Log the contact out everywhere; audited."""
    contact = contact_or_404(contact_id)
    ended = host().store.accounts().end_all_sessions(contact.id, actor())
    flash(f"Ended {ended} session{'s' if ended != 1 else ''}.", "success")
    return back(contact.id)


@bp.post("/locks")
@admin_required
def lift_lock() -> ResponseReturnValue:
    """Forget the failed logins of an email or of an address; audited."""
    state = host()
    email = request.form.get("email", "")[:320]
    address = request.form.get("address", "")[:64]
    if bool(email) == bool(address):
        abort(400, "name an email or an address")
    what = {"email": email_key(email)} if email else {"address": address_key(address)}
    who = actor()

    def work(tx: Tx) -> None:
        lifted = forget(tx, email=email) if email else forget(tx, address=address)
        audit(tx, who, "login.unlock", None, {**what, "attempts": lifted})

    state.store.run_in_transaction(work)  # the lift and its audit row, together
    flash(f"Lifted the lock on {next(iter(what.values()))}.", "success")
    return redirect(url_for("admin.locks"), 303)
