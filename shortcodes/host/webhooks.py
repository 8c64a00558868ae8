"""Host inbound webhooks: ``POST /hooks/<name>``, authenticated by signature, applied at most once.

A sender signs ``"<timestamp>.<raw body>"`` with HMAC-SHA256 and the site's webhook secret and sends
``X-Shortcodes-Timestamp: <unix seconds>`` and ``X-Shortcodes-Signature: sha256=<hex>``. Requests
older (or newer) than five minutes are refused, so a captured request cannot be replayed later;
within the window, the body's ``event_id`` is claimed in the store's idempotency table inside the
same transaction as the change, so a retried webhook answers ``duplicate: true`` and changes
nothing. These endpoints are exempt from CSRF (no browser session is involved) and answer JSON.

Besides the operations of :mod:`.hookops`, ``POST /hooks/events/<name>`` with a ``contact`` starts
the automation rules whose trigger is ``webhook('<name>')`` (a CRM's "course completed", say); a
name no rule listens to is refused (404 ``unknown_event``) rather than dropped.
"""

from __future__ import annotations

import json
import re
import time
from contextlib import nullcontext
from typing import Any

from flask import Blueprint, Response, jsonify, request

from shortcodes.automations.sync import check_origin
from shortcodes.errors import (
    DuplicateContact,
    HookError,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidInput,
    RefundError,
    RetryExhausted,
    StoreError,
    UnknownContact,
    UnknownField,
    UnknownTag,
)
from shortcodes.host.hookops import OPERATIONS, HookOp, custom_event
from shortcodes.host.state import host
from shortcodes.membership.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    webhook_signature_matches,
)
from shortcodes.store.events import caused_by, record_event
from shortcodes.store.idempotency import once
from shortcodes.store.session import Actor, Tx

bp = Blueprint("hooks", __name__, url_prefix="/hooks")

#: A custom event's name, as a ``webhook('name')`` rule spells it.
EVENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
MAX_AGE = 300
MAX_BODY = 64 * 1024

#: Store refusals and the HTTP status that says what was wrong.
_STATUS: tuple[tuple[type[StoreError], int, str], ...] = (
    (UnknownContact, 404, "unknown_contact"),
    (DuplicateContact, 409, "duplicate_contact"),  # a peer's first sync raced another
    (UnknownTag, 404, "unknown_tag"),
    (UnknownField, 422, "unknown_field"),
    (InsufficientCredits, 409, "insufficient_credits"),
    (IdempotencyConflict, 409, "event_id_reused"),
    (RefundError, 409, "refund_refused"),
    (InvalidInput, 422, "invalid"),
    (RetryExhausted, 503, "busy"),
)


def check_signature(secret: str, headers: Any, body: bytes, now: float) -> None:
    """Refuse a missing, malformed, stale or wrong signature (401 each, with the reason)."""
    if not secret:
        raise HookError(503, "not_configured", "this site has no webhook secret configured")
    stamp = headers.get(TIMESTAMP_HEADER, "")
    given = headers.get(SIGNATURE_HEADER, "")
    if not stamp or not given:
        raise HookError(401, "unsigned", f"send {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}")
    # Twelve digits reach the year 33658; a longer one is garbage, and int() of 4,301 digits or
    # more raises (Python's limit on decimal conversions).
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        raise HookError(401, "bad_timestamp", "the timestamp must be whole Unix seconds")
    if abs(now - int(stamp)) > MAX_AGE:
        raise HookError(401, "stale", f"the timestamp is more than {MAX_AGE} seconds from now")
    if not webhook_signature_matches(secret, stamp, body, given):
        raise HookError(401, "bad_signature", "the signature does not match the body")


