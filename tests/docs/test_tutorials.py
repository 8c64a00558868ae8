"""Every tutorial's configuration, loaded into a fresh site and run, on SQLite and PostgreSQL.

The site of a tutorial is exactly the files its titled code blocks write (see
``tests.support.tutorials``); each scenario drives it as a member and a provider would: the
host's pages and buttons through the Flask test client, payments through signed webhooks, time
through the store's clock, and the automation worker's real passes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from shortcodes.automations import Worker, loyalty
from shortcodes.cli import main as cli
from shortcodes.host import create_app
from shortcodes.membership.signing import signed_headers
from shortcodes.membership.vocabulary import duration
from shortcodes.store.identity import Accounts
from tests.support import stripe_events as se
from tests.support.clock import MovableClock
from tests.support.host import app_config, store
from tests.support.live_server import free_port
from tests.support.paths import ROOT
from tests.support.sync import Site, serve
from tests.support.tutorials import (
    site_folders,
    snippets,
    tutorial_app,
    tutorial_names,
    write_site,
)
from tests.support.visitors import Visitor

PASSWORD = "tutorial-password-1"
#: A site selling through Stripe: an API key (no request is made here) and the endpoint secret.
STRIPE = {"STRIPE_SECRET_KEY": "sk_test_tutorials", "STRIPE_WEBHOOK_SECRET": se.WEBHOOK_SECRET}
#: Every tutorial with a scenario below; a new tutorial without one fails the suite.
SCENARIOS = {
    "all-access",
    "credit-catalog",
    "drip-that-pauses",
    "lending-library",
    "loyalty-club",
    "monthly-credits",
    "refund-revoke",
    "sites-in-sync",
    "time-limited-access",
}


def test_every_tutorial_has_a_scenario_that_runs_it() -> None:
    assert set(tutorial_names()) == SCENARIOS


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_each_tutorial_site_passes_check(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for site in site_folders(write_site(name, tmp_path / name)):
        assert cli(["check", "--site", str(site)]) == 0, capsys.readouterr()
        assert "error" not in capsys.readouterr().err


def test_titled_blocks_with_one_path_are_joined_in_page_order() -> None:
    text = '```toml title="site.toml"\na = 1\n```\n\n```sh\nnot a file\n```\n\n```toml title="site.toml"\nb = 2\n```\n'
    assert snippets(text) == {"site.toml": "a = 1\nb = 2\n"}


# -- helpers -----------------------------------------------------------------------------------


def member(app: Flask, email: str, name: str = "") -> tuple[int, Visitor]:
    """A new contact, logged in through the login form."""
    contact = store(app).add_contact(email, name, password=PASSWORD)
    who = Visitor(app.test_client())
    assert who.login(email, PASSWORD).status_code == 303
    return contact, who


def tags(app: Flask, contact: int) -> set[str]:
    return {t.name for t in store(app).get_contact(contact).tags}


def worker(app: Flask, tmp_path: Path) -> Worker:
    state = app.extensions["shortcodes"]
    return Worker(state.store, state.automations, tmp_path / "instance")


def post_hook(app: Flask, name: str, secret: str, payload: dict[str, object]) -> dict[str, object]:
    body = json.dumps(payload).encode()
    headers = {**signed_headers(secret, body), "Content-Type": "application/json"}
    answer = app.test_client().post(f"/hooks/{name}", data=body, headers=headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    result: dict[str, object] = answer.get_json()
    return result


def stripe_send(app: Flask, data: dict[str, object]) -> dict[str, object]:
    body, headers = se.signed(data)
    answer = app.test_client().post("/hooks/stripe", data=body, headers=headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    result: dict[str, object] = answer.get_json()
    return result


def app_for(name: str, tmp_path: Path, db_url: str, **extra: object) -> Iterator[Flask]:
    yield from tutorial_app(name, tmp_path, db_url, **extra)


# -- the scenarios -----------------------------------------------------------------------------


@pytest.fixture
def catalog(tmp_path: Path, db_url: str) -> Iterator[Flask]:
    yield from app_for("credit-catalog", tmp_path, db_url, **STRIPE)


def test_credit_catalog_unlocks_what_the_balance_covers_and_a_bundle_adds_100(
    catalog: Flask,
) -> None:
    ann, visitor = member(catalog, "ann@example.com", "Ann")
    store(catalog).credit(ann, 40, reason="welcome gift")
    page = visitor.get("/catalog")
    assert "Unlock Glazing basics for 30 credits" in page
    assert "You have 40 credits; Throwing costs 50." in page
    answer = visitor.click("buy-glazing")
    assert (answer.status_code, answer.location) == (303, "/courses/glazing")
    assert store(catalog).balance(ann) == 10
    assert "Owns Glazing" in tags(catalog, ann)
    assert "Lesson one: mixing a glaze." in visitor.get("/courses/glazing")
    assert 'href="/courses/glazing">Open Glazing basics' in visitor.get("/catalog")
    visitor.get("/courses/throwing", status=403)  # a course she does not own
    # Her bundle is paid through Stripe: 100 credits once, however often Stripe sends it.
    session = se.checkout_session(ann, "credits-100", amount=1000)
    paid = se.event("checkout.session.completed", session)
    stripe_send(catalog, paid)
    assert stripe_send(catalog, paid)["duplicate"] is True
    assert store(catalog).balance(ann) == 110
    assert "Unlock Throwing for 50 credits" in visitor.get("/catalog")


@pytest.fixture
def monthly(tmp_path: Path, db_url: str) -> Iterator[Flask]:
    yield from app_for("monthly-credits", tmp_path, db_url, **STRIPE)


def test_monthly_credits_land_once_per_paid_month_with_an_email_and_a_half_refund_takes_25(
    monthly: Flask, tmp_path: Path
) -> None:
    from shortcodes.payments import records

    ann, visitor = member(monthly, "ann@example.com", "Ann")
    st = store(monthly)
    st.run_in_transaction(lambda tx: records.record_customer(tx, ann, "cus_ann"))
    assert "Join for $9/month" in visitor.get("/join")
    first = se.invoice("price_monthly_club", amount=900, charge="ch_month_1")
    stripe_send(monthly, se.event("invoice.paid", first))
    stripe_send(monthly, se.event("invoice.paid", first))  # Stripe sends it again
    worker(monthly, tmp_path).run(until_idle=True)
    assert (st.balance(ann), "All Access" in tags(monthly, ann)) == (50, True)
    assert "You are a member. You have 50 credits." in visitor.get("/join")
    stripe_send(monthly, se.event("invoice.paid", se.invoice("price_monthly_club", amount=900)))
    worker(monthly, tmp_path).run(until_idle=True)
    assert st.balance(ann) == 100
    mails = sorted((tmp_path / "instance" / "outbox").glob("*.eml"))
    texts = [m.read_text(encoding="utf-8") for m in mails]
    assert len(texts) == 2
    assert all("Subject: Your 50 monthly credits are here" in t for t in texts)
    assert "Your balance is now 50 credits." in texts[0]
    assert "Your balance is now 100 credits." in texts[1]
    stripe_send(
        monthly, se.event("charge.refunded", se.charge("ch_month_1", refunded=450, amount=900))
    )
    assert st.balance(ann) == 75


@pytest.fixture
def library(tmp_path: Path, db_url: str) -> Iterator[Flask]:
    yield from app_for("lending-library", tmp_path, db_url)


def test_lending_library_check_in_is_refused_during_the_lock_and_returns_the_credits_once(
    library: Flask,
) -> None:
    clock = MovableClock()
    store(library).clock = clock
    ann, visitor = member(library, "ann@example.com", "Ann")
    store(library).credit(ann, 100, reason="gift")
    visitor.get("/library")
    visitor.click("borrow-field-guide")
    assert store(library).balance(ann) == 70
    page = visitor.get("/library")
    assert "The lock is on" in page
    assert tags(library, ann) == {"Borrowed Field Guide", "Lock Field Guide"}
    # A check-in button kept open in another tab from an earlier loan, clicked during the lock.
    stale = store(library).run_actionset("return-field-guide", ann)
    assert (stale.outcome, stale.message) == (
        "refused",
        "You can check in The Field Guide once its 3-day lock has passed.",
    )
    assert store(library).balance(ann) == 70
    clock.advance(days=3, seconds=1)
    page = visitor.get("/library")
    assert "Check in and get 30 credits back" in page
    visitor.click("return-field-guide")
    assert store(library).balance(ann) == 100
    again = store(library).run_actionset("return-field-guide", ann)
    assert again.outcome == "refused"
    assert store(library).balance(ann) == 100


SECRET = "tutorial-webhook-secret"


@pytest.fixture
def refunds(tmp_path: Path, db_url: str) -> Iterator[Flask]:
    yield from app_for("refund-revoke", tmp_path, db_url)


def test_refund_revoke_removes_access_on_refund_and_marks_a_failed_payment(
    refunds: Flask, tmp_path: Path
) -> None:
    st = store(refunds)
    ann = st.add_contact("ann@example.com", "Ann")
    bo = st.add_contact("bo@example.com", "Bo")
    paid = {
        "event_id": "e-1",
        "contact": "ann@example.com",
        "product": "pottery-101",
        "payment_id": "p-1",
    }
    assert post_hook(refunds, "payments/succeeded", SECRET, paid)["duplicate"] is False
    assert post_hook(refunds, "payments/succeeded", SECRET, paid)["duplicate"] is True
    assert tags(refunds, ann) == {"Owns Pottery 101"}
    refund = {
        "event_id": "e-2",
        "contact": "ann@example.com",
        "product": "pottery-101",
        "payment_id": "p-1",
    }
    post_hook(refunds, "payments/refunded", SECRET, refund)
    worker(refunds, tmp_path).run(until_idle=True)
    assert tags(refunds, ann) == set()
    post_hook(
        refunds,
        "payments/succeeded",
        SECRET,
        {**paid, "event_id": "e-3", "contact": bo, "payment_id": "p-2"},
    )
    post_hook(
        refunds,
        "payments/failed",
        SECRET,
        {"event_id": "e-4", "contact": bo, "product": "pottery-101"},
    )
    worker(refunds, tmp_path).run(until_idle=True)
    assert tags(refunds, bo) == {"Payment Problem"}


@pytest.fixture
def timed(tmp_path: Path, db_url: str) -> Iterator[Flask]:
    yield from app_for("time-limited-access", tmp_path, db_url)


def test_time_limited_access_ends_after_four_months_by_button_and_by_payment(
    timed: Flask, tmp_path: Path
) -> None:
    clock = MovableClock()
    st = store(timed)
    st.clock = clock
    ann, visitor = member(timed, "ann@example.com", "Ann")
    bo = st.add_contact("bo@example.com", "Bo")
    st.credit(ann, 100, reason="gift")
    assert st.run_actionset("glaze-lab-4-months", ann).outcome == "done"
    assert st.run_actionset("glaze-lab-4-months", ann).outcome == "owned"  # no second debit
    assert st.balance(ann) == 60
    assert "Welcome to the lab." in visitor.get("/glaze-lab")
    paid = {"event_id": "g-1", "contact": bo, "product": "glaze-lab", "payment_id": "p-1"}
    post_hook(timed, "payments/succeeded", SECRET, paid)
    worker(timed, tmp_path).run(until_idle=True)
    assert tags(timed, bo) == {"Glaze Lab Buyer", "Glaze Lab Access"}
    ends = duration("4mo").after(clock())  # calendar months: the same day, four months on
    clock.advance(seconds=(ends - clock()).total_seconds() - 60)
    worker(timed, tmp_path).run(until_idle=True)
    assert "Glaze Lab Access" in tags(timed, ann)
    assert "Glaze Lab Access" in tags(timed, bo)
    clock.advance(minutes=2)
    worker(timed, tmp_path).run(until_idle=True)
    # Four months on, the 14-day session has ended as well: Ann logs in again.
    visitor.get("/glaze-lab", status=302)
    assert visitor.login("ann@example.com", PASSWORD).status_code == 303
    visitor.get("/glaze-lab", status=403)
    assert "Glaze Lab Access" not in tags(timed, ann)
    assert tags(timed, bo) == {"Glaze Lab Buyer"}


@pytest.fixture
def all_access(tmp_path: Path, db_url: str) -> Iterator[Flask]:
    yield from app_for("all-access", tmp_path, db_url)


def test_all_access_opens_every_course_without_credits_and_purchases_outlive_it(
    all_access: Flask,
) -> None:
    st = store(all_access)
    ann, visitor = member(all_access, "ann@example.com", "Ann")
    st.apply_tag(ann, "All Access")
    assert 'href="/courses/raku">Open Raku firing' in visitor.get("/catalog")
    assert "Lesson one: the kiln." in visitor.get("/courses/raku")
    st.remove_tag(ann, "All Access")
    assert "You have 0 credits; Raku firing costs 60." in visitor.get("/catalog")
    visitor.get("/courses/raku", status=403)
    st.credit(ann, 60, reason="gift")
    visitor.get("/catalog")
    visitor.click("buy-raku")
    st.apply_tag(ann, "All Access")
    st.remove_tag(ann, "All Access")
    assert "Lesson one: the kiln." in visitor.get("/courses/raku")
    assert st.balance(ann) == 0


@pytest.fixture
def drip(tmp_path: Path, db_url: str) -> Iterator[Flask]:
    yield from app_for("drip-that-pauses", tmp_path, db_url)


def test_drip_that_pauses_counts_only_paid_weeks_and_never_resends(
    drip: Flask, tmp_path: Path
) -> None:
    from shortcodes.automations import preview

    clock = MovableClock()
    st = store(drip)
    st.clock = clock
    ann, visitor = member(drip, "ann@example.com", "Ann")

    def run(**delta: float) -> None:
        clock.advance(**delta)
        worker(drip, tmp_path).run(until_idle=True, sleep=lambda _s: None)

    def paid(n: int) -> None:
        post_hook(drip, "payments/succeeded", SECRET, {"event_id": f"paid-{n}", "contact": ann,
                  "product": "wheel-monthly", "payment_id": f"p-{n}"})  # fmt: skip

    paid(1)
    run()
    assert "Week one: centering the clay." in visitor.get("/week-1")
    visitor.get("/week-2", status=403)
    run(days=7)
    assert "Week two" in visitor.get("/week-2")
    post_hook(drip, "payments/failed", SECRET,
              {"event_id": "failed-1", "contact": ann, "product": "wheel-monthly"})  # fmt: skip
    run()
    assert "Wheel Member" not in tags(drip, ann)
    run(days=20)  # 28 January: twenty unpaid days count for nothing
    assert "Wheel Week 3" not in tags(drip, ann)
    paid(2)
    run(days=7, minutes=-1)
    assert visitor.login("ann@example.com", PASSWORD).status_code == 303  # a 14-day session
    visitor.get("/week-3", status=403)
    run(minutes=1)  # 4 February: fourteen paid days
    assert "Week three" in visitor.get("/week-3")
    state = drip.extensions["shortcodes"]
    lines = preview(st, state.automations, "wheel-lessons", ann).lines()
    assert lines[3:6] == [
        "  2026-01-08 12:00  active     7d  unlocked week-2 (starts lesson-email)",
        "  2026-01-08 12:00  active     7d  paused: access lapsed",
        "  2026-01-28 12:00  active     7d  resumed: access is back",
    ]
    assert lines[-3:] == [
        "  2026-02-14 18:00  active  24d6h  unlocked studio-night (starts lesson-email)",
        "                                   tag applied: Open Studio Night",
        "  all 4 items released",
    ]
    run(days=10, hours=6)  # 14 February, 18:00
    assert "Open Studio Night" in tags(drip, ann)
    mails = sorted((tmp_path / "instance" / "outbox").glob("*.eml"))
    subjects = [
        line for m in mails for line in m.read_text(encoding="utf-8").splitlines()
        if line.startswith("Subject:")
    ]  # fmt: skip
    assert subjects == [
        "Subject: Now open: week-1",
        "Subject: Now open: week-2",
        "Subject: Now open: week-3",
        "Subject: Now open: studio-night",
    ]


# -- several sites in sync: two real servers on loopback ---------------------------------------

#: What the tutorial's two sites call each other (its "run both" commands), and their secrets.
SYNC_URLS = {"academy": "http://127.0.0.1:8000", "shop": "http://127.0.0.1:8001"}
SYNC_SECRETS = {
    "academy": "academy-webhook-secret-change-me",
    "shop": "shop-webhook-secret-change-me",
}


@pytest.fixture
def synced(tmp_path: Path) -> Iterator[dict[str, Site]]:
    """The tutorial's academy and shop, each served by its own process on a free port (the peer
    URLs the tutorial gives are rewritten to those ports), each on its own SQLite database."""
    folder = write_site("sites-in-sync", tmp_path / "sites")
    ports = {name: free_port() for name in SYNC_URLS}
    for toml in folder.rglob("site.toml"):
        text = toml.read_text(encoding="utf-8")
        for name, url in SYNC_URLS.items():
            text = text.replace(url, f"http://127.0.0.1:{ports[name]}")
        toml.write_text(text, encoding="utf-8")
    running: dict[str, Site] = {}
    try:
        for name in SYNC_URLS:
            running[name] = serve(name, folder / name, SYNC_SECRETS[name], tmp_path, ports[name])
        for site in running.values():  # as each server's worker does when it starts
            site.work()
        yield running
    finally:
        for site in running.values():
            site.server.__exit__(None, None, None)


def test_the_sync_tutorial_names_the_urls_and_secrets_its_scenario_uses() -> None:
    files = snippets((ROOT / "docs/tutorials/sites-in-sync.md").read_text(encoding="utf-8"))
    shop, academy = files["shop/site.toml"], files["academy/site.toml"]
    assert f'url = "{SYNC_URLS["academy"]}"' in shop
    assert f'url = "{SYNC_URLS["shop"]}"' in academy
    assert f'secret = "{SYNC_SECRETS["shop"]}"' in shop
    assert f'secret = "{SYNC_SECRETS["academy"]}"' in academy


@pytest.mark.slow
def test_a_course_bought_on_the_shop_opens_on_the_academy_and_a_city_comes_back(
    synced: dict[str, Site], tmp_path: Path
) -> None:
    shop, academy = synced["shop"], synced["academy"]
    with shop.store() as st:
        ann = st.add_contact("ann@example.com", "Ann")
    paid = {"event_id": "pay-1", "contact": ann, "product": "wheel-basics", "payment_id": "p-1"}
    shop.post("payments/succeeded", paid)
    shop.work()  # the tag and the new balance go to the academy
    with academy.store() as st:
        there = st.get_contact("ann@example.com")  # created by the first sync
        assert {t.name for t in there.tags} == {"Owns Wheel Basics"}
        assert st.balance(there.id) == 20
        Accounts(st).set_password(there.id, PASSWORD)  # what her "forgot password" link does
    config = app_config(
        tmp_path / "academy-app",
        SITE_DIR=academy.folder,
        THEMES_DIR=ROOT / "themes",
        DATABASE_URL=academy.db,
        SEED=False,
    )
    app = create_app(config)
    visitor = Visitor(app.test_client())
    assert visitor.login("ann@example.com", PASSWORD).status_code == 303
    page = visitor.get("/wheel-basics")
    assert "Lesson one: centering. You have 20 credits for the glaze studio." in page
    academy.post(
        "contacts/update",
        {"event_id": "city-1", "contact": "ann@example.com", "fields": {"City": "Lyon"}},
    )
    academy.work()  # the city goes to the shop; nothing of the shop's goes back there
    shop.work()
    with shop.store() as st:
        assert st.get_contact(ann).fields["City"] == "Lyon"
        assert st.verify().ok
    assert [(s, u.rsplit("/hooks/", 1)[1]) for s, u, _ in shop.sync_webhooks()] == [
        ("sent", "credits"),  # the payment credits first, then applies the tag
        ("sent", "tags/apply"),
    ]
    assert [(s, u.rsplit("/hooks/", 1)[1]) for s, u, _ in academy.sync_webhooks()] == [
        ("sent", "contacts/update")
    ]
    with academy.store() as st:
        assert st.verify().ok


@pytest.fixture
def club(tmp_path: Path, db_url: str) -> Iterator[Flask]:
    yield from app_for("loyalty-club", tmp_path, db_url)


def test_loyalty_club_points_wait_14_days_referrals_pay_both_gold_emails_and_awards_expire(
    club: Flask, tmp_path: Path
) -> None:
    clock = MovableClock()
    st = store(club)
    st.clock = clock
    ann, _ = member(club, "ann@example.com", "Ann")
    bo = st.add_contact("bo@example.com", "Bo")

    def run() -> None:
        worker(club, tmp_path).run(until_idle=True)

    def later(days: int) -> None:
        clock.advance(days=days)
        run()

    def rewards() -> str:
        # A fresh login each time: the clock moves past the 14-day session.
        who = Visitor(club.test_client())
        assert who.login("ann@example.com", PASSWORD).status_code == 303
        return " ".join(who.get("/rewards").split())

    order = {"event_id": "order-1001", "contact": "ann@example.com", "points": 150}
    first = post_hook(club, "points/award", SECRET, {**order, "reason": "order 1001"})
    assert first["result"] == {  # type: ignore[index]
        "contact": ann, "awarded": 150, "available": 0, "pending": 150,
        "lifetime": 0, "stage": "Bronze",
    }  # fmt: skip
    again = post_hook(club, "points/award", SECRET, {**order, "reason": "order 1001"})
    assert again["duplicate"] is True
    run()
    assert "<strong>0 points</strong> to spend · 150 on their way" in rewards()
    later(14)
    assert "<strong>150 points</strong> to spend · 0 on their way" in rewards()
    assert "stage <strong>Bronze</strong> (150 lifetime points)" in rewards()

    referral = {"referrer": "ann@example.com", "referred": "bo@example.com"}
    post_hook(club, "referrals/made", SECRET, {"event_id": "ref-1", **referral})
    run()
    assert "<strong>170 points</strong> to spend" in rewards()
    approval = {"event_id": "ref-2", "referred": "bo@example.com"}
    assert post_hook(club, "referrals/approved", SECRET, approval)["result"] == {  # type: ignore[index]
        "contact": ann, "referred": bo, "approved": True,
    }  # fmt: skip
    run()
    assert "170 points</strong> to spend · 100 on their way" in rewards()
    # Bo orders, then returns the order within the 14 days: its points never arrive.
    bo_order = {"event_id": "order-2001", "contact": bo, "points": 80, "reason": "order 2001"}
    post_hook(club, "points/award", SECRET, bo_order)
    bo_return = {**bo_order, "event_id": "ret-2001", "reason": "order 2001 returned"}
    back = post_hook(club, "points/remove", SECRET, bo_return)["result"]
    assert (back["from_pending"], back["pending"], back["available"]) == (80, 100, 0)  # type: ignore[index]
    later(14)
    assert "stage <strong>Silver</strong> (270 lifetime points)" in rewards()
    second = {"event_id": "order-1002", "contact": ann, "points": 150, "reason": "order 1002"}
    post_hook(club, "points/award", SECRET, second)
    later(14)
    assert "stage <strong>Gold</strong> (420 lifetime points)" in rewards()
    assert "Gold Member" in tags(club, ann)
    assert "Gold Member" not in tags(club, bo)

    returned = {"event_id": "ret-1", "contact": ann, "points": 150, "reason": "order 1001 returned"}
    taken = post_hook(club, "points/remove", SECRET, returned)["result"]
    assert (taken["removed"], taken["available"]) == (150, 270)  # type: ignore[index]
    assert "stage <strong>Gold</strong> (420 lifetime points)" in rewards()
    assert st.verify().ok

    # Day 350 after the first order: the referral awards (day 14) expire within 30 days.
    later(350 - 42)
    assert "120 of them expire within 30 days" in rewards()
    mails = [
        m.read_text(encoding="utf-8")
        for m in sorted((tmp_path / "instance" / "outbox").glob("*.eml"))
    ]
    assert sum("Subject: Welcome to Gold" in m for m in mails) == 1
    assert "You reached Gold: thank you for being with us." in "".join(mails)
    expiring = sorted(
        m.split("Subject: ", 1)[1].split("\n", 1)[0] for m in mails if "expire soon" in m
    )
    assert expiring == ["100 points expire soon"] * 2 + ["20 points expire soon"]  # Ann, Bo
    later(30)  # day 380: both referral awards expired; order 1002's 150 remain
    assert "<strong>150 points</strong> to spend" in rewards()
    bo_points = st.run_in_transaction(
        lambda tx: loyalty.summary(
            tx.conn, club.extensions["shortcodes"].automations.loyalty, bo, tx.now
        )
    )
    assert (bo_points.available, bo_points.lifetime) == (0, 100)  # the returned 80 never came
