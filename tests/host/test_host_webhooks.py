"""Host webhooks: each operation, and refusal of bad signatures, stale timestamps and replays."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shortcodes.automations.worker import Worker
from shortcodes.membership.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signed_headers
from shortcodes.membership.signing import webhook_signature as sign
from shortcodes.store import schema
from tests.support.db import row_counts
from tests.support.host import logged_in, store

SECRET = "demo-webhook-secret-not-for-production"  # site/site.toml [webhooks]


def send(
    client: FlaskClient,
    name: str,
    payload: dict[str, Any] | bytes,
    *,
    secret: str = SECRET,
    headers: dict[str, str] | None = None,
) -> Any:
    """POST a webhook signed as a provider would (or with the given headers)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sent = headers if headers is not None else signed_headers(secret, body)
    return client.post(
        f"/hooks/{name}", data=body, headers={**sent, "Content-Type": "application/json"}
    )


def test_apply_and_remove_a_tag(app: Flask, client: FlaskClient) -> None:
    event = {"event_id": "t1", "contact": "poor@example.com", "tag": "Owns Course C"}
    response = send(client, "tags/apply", event)
    assert response.status_code == 200
    assert response.json["result"]["changed"] is True
    assert store(app).get_contact("poor@example.com").has_tag("Owns Course C")
    send(client, "tags/remove", {**event, "event_id": "t2"})
    assert not store(app).get_contact("poor@example.com").has_tag("Owns Course C")


def test_a_peer_sync_for_an_unknown_email_creates_the_contact_without_a_password(
    app: Flask, client: FlaskClient
) -> None:
    event = {
        "event_id": "shop:7",
        "contact": "New.Member@Example.com",
        "tag": "Owns Course C",
        "origin": ["shop"],
    }
    response = send(client, "tags/apply", event)
    assert response.status_code == 200, response.json
    made = store(app).get_contact("new.member@example.com")
    assert (made.email, made.has_tag("Owns Course C")) == ("new.member@example.com", True)
    assert store(app).check_password("new.member@example.com", "") is None


def test_an_ordinary_webhook_for_an_unknown_email_creates_nobody(
    app: Flask, client: FlaskClient
) -> None:
    before = row_counts(store(app), schema.contacts, schema.contact_tags)
    event = {"event_id": "t9", "contact": "ghost@example.com", "tag": "Owns Course C"}
    response = send(client, "tags/apply", event)
    assert (response.status_code, response.json["error"]) == (404, "unknown_contact")
    assert row_counts(store(app), schema.contacts, schema.contact_tags) == before


def test_a_peer_sync_with_a_malformed_email_is_422_and_creates_nobody(
    app: Flask, client: FlaskClient
) -> None:
    before = row_counts(store(app), schema.contacts, schema.contact_tags)
    event = {"event_id": "shop:8", "contact": "not an email", "tag": "Owns Course C"}
    response = send(client, "tags/apply", {**event, "origin": ["shop"]})
    assert (response.status_code, response.json["error"]) == (422, "invalid")
    assert row_counts(store(app), schema.contacts, schema.contact_tags) == before


def test_a_tag_may_be_named_by_its_id(app: Flask, client: FlaskClient) -> None:
    tag_id = store(app).get_tag("Owns Course C").id
    event = {"event_id": "tid", "contact": store(app).contact_id("poor@example.com"), "tag": tag_id}
    assert send(client, "tags/apply", event).status_code == 200
    assert store(app).get_contact("poor@example.com").has_tag(tag_id)


@pytest.mark.parametrize(
    ("operation", "value", "bounds", "expected"),
    [
        ("add", 30, {}, 35),
        ("subtract", 3, {}, 2),
        ("subtract", 50, {}, 0),  # credits never go below zero: clamped, not refused
        ("add", 500, {"max": 100}, 100),
        ("set", 70, {}, 70),
        ("set", 1, {"min": 10}, 10),
    ],
)
def test_math_post_changes_credits_within_bounds_through_the_ledger(
    app: Flask,
    client: FlaskClient,
    operation: str,
    value: int,
    bounds: dict[str, int],
    expected: int,
) -> None:
    event = {
        "event_id": f"m-{operation}-{value}",
        "contact": "poor@example.com",
        "field": "_Credits",
        "operation": operation,
        "value": value,
        **bounds,
    }
    response = send(client, "credits", event)
    assert response.status_code == 200, response.json
    assert response.json["result"]["after"] == expected
    assert store(app).balance("poor@example.com") == expected
    assert store(app).verify().ok


