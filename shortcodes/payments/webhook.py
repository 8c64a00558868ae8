"""Payments webhook: ``POST /hooks/stripe``, verified by Stripe's signature, applied once.

The body is verified with ``stripe.Webhook.construct_event`` against the endpoint's signing
secret (``Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]``: any one ``v1`` that
matches is enough, which is how Stripe signs while a rotated secret is still valid; the
timestamp must be within 300 seconds). The event id is then claimed with
:func:`shortcodes.store.idempotency.once` in the same transaction as the event's effects
(:mod:`.mapping`), so a repeated delivery answers 200 ``duplicate: true`` and changes nothing.

Answers follow what Stripe expects: 2xx for every event we received, including the ones we do
not handle (logged); 400 for a body or signature that cannot be trusted; 409 ``deferred`` for an
event that must wait for another (Stripe retries it, and ``stripe reconcile`` picks it up);
never a 500 for bad input. Every verified event's outcome goes to the ``stripe_events`` log the
admin's payment-health view reads.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import stripe
from flask import Blueprint, Response, jsonify, request

from shortcodes.errors import HookError, StoreError
from shortcodes.host.state import host
from shortcodes.membership.site import SiteSettings
from shortcodes.payments import mapping, records
from shortcodes.payments.stripe_client import make_client
from shortcodes.payments.stripe_settings import TOLERANCE, StripeSettings
from shortcodes.store.facade import Store
from shortcodes.store.idempotency import once
from shortcodes.store.session import Actor, Tx

log = logging.getLogger("shortcodes.payments")

bp = Blueprint("stripe_hooks", __name__)

#: Stripe events are a few kilobytes; an invoice with many lines stays well under this.
MAX_BODY = 256 * 1024
SIGNATURE_HEADER = "Stripe-Signature"


def error(status: int, code: str, message: str) -> tuple[dict[str, Any], int]:
    """A JSON error answer (logged: Stripe's dashboard shows only the status)."""
    log.warning("stripe webhook refused (%d %s): %s", status, code, message)
    return {"ok": False, "error": code, "message": message}, status


def verify(body: bytes, header: str | None, settings: StripeSettings) -> dict[str, Any]:
    """The event of a body whose signature checks out, as a plain dict with a usable id, type,
    creation time and object; a :class:`HookError` says what is wrong otherwise."""
    if not settings.can_receive:
        raise HookError(503, "not_configured", "this site has no Stripe webhook secret")
    if not header:
        raise HookError(400, "unsigned", f"send the {SIGNATURE_HEADER} header")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past the stack
        raise HookError(400, "bad_json", "the body is not a JSON event") from None
    if not isinstance(data, dict):  # construct_event assumes an object
        raise HookError(400, "bad_json", "the body must be a JSON object")
    try:
        stripe.Webhook.construct_event(body, header, settings.webhook_secret, TOLERANCE)
    except stripe.SignatureVerificationError as exc:
        raise HookError(400, "bad_signature", str(exc.user_message or exc)) from None
    except ValueError:  # a header stripe cannot read, e.g. a t= of 4,301 digits for int()
        raise HookError(400, "bad_signature", "the signature header cannot be read") from None
    return checked_event(data)


def checked_event(data: Any) -> dict[str, Any]:
    """``data`` if it has the shape every handler relies on, else a 400 :class:`HookError`."""
    if not isinstance(data, dict):
        raise HookError(400, "bad_json", "the body must be a JSON object")
    event_id, kind, created = data.get("id"), data.get("type"), data.get("created")
    if not (isinstance(event_id, str) and event_id.startswith("evt_") and len(event_id) <= 150):
        raise HookError(400, "bad_event", "'id' must be a Stripe event id (evt_…)")
    if not (isinstance(kind, str) and 0 < len(kind) <= 100):
        raise HookError(400, "bad_event", "'type' must be an event type")
    if isinstance(created, bool) or not isinstance(created, int) or not 0 <= created < 2**40:
        raise HookError(400, "bad_event", "'created' must be Unix seconds")
    body = data.get("data")
    if not (isinstance(body, dict) and isinstance(body.get("object"), dict)):
        raise HookError(400, "bad_event", "'data.object' must be an object")
    if mapping.ref(body["object"].get("id")) is None:
        raise HookError(400, "bad_event", "'data.object.id' must be an id of 1 to 255 characters")
    return data


def apply_event(
    store: Store, site: SiteSettings, event: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    """Apply a verified event once: (its result, was it a duplicate). The claim of the event
    id, its effects and its log line commit together; a :class:`HookError` or store refusal
    rolls all of them back and is logged in a transaction of its own."""
    event_id, kind = str(event["id"]), str(event["type"])
    actor = Actor("webhook", f"stripe:{event_id}"[:200])

    def perform(tx: Tx) -> dict[str, Any]:
        outcome = mapping.apply(tx, site, event, actor)
        records.log_event(tx, event_id, kind, event["created"], outcome.status, outcome.message)
        return outcome.as_json()

    def work(tx: Tx) -> tuple[dict[str, Any], bool]:
        return once(
            tx,
            f"stripe:{event_id}",
            "stripe_event",
            None,
            {"type": kind},
            actor,
            lambda _op: perform(tx),
        )

    try:
        return store.run_in_transaction(work)
    except HookError as exc:
        _log_failure(store, event, "deferred" if exc.status == 409 else "failed", exc.message)
        raise
    except StoreError as exc:
        _log_failure(store, event, "failed", str(exc))
        raise HookError(422, "refused", str(exc)) from None


def _log_failure(store: Store, event: dict[str, Any], outcome: str, message: str) -> None:
    store.run_in_transaction(
        lambda tx: records.log_event(
            tx, str(event["id"]), str(event["type"]), event["created"], outcome, message
        )
    )


#: Events whose object is re-read from the API before it is applied: a subscription's status is
#: whatever it is now, not what it was when an event that arrives late was created.
REFRESHED = ("customer.subscription.",)


def refreshed(event: dict[str, Any], settings: StripeSettings) -> dict[str, Any]:
    """``event`` with its subscription re-read from the API when the site has an API key; the
    event's own copy when it has none or the API cannot be reached (logged), since the
    status-by-event-time rule of :mod:`.mapping` still keeps the order right then."""
    if not (settings.can_sell and event["type"].startswith(REFRESHED)):
        return event
    if event["type"] == "customer.subscription.deleted":
        return event  # the API answers a deleted subscription as canceled: the event says so
    try:
        current = make_client(settings).v1.subscriptions.retrieve(event["data"]["object"]["id"])
    except stripe.StripeError as exc:
        log.warning("stripe: cannot re-read %s: %s", event["data"]["object"]["id"], exc)
        return event
    # Re-read now: the state it holds is as of now, newer than any event already applied.
    return {
        **event,
        "created": max(event["created"], int(time.time())),
        "data": {"object": current.to_dict()},
    }


def process(
    store: Store, site: SiteSettings, settings: StripeSettings, body: bytes, header: str | None
) -> tuple[dict[str, Any], int]:
    """Verify and apply one delivery; the JSON answer and its status."""
    try:
        if len(body) > MAX_BODY:
            raise HookError(413, "too_large", f"bodies are limited to {MAX_BODY} bytes")
        event = verify(body, header, settings)
        result, duplicate = apply_event(store, site, refreshed(event, settings))
    except HookError as exc:
        return error(exc.status, exc.code, exc.message)
    log.info("stripe %s %s: %s", event["type"], event["id"], result.get("message"))
    return {"ok": True, "event_id": event["id"], "duplicate": duplicate, "result": result}, 200


@bp.post("/hooks/stripe")
def receive() -> tuple[Response, int]:
    """Receive one Stripe event (see the module docstring)."""
    state = host()
    if (request.content_length or 0) > MAX_BODY:
        answer, status = error(413, "too_large", f"bodies are limited to {MAX_BODY} bytes")
    else:
        body = request.get_data(cache=False)
        header = request.headers.get(SIGNATURE_HEADER)
        answer, status = process(state.store, state.site, state.stripe, body, header)
    return jsonify(answer), status