def parse_body(body: bytes) -> dict[str, Any]:
    """The JSON object of the request, with a usable ``event_id``."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HookError(400, "bad_json", f"the body is not valid JSON: {exc}") from None
    except RecursionError:  # nesting deeper than Python's stack: no real event looks like that
        raise HookError(400, "bad_json", "the body nests too deeply") from None
    if not isinstance(data, dict):
        raise HookError(400, "bad_json", "the body must be a JSON object")
    event_id = data.get("event_id")
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > 150:
        raise HookError(400, "no_event_id", "'event_id' must be a string of 1 to 150 characters")
    return data


def resolve(name: str) -> tuple[HookOp, str, str]:
    """The operation of ``/hooks/<name>``, the name its dedupe record goes under, and the name
    its ``webhook`` event carries (a custom event's own name, which ``webhook(name)`` rules match
    case-insensitively). Called after the signature check: which names rules listen to is no
    business of an unsigned caller."""
    op = OPERATIONS.get(name)
    if op is not None:
        return op, name, name
    prefix, _, event = name.partition("/")
    if prefix != "events" or not event:
        raise HookError(404, "unknown_hook", f"no webhook {name!r}")
    wanted = event.casefold()
    if wanted in OPERATIONS:  # its rules hear the built-in hook, which really does change things
        raise HookError(404, "unknown_event", f"{event!r} is a built-in webhook, not an event")
    rules = host().automations.rules_for("webhook")
    listening = [r.name for r in rules if str(r.trigger.args["name"]).casefold() == wanted]
    if not (EVENT_NAME.fullmatch(event) and listening):
        # A typo in the sender's configuration or in site.toml: say so instead of dropping it.
        raise HookError(404, "unknown_event", f"no rule listens to webhook({event!r})")
    return custom_event(event, listening), f"events/{wanted}", event


def apply_once(
    name: str, op: HookOp, data: dict[str, Any], event_name: str
) -> tuple[dict[str, Any], bool]:
    """Run ``op`` and claim the event id in one transaction; (result, was it a duplicate).

    The dedupe record goes under ``name``; the ``webhook`` event recorded with the change is
    named ``event_name`` (see :func:`resolve`)."""
    state = host()
    event_id = data["event_id"]
    key = f"hook:{event_id}"
    actor = Actor("webhook", f"{name}:{event_id}"[:200])

    origin = _origin(data)

    def apply(tx: Tx) -> dict[str, Any]:
        # A change a [[sync]] peer sent: its events name where it came from, so it is never
        # sent back there (see shortcodes.automations.sync).
        with caused_by({"sync": origin}) if origin else nullcontext():
            result = op(tx, state.site, data, event_id, actor)
            event = {"name": event_name, "event_id": event_id}
            record_event(tx, "webhook", result.get("contact"), event)
        return result

    def work(tx: Tx) -> tuple[dict[str, Any], bool]:
        # The dedupe record keeps the old kind "webhook:<name>" in its fingerprint.
        return once(tx, key, f"webhook:{name}", None, data, actor, lambda _op: apply(tx))

    return state.store.run_in_transaction(work)


def _origin(data: dict[str, Any]) -> list[str]:
    """The sites a synced change came through (``origin``), or [] for an ordinary webhook."""
    if "origin" not in data:
        return []
    try:
        return check_origin(data["origin"])
    except ValueError as exc:
        raise HookError(422, "bad_origin", str(exc)) from None


def error(status: int, code: str, message: str) -> tuple[dict[str, Any], int]:
    """A JSON error answer."""
    return {"ok": False, "error": code, "message": message}, status


def _store_error(exc: StoreError) -> tuple[dict[str, Any], int]:
    for kind, status, code in _STATUS:
        if isinstance(exc, kind):
            return error(status, code, str(exc))
    return error(422, "refused", str(exc))


def process(
    name: str, headers: Any, body: bytes, now: float | None = None
) -> tuple[dict[str, Any], int]:
    """Authenticate, parse and apply one webhook; the JSON answer and its status."""
    try:
        if len(body) > MAX_BODY:
            raise HookError(413, "too_large", f"bodies are limited to {MAX_BODY} bytes")
        check_signature(
            host().site.webhook_secret, headers, body, time.time() if now is None else now
        )
        op, hook_name, event_name = resolve(name)
        data = parse_body(body)
        result, duplicate = apply_once(hook_name, op, data, event_name)
    except HookError as exc:
        return error(exc.status, exc.code, exc.message)
    except StoreError as exc:
        return _store_error(exc)
    return {"ok": True, "event_id": data["event_id"], "duplicate": duplicate, "result": result}, 200


@bp.post("/<path:name>")
def receive(name: str) -> tuple[Response, int]:
    """Receive the webhook ``name`` (see :data:`shortcodes.host.hookops.OPERATIONS`)."""
    if (request.content_length or 0) > MAX_BODY:
        answer, status = error(413, "too_large", f"bodies are limited to {MAX_BODY} bytes")
    else:
        answer, status = process(name, request.headers, request.get_data(cache=False))
    return jsonify(answer), status