def test_math_post_on_a_custom_field_stores_the_number(app: Flask, client: FlaskClient) -> None:
    event = {
        "event_id": "pts",
        "contact": "poor@example.com",
        "field": "Points",
        "operation": "add",
        "value": 7,
        "max": 5,
    }
    assert send(client, "credits", event).status_code == 200
    assert store(app).get_contact("poor@example.com").field("Points") == 5


def test_update_contact_sets_fields_but_never_balances(app: Flask, client: FlaskClient) -> None:
    ok = {"event_id": "u1", "contact": "poor@example.com", "fields": {"City": "Lyon"}}
    assert send(client, "contacts/update", ok).status_code == 200
    assert store(app).get_contact("poor@example.com").field("City") == "Lyon"
    bad = {"event_id": "u2", "contact": "poor@example.com", "fields": {"_Credits": 999}}
    response = send(client, "contacts/update", bad)
    assert response.status_code == 422
    assert response.json["message"] == (
        "field '_Credits' is a credit balance: change it with credit/debit, never by setting it"
    )
    assert store(app).balance("poor@example.com") == 5


def test_payment_succeeded_credits_the_bundle_once_even_when_retried(
    app: Flask, client: FlaskClient
) -> None:
    event = {
        "event_id": "pay-1",
        "contact": "poor@example.com",
        "product": "credits-120",
        "payment_id": "ch_1",
    }
    first = send(client, "payments/succeeded", event)
    assert first.status_code == 200
    assert first.json["duplicate"] is False
    before = row_counts(store(app), schema.contacts, schema.contact_tags)
    again = send(client, "payments/succeeded", event)  # the provider retries
    assert again.status_code == 200
    assert again.json["duplicate"] is True
    assert again.json["result"] == first.json["result"]
    assert row_counts(store(app), schema.contacts, schema.contact_tags) == before
    # A second event about the same payment does not credit it twice either.
    send(client, "payments/succeeded", {**event, "event_id": "pay-1-bis"})
    assert store(app).balance("poor@example.com") == 125


def test_membership_payment_grants_then_failure_revokes(app: Flask, client: FlaskClient) -> None:
    event = {
        "event_id": "aa-1",
        "contact": "poor@example.com",
        "product": "all-access",
        "payment_id": "sub_1",
    }
    send(client, "payments/succeeded", event)
    assert store(app).get_contact("poor@example.com").has_tag("All Access")
    failed = send(client, "payments/failed", {**event, "event_id": "aa-2"})
    assert failed.json["result"]["revoked"] is True
    assert not store(app).get_contact("poor@example.com").has_tag("All Access")


def test_refund_reverses_exactly_the_payment(app: Flask, client: FlaskClient) -> None:
    pay = {
        "event_id": "r-1",
        "contact": "poor@example.com",
        "product": "credits-50",
        "payment_id": "ch_r",
    }
    send(client, "payments/succeeded", pay)
    assert store(app).balance("poor@example.com") == 55
    refund = send(client, "payments/refunded", {**pay, "event_id": "r-2"})
    assert refund.status_code == 200
    assert store(app).balance("poor@example.com") == 5


def test_refund_of_spent_credits_is_409_and_changes_nothing(
    app: Flask, client: FlaskClient
) -> None:
    pay = {
        "event_id": "s-1",
        "contact": "poor@example.com",
        "product": "credits-50",
        "payment_id": "ch_s",
    }
    send(client, "payments/succeeded", pay)
    store(app).debit("poor@example.com", 50, reason="spent")
    before = row_counts(store(app), schema.contacts, schema.contact_tags)
    response = send(client, "payments/refunded", {**pay, "event_id": "s-2"})
    assert response.status_code == 409
    assert response.json["error"] == "insufficient_credits"
    assert row_counts(store(app), schema.contacts, schema.contact_tags) == before


