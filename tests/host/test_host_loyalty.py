"""Loyalty through the host: points and referrals by the signed inbound API, and the points on
``/account`` (the demo site, whose ``[loyalty]`` keeps the defaults: 14 days pending, a year).
The main cases run on SQLite and PostgreSQL (``both``); the malformed posts on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from shortcodes.store import schema
from tests.host.test_host_webhooks import send
from tests.support.db import row_counts
from tests.support.host import app_config, logged_in, store, verified_app

POOR, RICH = "poor@example.com", "rich@example.com"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def both(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """The demo site on a fresh seeded SQLite copy, or migrated and seeded on PostgreSQL."""
    if request.param == "sqlite":
        yield request.getfixturevalue("app")
        return
    url = str(request.getfixturevalue("pg_database"))
    yield from verified_app(app_config(tmp_path / "instance", DATABASE_URL=url))


def award(client: FlaskClient, event_id: str, **fields: Any) -> Any:
    body = {"event_id": event_id, "contact": POOR, "points": 120, "reason": "survey answered"}
    return send(client, "points/award", {**body, **fields})


def changes(app: Flask) -> dict[str, int]:
    """Rows a points or referral webhook could write."""
    s = schema
    tables = (s.ledger_entries, s.credit_grants, s.operations, s.events, s.loyalty_referrals)
    return row_counts(store(app), *tables)


def points_entries(app: Flask) -> list[tuple[int, str, str, str]]:
    e = schema.ledger_entries
    query = (
        select(e.c.delta, e.c.reason, e.c.actor_kind, e.c.actor_id)
        .where(e.c.field == "Points")
        .order_by(e.c.id)
    )
    with store(app).engine.connect() as conn:
        return [tuple(r) for r in conn.execute(query)]  # type: ignore[misc]


def test_points_award_with_an_amount_and_a_reason_applies_once_per_event_id(both: Flask) -> None:
    app, client = both, both.test_client()
    first = award(client, "pts-1", available_after="now")
    assert first.status_code == 200, first.json
    assert first.json["duplicate"] is False
    poor = store(app).get_contact(POOR).id
    assert first.json["result"] == {
        "contact": poor,
        "awarded": 120,
        "available": 120,
        "pending": 0,
        "lifetime": 120,
        "stage": "Bronze",
    }
    before = changes(app)
    again = award(client, "pts-1", available_after="now")  # the sender retries
    assert (again.status_code, again.json["duplicate"]) == (200, True)
    assert again.json["result"] == first.json["result"]
    assert changes(app) == before
    assert points_entries(app) == [(120, "survey answered", "webhook", "points/award:pts-1")]


def test_points_award_stays_pending_for_the_sites_wait_unless_the_body_names_one(
    app: Flask, client: FlaskClient
) -> None:
    assert award(client, "p-site").json["result"]["pending"] == 120
    later = award(client, "p-own", points=5, available_after="3d").json["result"]
    assert (later["pending"], later["available"]) == (125, 0)
    grants = [g for g in store(app).grants(POOR) if g.field == "Points"]
    waits = sorted((g.starts_at - g.created_at).days for g in grants if g.starts_at)
    assert waits == [3, 14]
    assert points_entries(app) == [], "pending points are not in the balance yet"


def test_points_remove_takes_at_most_what_is_available_with_its_reason(both: Flask) -> None:
    app, client = both, both.test_client()
    award(client, "a-1", available_after="now")
    award(client, "a-2", points=30)  # pending: a removal cancels it first
    body = {"event_id": "r-1", "contact": POOR, "points": 200, "reason": "order returned"}
    answer = send(client, "points/remove", body)
    assert answer.status_code == 200, answer.json
    result = answer.json["result"]
    assert (result["removed"], result["from_pending"], result["requested"]) == (150, 30, 200)
    assert (result["available"], result["pending"]) == (0, 0)
    again = send(client, "points/remove", {**body, "event_id": "r-2"})
    assert (again.json["result"]["removed"], again.json["result"]["available"]) == (0, 0)
    assert points_entries(app)[-1] == (-120, "order returned", "webhook", "points/remove:r-1")
    assert len(points_entries(app)) == 2


BAD_POINTS = [
    ({"points": None}, 422, "'points' must be a whole number from 1 to 1000000000000, got None"),
    ({"points": "10"}, 422, "'points' must be a whole number from 1 to 1000000000000, got '10'"),
    ({"points": 0}, 422, "'points' must be a whole number from 1 to 1000000000000, got 0"),
    ({"points": -5}, 422, "'points' must be a whole number from 1 to 1000000000000, got -5"),
    ({"points": 1.5}, 422, "'points' must be a whole number from 1 to 1000000000000, got 1.5"),
    ({"points": True}, 422, "'points' must be a whole number from 1 to 1000000000000, got True"),
    ({"points": 10**13}, 422, "'points' must be a whole number from 1 to 1000000000000, got"),
    ({"reason": None}, 422, "'reason' must be a non-empty string"),
    ({"reason": "  "}, 422, "'reason' must be a non-empty string"),
    ({"reason": 7}, 422, "'reason' must be a non-empty string"),
    ({"reason": "x" * 501}, 422, "'reason' must be at most 500 characters"),
    ({"available_after": "soon"}, 422, "'available_after': write 'now' or a duration"),
    ({"available_after": "0d"}, 422, "'available_after': write 'now' or a duration"),
    ({"available_after": 14}, 422, "'available_after': write 'now' or a duration"),
    ({"contact": None}, 422, "'contact' must be a contact id or an email"),
    ({"contact": "nobody@example.com"}, 404, "no contact 'nobody@example.com'"),
]


BAD_CASES = [
    (hook, *case)
    for hook in ("points/award", "points/remove")
    for case in BAD_POINTS
    if hook == "points/award" or "available_after" not in case[0]  # a removal has no wait
]


@pytest.mark.parametrize(("hook", "bad", "status", "message"), BAD_CASES)
def test_a_malformed_points_post_is_refused_and_changes_nothing(
    app: Flask,
    client: FlaskClient,
    hook: str,
    bad: dict[str, Any],
    status: int,
    message: str,
) -> None:
    award(client, "seed", available_after="now")
    before = changes(app)
    body = {"event_id": "bad", "contact": POOR, "points": 10, "reason": "why"}
    body = {k: v for k, v in {**body, **bad}.items() if v is not None}
    answer = send(client, hook, body)
    assert answer.status_code == status
    assert answer.json["message"].startswith(message)
    assert changes(app) == before
    # Nothing was claimed either: the corrected post with the same event id goes through.
    fixed = send(client, hook, {"event_id": "bad", "contact": POOR, "points": 10, "reason": "ok"})
    assert fixed.status_code == 200


def test_an_event_id_reused_with_another_body_is_refused(app: Flask, client: FlaskClient) -> None:
    award(client, "same")
    before = changes(app)
    answer = award(client, "same", points=999)
    assert (answer.status_code, answer.json["error"]) == (409, "event_id_reused")
    assert changes(app) == before


def test_referrals_made_then_approved_through_the_api(both: Flask) -> None:
    app, client = both, both.test_client()
    rich, poor = store(app).get_contact(RICH).id, store(app).get_contact(POOR).id
    made = {"event_id": "ref-1", "referrer": RICH, "referred": POOR}
    answer = send(client, "referrals/made", made)
    assert answer.json["result"] == {"contact": rich, "referred": poor, "recorded": True}
    again = send(client, "referrals/made", {**made, "event_id": "ref-2"})
    assert again.json["result"]["recorded"] is False
    approved = send(client, "referrals/approved", {"event_id": "ref-3", "referred": poor})
    assert approved.json["result"] == {"contact": rich, "referred": poor, "approved": True}
    kinds = [e for e in _event_kinds(app) if e.startswith("referral")]
    assert kinds == ["referral_made", "referral_approved"]


@pytest.mark.parametrize(
    ("hook", "body", "status", "message"),
    [
        ("referrals/made", {"referrer": RICH}, 422, "'referred' must be a contact id or an email"),
        ("referrals/made", {"referred": POOR}, 422, "'referrer' must be a contact id or an email"),
        ("referrals/made", {"referrer": POOR, "referred": POOR}, 422, "a contact cannot refer"),
        ("referrals/made", {"referrer": RICH, "referred": "x@y.z"}, 404, "no contact 'x@y.z'"),
        ("referrals/approved", {"referred": POOR}, 422, "no referral of this contact was made"),
        ("referrals/approved", {"referrer": [1], "referred": POOR}, 422, "'referrer' must be"),
    ],
)
def test_a_malformed_referral_is_refused_and_changes_nothing(
    app: Flask, client: FlaskClient, hook: str, body: dict[str, Any], status: int, message: str
) -> None:
    before = changes(app)
    answer = send(client, hook, {"event_id": "r", **body})
    assert (answer.status_code, answer.json["message"][: len(message)]) == (status, message)
    assert changes(app) == before


def test_a_second_referrer_for_the_same_contact_is_refused(app: Flask, client: FlaskClient) -> None:
    send(client, "referrals/made", {"event_id": "a", "referrer": RICH, "referred": POOR})
    before = changes(app)
    other = {"event_id": "b", "referrer": "owner@example.com", "referred": POOR}
    answer = send(client, "referrals/approved", other)
    poor = store(app).get_contact(POOR).id
    assert (answer.status_code, answer.json["message"]) == (
        422,
        f"contact {poor} was referred by another contact",
    )
    assert changes(app) == before


def test_account_shows_the_visitors_own_points_and_never_another_contacts(both: Flask) -> None:
    app, client = both, both.test_client()
    award(client, "mine", available_after="now")
    award(client, "later", points=30)
    poor_page = logged_in(app, POOR).get("/account")
    assert "<strong>120 points</strong> to spend" in poor_page
    assert "30 pending" in poor_page
    assert "0 expiring within 30 days" in poor_page
    rich_page = logged_in(app, RICH).get("/account")
    assert "<strong>0 points</strong> to spend" in rich_page
    assert "0 pending" in rich_page
    assert "120" not in rich_page.split("Your points", 1)[1].split("Your credits", 1)[0]


def _event_kinds(app: Flask) -> list[str]:
    e = schema.events
    with store(app).engine.connect() as conn:
        return [k for (k,) in conn.execute(select(e.c.kind).order_by(e.c.id))]
