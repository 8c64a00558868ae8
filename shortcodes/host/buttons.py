"""Host actions: ``POST /actions/<action_id>`` verifies a button's token and runs its actionset.

CSRF is checked first (CSRFProtect, for every POST). Then the signed token must be ours, fresh,
issued to the logged-in contact and for this action; its parameters (never form fields) bind the
actionset, and its nonce is the idempotency key, so a double submit runs once and the replay is
answered with the first run's message. The outcome is flashed and the visitor goes back.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, request
from flask.typing import ResponseReturnValue

from shortcodes.errors import (
    ActionTokenError,
    ActionTokenExpired,
    ActionTokenWrongAction,
    ActionTokenWrongContact,
    IdempotencyConflict,
    StoreError,
    UnknownAction,
)
from shortcodes.host.auth import login_required, safe_target
from shortcodes.host.render import InertSigner
from shortcodes.host.state import host, signed_in
from shortcodes.host.views import error_page
from shortcodes.store.runner import RunResult
from shortcodes.store.session import Actor

bp = Blueprint("actions", __name__)
log = logging.getLogger("shortcodes.host")


def back_url() -> str:
    """Where to go back to: the form's ``redirect_url``/``next``, the same-site referrer, or /."""
    for name in ("redirect_url", "next"):
        target = safe_target(request.form.get(name), "")
        if target:
            return target
    referrer = request.referrer or ""
    parts = urlsplit(referrer)
    if parts.netloc == request.host and parts.scheme in ("http", "https"):
        return safe_target(parts.path + ("?" + parts.query if parts.query else ""))
    return "/"


@bp.post("/actions/<action_id>")
@login_required
def run(action_id: str) -> ResponseReturnValue:
    """Verify the token and run the actionset once; flash the outcome and redirect back."""
    contact = signed_in()
    state = host()
    if request.form.get("token") == InertSigner.TOKEN:
        return error_page(
            400,
            "Preview button",
            "This button was shown in a preview: it is inert and did nothing.",
        )
    try:
        claim = state.signer.verify_action(request.form.get("token", ""), contact.id, action_id)
    except ActionTokenExpired:
        flash("That button had expired, so nothing happened. Please try again.", "error")
        return redirect(back_url(), 303)
    except (ActionTokenWrongContact, ActionTokenWrongAction) as exc:
        log.warning("refused action %s for contact %s: %s", action_id, contact.id, exc)
        return error_page(403, "Not your button", "This button was not made for you.")
    except ActionTokenError:
        return error_page(400, "Invalid button", "This button is not valid. Reload the page.")
    actor = Actor("visitor", str(contact.id))
    try:
        result = state.store.run_actionset(
            action_id, contact.id, dict(claim.params), claim.idempotency_key, actor
        )
    except UnknownAction:
        return error_page(404, "Unknown action", "This site has no such action.")
    except IdempotencyConflict:
        return error_page(409, "Button already used", "This button was used for something else.")
    except StoreError as exc:
        log.error("actionset %s failed for contact %s: %s", action_id, contact.id, exc)
        return error_page(422, "Could not do that", str(exc))
    flash_result(result)
    target = result.redirect if result.ok and result.redirect else back_url()
    return redirect(safe_target(target, back_url()), 303)


def flash_result(result: RunResult) -> None:
    """Tell the visitor what happened (a replay says it already happened)."""
    if result.outcome == "insufficient":
        flash(result.message, "error")
    elif result.replayed:
        flash(f"Already done: {result.message}", "info")
    else:
        flash(result.message, "success")