def test_a_bad_signature_is_401_and_writes_nothing(app: Flask, client: FlaskClient) -> None:
    event = {"event_id": "x", "contact": "poor@example.com", "tag": "Owns Course C"}
    before = row_counts(store(app), schema.contacts, schema.contact_tags)
    response = send(client, "tags/apply", event, secret="a guessed secret")
    assert response.status_code == 401
    assert response.json["error"] == "bad_signature"
    assert row_counts(store(app), schema.contacts, schema.contact_tags) == before


def test_a_body_changed_after_signing_is_401(app: Flask, client: FlaskClient) -> None:
    body = json.dumps({"event_id": "y", "contact": "poor@example.com", "tag": "Owns Course C"})
    headers = signed_headers(SECRET, body.encode())
    tampered = body.replace("poor", "rich").encode()
    before = row_counts(store(app), schema.contacts, schema.contact_tags)
    assert send(client, "tags/apply", tampered, headers=headers).status_code == 401
    assert row_counts(store(app), schema.contacts, schema.contact_tags) == before


@pytest.mark.parametrize("age", [301, 3600, -400])
def test_a_stale_or_future_timestamp_is_401(app: Flask, client: FlaskClient, age: int) -> None:
    body = json.dumps({"event_id": "z", "contact": "poor@example.com", "tag": "Owns Course C"})
    stamp = str(int(time.time()) - age)
    headers = {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(SECRET, stamp, body.encode())}
    before = row_counts(store(app), schema.contacts, schema.contact_tags)
    response = send(client, "tags/apply", body.encode(), headers=headers)
    assert response.status_code == 401
    assert response.json["error"] == "stale"
    assert row_counts(store(app), schema.contacts, schema.contact_tags) == before


def test_missing_signature_headers_are_401(client: FlaskClient) -> None:
    response = send(client, "tags/apply", {"event_id": "n"}, headers={})
    assert response.status_code == 401
    assert response.json["error"] == "unsigned"


def test_a_reused_event_id_with_another_body_is_409(app: Flask, client: FlaskClient) -> None:
    send(
        client,
        "tags/apply",
        {"event_id": "dup", "contact": "poor@example.com", "tag": "Owns Course C"},
    )
    before = row_counts(store(app), schema.contacts, schema.contact_tags)
    other = {"event_id": "dup", "contact": "rich@example.com", "tag": "Owns Course C"}
    response = send(client, "tags/apply", other)
    assert response.status_code == 409
    assert response.json["error"] == "event_id_reused"
    assert row_counts(store(app), schema.contacts, schema.contact_tags) == before
    assert not store(app).get_contact("rich@example.com").has_tag("Owns Course C")


@pytest.mark.parametrize(
    ("name", "payload", "status", "code"),
    [
        ("tags/apply", b"not json", 400, "bad_json"),
        ("tags/apply", b"[1, 2]", 400, "bad_json"),
        ("tags/apply", {"contact": "poor@example.com", "tag": "Owns Course C"}, 400, "no_event_id"),
        ("tags/apply", {"event_id": "e", "contact": "ghost@example.com", "tag": "Owns Course C"}, 404, "unknown_contact"),
        ("tags/apply", {"event_id": "e", "contact": "poor@example.com", "tag": "No Such Tag"}, 404, "unknown_tag"),
        ("credits", {"event_id": "e", "contact": "poor@example.com", "field": "_Credits", "operation": "times", "value": 2}, 422, "invalid"),
        ("credits", {"event_id": "e", "contact": "poor@example.com", "field": "_Credits", "operation": "add", "value": "2"}, 422, "invalid"),
        ("payments/succeeded", {"event_id": "e", "contact": "poor@example.com", "product": "nope", "payment_id": "p"}, 422, "invalid"),
        ("no/such/hook", {"event_id": "e"}, 404, "unknown_hook"),
    ],
)  # fmt: skip
def test_bad_requests_get_json_errors_that_say_what_was_wrong(
    app: Flask, client: FlaskClient, name: str, payload: Any, status: int, code: str
) -> None:
    before = row_counts(store(app), schema.contacts, schema.contact_tags)
    response = send(client, name, payload)
    assert response.status_code == status, response.json
    assert response.json["ok"] is False
    assert response.json["error"] == code
    assert row_counts(store(app), schema.contacts, schema.contact_tags) == before


