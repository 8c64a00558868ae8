"""Automation scenarios end to end with a moved clock, each on SQLite and PostgreSQL.

Events come from the real producers (host webhooks through the Flask test client, actionset
buttons through the store, loyalty operations), the worker runs its real passes, and every test
checks balances, tags, queued emails and the recorded runs.
"""

from __future__ import annotations

import json
from pathlib import Path

from flask.testing import FlaskClient

from shortcodes import Contact, Environment, Tag
from shortcodes.automations import loyalty
from shortcodes.host import create_app
from shortcodes.membership.signing import signed_headers
from shortcodes.store.session import Tx
from tests.support.automations import Harness

SECRET = "automation-test-secret"


def host_client(site_dir: Path, db_url: str, instance: Path) -> FlaskClient:
    """The real host app on the test site and the test database."""
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "automation-tests",
            "SITE_DIR": site_dir,
            "INSTANCE_PATH": instance,
            "DATABASE_URL": db_url,
            "SEED": False,
        }
    )
    return app.test_client()


def post_hook(client: FlaskClient, name: str, payload: dict[str, object]) -> dict[str, object]:
    body = json.dumps(payload).encode()
    answer = client.post(
        f"/hooks/{name}",
        data=body,
        headers={**signed_headers(SECRET, body), "Content-Type": "application/json"},
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    result: dict[str, object] = answer.get_json()
    return result


def test_monthly_subscription_adds_50_credits_per_payment_and_a_retried_webhook_adds_nothing(
    harness: Harness, site_dir: Path, db_url: str, tmp_path: Path
) -> None:
    ann = harness.contact("ann@example.com")
    client = host_client(site_dir, db_url, tmp_path / "host")
    try:
        first = {"event_id": "evt-1", "contact": ann, "product": "monthly", "payment_id": "ch-1"}
        assert post_hook(client, "payments/succeeded", first)["duplicate"] is False
        harness.drain()
        assert harness.store.balance(ann) == 50
        assert post_hook(client, "payments/succeeded", first)["duplicate"] is True  # a retry
        # A provider retrying the same charge under a new event id changes nothing either.
        post_hook(client, "payments/succeeded", {**first, "event_id": "evt-1-retry"})
        harness.drain()
        assert harness.store.balance(ann) == 50
        harness.clock.advance(days=31)
        second = {"event_id": "evt-2", "contact": ann, "product": "monthly", "payment_id": "ch-2"}
        post_hook(client, "payments/succeeded", second)
        harness.drain()
    finally:
        client.application.extensions["shortcodes"].store.close()
    assert harness.store.balance(ann) == 100
    emails = harness.emails("monthly-credits")
    assert [e["balances"]["_Credits"] for e in emails] == [50, 100]
    assert [r.status for r in harness.runs("monthly-credits")] == ["done", "done"]
    # Delivered as .eml files with the balance in the subject and body, one per payment.
    files = sorted((harness.instance / "outbox").glob("*.eml"))
    texts = [f.read_text() for f in files]
    assert len(texts) == 2
    assert "Subject: 50 credits are waiting" in texts[0]
    assert "your balance is now 100 credits" in texts[1]


def test_drip_releases_day_1_now_and_days_2_to_5_a_day_apart(harness: Harness) -> None:
    bo = harness.contact("bo@example.com")
    harness.store.apply_tag(bo, "Owns Drip Course")
    harness.drain()
    released = [f"Drip Day {n}" for n in range(1, 6)]
    assert harness.tags(bo) & set(released) == {"Drip Day 1"}
    for day in range(2, 6):
        harness.advance(hours=23, minutes=59)
        assert f"Drip Day {day}" not in harness.tags(bo), f"day {day} came early"
        harness.advance(minutes=1)
        assert harness.tags(bo) & set(released) == set(released[:day])
    assert [r.status for r in harness.runs("drip-course")] == ["done"]
    harness.advance(days=30)
    assert harness.count_steps_done("drip-course") == 9


def test_payment_failed_or_refunded_applies_the_revoke_tag_and_removes_access(
    harness: Harness, site_dir: Path, db_url: str, tmp_path: Path
) -> None:
    cy = harness.contact("cy@example.com")
    dee = harness.contact("dee@example.com")
    for who in (cy, dee):
        harness.store.apply_tag(who, "Subscriber")
        harness.store.grant(who, "All Access", "35d")
    client = host_client(site_dir, db_url, tmp_path / "host")
    try:
        post_hook(
            client, "payments/failed", {"event_id": "f-1", "contact": cy, "product": "monthly"}
        )
        paid = {"event_id": "p-1", "contact": dee, "product": "all-access", "payment_id": "ch-9"}
        post_hook(client, "payments/succeeded", paid)
        harness.drain()
        assert "All Access" in harness.tags(dee)
        refund = {"event_id": "r-1", "contact": dee, "product": "all-access", "payment_id": "ch-9"}
        post_hook(client, "payments/refunded", refund)
        harness.drain()
    finally:
        client.application.extensions["shortcodes"].store.close()
    for who in (cy, dee):
        tags = harness.tags(who)
        assert "Payment Problem" in tags
        assert not tags & {"All Access", "Subscriber"}
    # The page shows the locked branch to the revoked member.
    env = Environment()
    page = '[memb_has_any_tag tagid="All Access"]OPEN[else]LOCKED[/memb_has_any_tag]'
    from shortcodes.context import Context

    contact = harness.store.get_contact(dee)
    assert str(env.render(page, Context(contact=contact))).strip() == "LOCKED"
    member = Contact(1, "m@example.com", [Tag(1, "All Access")], {})
    assert str(env.render(page, Context(contact=member))).strip() == "OPEN"


def test_lending_library_lock_refuses_check_in_for_14_days_then_returns_the_credit(
    harness: Harness,
) -> None:
    eve = harness.contact("eve@example.com", credits=3)
    borrowed = harness.store.run_actionset("borrow-field-guide", eve, idempotency_key="borrow-1")
    assert borrowed.ok
    harness.drain()
    assert harness.store.balance(eve) == 2
    assert {"Borrowed Field Guide", "Lock Field Guide"} <= harness.tags(eve)

    harness.advance(days=3)
    harness.store.run_actionset("return-field-guide", eve, idempotency_key="return-1")
    harness.drain()
    assert harness.store.balance(eve) == 2, "a locked loan must not be checked in"
    assert "Borrowed Field Guide" in harness.tags(eve)
    assert "Return Field Guide" not in harness.tags(eve)
    assert len(harness.emails("check-in-refused")) == 1

    harness.advance(days=10, hours=23)
    assert "Lock Field Guide" in harness.tags(eve)
    harness.advance(hours=1)  # 14 days after the checkout
    assert "Lock Field Guide" not in harness.tags(eve)

    harness.store.run_actionset("return-field-guide", eve, idempotency_key="return-2")
    harness.drain()
    assert harness.store.balance(eve) == 3
    assert not harness.tags(eve) & {"Borrowed Field Guide", "Return Field Guide"}
    assert len(harness.emails("checked-in")) == 1
    runs = harness.runs("lending-check-in")
    assert [r.data["branch"] for r in runs] == ["otherwise", "steps"]


def test_time_limited_access_ends_after_four_calendar_months(
    harness: Harness, site_dir: Path, db_url: str, tmp_path: Path
) -> None:
    fay = harness.contact("fay@example.com")
    client = host_client(site_dir, db_url, tmp_path / "host")
    try:
        paid = {"event_id": "c4-1", "contact": fay, "product": "course-c-4m", "payment_id": "c4"}
        post_hook(client, "payments/succeeded", paid)
    finally:
        client.application.extensions["shortcodes"].store.close()
    harness.drain()  # 2026-01-01 12:00
    assert "Course C Access" in harness.tags(fay)
    harness.advance(days=119, hours=23)  # 2026-05-01 11:00
    assert "Course C Access" in harness.tags(fay)
    harness.advance(hours=1)  # 2026-05-01 12:00: four months later
    assert "Course C Access" not in harness.tags(fay)


def test_all_access_tag_opens_every_credit_product_while_payments_continue(
    harness: Harness, site_dir: Path, db_url: str, tmp_path: Path
) -> None:
    gus = harness.contact("gus@example.com")
    client = host_client(site_dir, db_url, tmp_path / "host")
    env = Environment()
    page = "".join(
        f'[memb_has_any_tag tagid="All Access,{t}"]{t}:open[else]{t}:locked[/memb_has_any_tag] '
        for t in ("Owns Course B", "Owns Course C", "Owns Drip Course")
    )
    from shortcodes.context import Context

    def render() -> str:
        return str(env.render(page, Context(contact=harness.store.get_contact(gus))))

    try:
        for month in range(3):
            paid = {
                "event_id": f"aa-{month}",
                "contact": gus,
                "product": "all-access",
                "payment_id": f"aa-{month}",
            }
            post_hook(client, "payments/succeeded", paid)
            harness.drain()
            assert render().count(":open") == 3
            harness.advance(days=30)
    finally:
        client.application.extensions["shortcodes"].store.close()
    assert render().count(":open") == 3  # day 90: the last payment's 35 days still run
    harness.advance(days=6)  # no payment this month: the grant lapses
    assert render().count(":locked") == 3


def test_loyalty_points_wait_14_days_cross_200_once_change_stage_and_expire_after_a_year(
    harness: Harness,
) -> None:
    hal = harness.contact("hal@example.com", credits=100)
    assert harness.store.run_actionset("buy-course-b", hal, idempotency_key="b").ok
    harness.drain()
    summary = points(harness, hal)
    assert (summary.pending, summary.available) == (150, 0)
    harness.clock.advance(days=1)
    harness.store.apply_tag(hal, "Owns Course C")  # a day later: 100 more points, pending
    harness.drain()
    harness.advance(days=12, hours=23)
    assert points(harness, hal).available == 0
    assert not harness.runs("big-spender")
    harness.advance(hours=1)  # Course B's points are available; 150 is not above 200
    assert (points(harness, hal).available, points(harness, hal).stage) == (150, "Bronze")
    assert not harness.runs("big-spender")
    harness.advance(days=1)  # Course C's 100 more: 250 crosses 200
    summary = points(harness, hal)
    assert (summary.available, summary.lifetime, summary.stage) == (250, 250, "Silver")
    assert "Big Spender" in harness.tags(hal)
    assert len(harness.runs("big-spender")) == 1
    assert [r.data["trigger"]["to"] for r in harness.runs("stage-email")] == ["Silver"]

    # Spending takes the lot that expires first (Course B's); rising above 200 again fires nothing.
    spent = harness.store.run_in_transaction(
        lambda tx: loyalty.spend(tx, harness.config.loyalty, hal, 100, "spend-1")
    )
    assert spent
    harness.drain()
    assert points(harness, hal).available == 150
    harness.store.run_in_transaction(
        lambda tx: loyalty.earn(tx, harness.config.loyalty, hal, 300, "bonus", "bonus")
    )
    harness.advance(days=14)
    summary = points(harness, hal)
    assert (summary.available, summary.lifetime, summary.stage) == (450, 550, "Gold")
    assert len(harness.runs("big-spender")) == 1, "field_above fires once per contact"
    assert [r.data["trigger"]["to"] for r in harness.runs("stage-email")] == ["Silver", "Gold"]

    # A year after earning: Course B's lot (50 left) then Course C's (100) expire.
    harness.advance(days=365 - 29)
    assert points(harness, hal).available == 450 - 50
    harness.advance(days=1)
    assert points(harness, hal).available == 300
    assert points(harness, hal).lifetime == 550  # stages never fall back with expiry


def test_a_referral_awards_both_contacts_once(harness: Harness) -> None:
    ivy = harness.contact("ivy@example.com")
    jon = harness.contact("jon@example.com")

    def approve() -> bool:
        return harness.store.run_in_transaction(lambda tx: loyalty.approve_referral(tx, ivy, jon))

    assert approve() is True
    assert approve() is False
    harness.drain()
    harness.advance(days=14)
    assert points(harness, ivy).available == 50
    assert points(harness, jon).available == 50
    assert len(harness.runs("referral")) == 1


def test_login_trigger_runs_only_while_its_condition_holds(harness: Harness) -> None:
    from shortcodes.automations import record_login

    kim = harness.contact("kim@example.com")
    for _ in range(2):
        harness.store.run_in_transaction(lambda tx: record_login(tx, kim))
        harness.drain()
    assert "Regular" in harness.tags(kim)
    assert [r.status for r in harness.runs("welcome-back")] == ["done", "skipped"]


def test_a_refused_debit_fails_its_own_run_and_the_rest_of_the_batch_goes_through(
    harness: Harness,
) -> None:
    poor = harness.contact("poor@example.com", credits=5)
    rich = harness.contact("rich@example.com", credits=20)
    for who in (poor, rich):
        harness.event("webhook", who, {"name": "charge", "event_id": f"charge-{who}"})
    harness.drain()
    assert (harness.store.balance(poor), harness.store.balance(rich)) == (5, 10)
    assert "Regular" not in harness.tags(poor)
    assert "Regular" in harness.tags(rich)
    runs = {r.contact_id: r for r in harness.runs("charge")}
    assert runs[poor].status == "failed"
    assert "You need 10 credits; you have 5" in runs[poor].message
    assert runs[rich].status == "done"
    harness.advance(days=1)
    assert harness.store.balance(poor) == 5, "a failed step is not retried into a double charge"


def points(harness: Harness, contact_id: int) -> loyalty.PointsSummary:
    def read(tx: Tx) -> loyalty.PointsSummary:
        return loyalty.summary(tx.conn, harness.config.loyalty, contact_id, tx.now)

    return harness.store.run_in_transaction(read)