def test_a_get_on_a_webhook_url_is_a_json_error(client: FlaskClient) -> None:
    response = client.get("/hooks/tags/apply")
    assert response.status_code == 404
    assert response.json["ok"] is False


def test_demo_checkout_buys_a_bundle_through_the_payment_webhook(app: Flask) -> None:
    poor = logged_in(app, "poor@example.com")
    poor.get("/credits")
    response = poor.post("/checkout/credits-300")
    assert response.status_code == 303
    poor.get("/credits")
    assert poor.flashes() == ["Payment received for 300 credits — you now have 305 credits."]
    assert store(app).balance("poor@example.com") == 305
    assert poor.client.post("/checkout/credits-300").status_code == 400  # CSRF
    assert poor.post("/checkout/bogus").status_code == 404


def run_automations(app: Flask) -> None:
    """One pass of the automation worker over the app's store (no email delivery)."""
    state = app.extensions["shortcodes"]
    Worker(state.store, state.automations, Path(app.instance_path), deliver=False).run_once()


def test_a_custom_event_starts_the_rules_listening_to_it_once(
    app: Flask, client: FlaskClient
) -> None:
    rich = store(app).contact_id("rich@example.com")
    event = {"event_id": "ws-1", "contact": "rich@example.com"}
    response = send(client, "events/Workshop-Attended", event)  # names match case-insensitively
    assert response.status_code == 200, response.json
    expected = {"contact": rich, "event": "Workshop-Attended", "rules": ["workshop-attended"]}
    assert response.json["result"] == expected
    retried = send(client, "events/workshop-attended", event)  # a retry, spelled otherwise
    assert retried.json["duplicate"] is True
    assert retried.json["result"] == expected
    run_automations(app)
    run_automations(app)
    assert store(app).balance("rich@example.com") == 260 + 10  # one event, one run


@pytest.mark.parametrize(
    ("name", "payload", "status", "code"),
    [
        ("events/no-such-event", {"event_id": "e", "contact": "rich@example.com"}, 404, "unknown_event"),
        ("events/", {"event_id": "e", "contact": "rich@example.com"}, 404, "unknown_hook"),
        ("events/workshop attended", {"event_id": "e", "contact": "rich@example.com"}, 404, "unknown_event"),
        ("events/" + "x" * 101, {"event_id": "e", "contact": "rich@example.com"}, 404, "unknown_event"),
        ("events/workshop-attended", {"event_id": "e"}, 422, "invalid"),
        ("events/workshop-attended", {"event_id": "e", "contact": ["rich"]}, 422, "invalid"),
        ("events/workshop-attended", {"event_id": "e", "contact": "ghost@example.com"}, 404, "unknown_contact"),
        ("events/workshop-attended", {"contact": "rich@example.com"}, 400, "no_event_id"),
        ("events/credits", {"event_id": "e", "contact": "rich@example.com"}, 404, "unknown_event"),
        ("events/Tags/Apply", {"event_id": "e", "contact": "rich@example.com"}, 404, "unknown_event"),
    ],
)  # fmt: skip
def test_bad_custom_events_are_refused_and_start_nothing(
    app: Flask, client: FlaskClient, name: str, payload: Any, status: int, code: str
) -> None:
    before = len(store(app).events_after(0, 10_000))
    response = send(client, name, payload)
    assert response.status_code == status, response.json
    assert response.json["error"] == code
    assert len(store(app).events_after(0, 10_000)) == before


def test_a_custom_event_needs_a_valid_signature(app: Flask, client: FlaskClient) -> None:
    event = {"event_id": "ws-forged", "contact": "rich@example.com"}
    response = send(client, "events/workshop-attended", event, secret="guessed")
    assert response.status_code == 401
    run_automations(app)
    assert store(app).balance("rich@example.com") == 260


def test_an_unsigned_caller_learns_nothing_about_the_rules(client: FlaskClient) -> None:
    for name in ("events/workshop-attended", "events/no-such-event"):
        response = send(client, name, {"event_id": "e", "contact": 1}, headers={})
        assert (response.status_code, response.json["error"]) == (401, "unsigned")
