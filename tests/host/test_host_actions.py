"""Host actions: a click runs its actionset once; bad, stale, reused or foreign tokens write nothing."""

from __future__ import annotations

import re
import time

import pytest
from bs4 import BeautifulSoup
from flask import Flask

from shortcodes.membership.signing import ActionSigner
from tests.support.host import SECRET, counts, logged_in, store

COURSE_B = {"cost": "50", "tag": "Owns Course B"}


def test_buying_debits_applies_the_tag_flashes_and_shows_the_owned_branch(app: Flask) -> None:
    rich = logged_in(app, "rich@example.com")
    rich.get("/catalog")
    response = rich.click("buy-course-b")
    assert response.status_code == 303
    assert response.location == "/courses/b"  # the creditbutton sends buyers to the product
    html = rich.get("/courses/b")
    assert rich.flashes() == ["Unlocked Course B — 210 credits left"]
    assert "You own this for good" in html
    soup = BeautifulSoup(rich.get("/catalog"), "html.parser")
    assert soup.select_one(".creditbutton-owned a[href='/courses/b']") is not None
    assert store(app).balance("rich@example.com") == 210


def test_a_reused_token_runs_once_and_reports_the_first_outcome(app: Flask) -> None:
    rich = logged_in(app, "rich@example.com")
    rich.get("/catalog")
    fields = rich.button("buy-course-b")
    rich.client.post("/actions/buy-course-b", data=fields)
    rich.get("/")  # shows the first flash
    before = counts(app)
    response = rich.client.post("/actions/buy-course-b", data=fields)
    assert response.status_code == 303
    rich.get("/")
    assert rich.flashes() == ["Already done: Unlocked Course B — 210 credits left"]
    assert counts(app) == before
    assert store(app).balance("rich@example.com") == 210


def test_post_without_csrf_token_is_400_and_writes_nothing(app: Flask) -> None:
    rich = logged_in(app, "rich@example.com")
    rich.get("/catalog")
    fields = rich.button("buy-course-b")
    del fields["csrf_token"]
    before = counts(app)
    assert rich.client.post("/actions/buy-course-b", data=fields).status_code == 400
    assert counts(app) == before


@pytest.mark.parametrize("where", ["payload", "signature", "truncated", "empty"])
def test_a_tampered_token_is_400_and_writes_nothing(app: Flask, where: str) -> None:
    rich = logged_in(app, "rich@example.com")
    rich.get("/catalog")
    token = rich.button("buy-course-b")["token"]
    payload, stamp, signature = token.split(".")
    forged = {
        "payload": payload[:-3] + ("A" if payload[-3] != "A" else "B") + payload[-2:],
        "signature": f"{payload}.{stamp}.{signature[::-1]}",
        "truncated": token[:-5],
        "empty": "",
    }[where]
    if where == "payload":
        forged = f"{forged}.{stamp}.{signature}"
    before = counts(app)
    response = rich.click("buy-course-b", token=forged)
    assert response.status_code == 400
    assert counts(app) == before


def test_a_token_with_a_cheaper_price_signed_by_someone_else_is_refused(app: Flask) -> None:
    rich = logged_in(app, "rich@example.com")
    rich.get("/catalog")
    contact_id = store(app).contact_id("rich@example.com")
    forged = ActionSigner("not-the-site-secret").sign_action(
        contact_id, "buy-course-b", {"cost": "0", "tag": "Owns Course B"}
    )
    before = counts(app)
    assert rich.click("buy-course-b", token=forged).status_code == 400
    assert counts(app) == before


def test_an_expired_token_writes_nothing_and_asks_to_try_again(app: Flask) -> None:
    rich = logged_in(app, "rich@example.com")
    rich.get("/catalog")
    contact_id = store(app).contact_id("rich@example.com")
    old = ActionSigner(SECRET, clock=lambda: time.time() - 2 * 3600)
    token = old.sign_action(contact_id, "buy-course-b", COURSE_B)
    before = counts(app)
    response = rich.click("buy-course-b", token=token, redirect_url="/catalog")
    assert response.status_code == 303
    rich.get(response.location)
    assert "expired" in rich.flashes()[0]
    assert counts(app) == before


def test_another_contacts_token_is_403_and_writes_nothing(app: Flask) -> None:
    rich = logged_in(app, "rich@example.com")
    rich.get("/catalog")
    stolen = rich.button("buy-course-b")
    poor = logged_in(app, "poor@example.com")
    poor.get("/catalog")
    before = counts(app)
    response = poor.post("/actions/buy-course-b", stolen)
    assert response.status_code == 403
    assert counts(app) == before
    assert store(app).balance("rich@example.com") == 260


def test_a_token_for_another_action_is_403_and_writes_nothing(app: Flask) -> None:
    rich = logged_in(app, "rich@example.com")
    rich.get("/catalog")
    fields = rich.button("buy-course-a")  # 20 credits
    before = counts(app)
    assert rich.client.post("/actions/buy-masterclass", data=fields).status_code == 403
    assert counts(app) == before


def test_anonymous_post_goes_to_login_and_writes_nothing(app: Flask) -> None:
    rich = logged_in(app, "rich@example.com")
    rich.get("/catalog")
    fields = rich.button("buy-course-b")
    rich.post("/logout")
    rich.get("/login")  # an anonymous page with a form, for an anonymous CSRF token
    before = counts(app)
    response = rich.post("/actions/buy-course-b", fields)
    assert response.status_code == 302
    assert response.location.startswith("/login")
    assert counts(app) == before


def test_not_enough_credits_flashes_the_shortfall_and_writes_nothing(app: Flask) -> None:
    rich = logged_in(app, "rich@example.com")
    rich.get("/catalog")
    workshop = rich.button("buy-workshop")  # 120 credits, shown while the balance was 260
    rich.click("buy-masterclass")  # 200 credits: 60 left
    rich.get("/masterclass")
    before = counts(app)
    response = rich.client.post("/actions/buy-workshop", data=workshop)
    assert response.status_code == 303
    rich.get("/catalog")
    assert rich.flashes() == ["You need 120 credits; you have 60"]
    assert counts(app) == before


def test_buying_what_the_contact_owns_debits_nothing(app: Flask) -> None:
    owner = logged_in(app, "owner@example.com")
    owner.get("/catalog")
    contact_id = store(app).contact_id("owner@example.com")
    token = ActionSigner(SECRET).sign_action(contact_id, "buy-course-b", COURSE_B)
    owner.post("/actions/buy-course-b", {"token": token})
    owner.get("/")
    assert owner.flashes() == ["You already own Course B"]
    assert store(app).balance("owner@example.com") == 40


def test_an_unknown_action_is_404(app: Flask) -> None:
    rich = logged_in(app, "rich@example.com")
    rich.get("/")
    contact_id = store(app).contact_id("rich@example.com")
    token = ActionSigner(SECRET).sign_action(contact_id, "no-such-action", {})
    response = rich.post("/actions/no-such-action", {"token": token})
    assert response.status_code == 404


def test_the_redirect_after_an_action_never_leaves_the_site(app: Flask) -> None:
    rich = logged_in(app, "rich@example.com")
    rich.get("/catalog")
    response = rich.click("buy-course-a", redirect_url="https://evil.example/")
    assert response.location == "/"


def test_lending_library_borrow_then_check_in_after_the_lock(app: Flask) -> None:
    rich = logged_in(app, "rich@example.com")
    rich.get("/library")
    rich.click("borrow-field-guide")
    html = rich.get("/library")
    assert "You borrowed The Field Guide — 230 credits left" in rich.flashes()
    assert "The lock is on" in html
    assert 'action="/actions/return-field-guide"' not in html
    store(app).remove_tag("rich@example.com", "Lock Field Guide")  # the 3 days have passed
    rich.get("/library")
    fields = rich.button("return-field-guide")
    rich.client.post("/actions/return-field-guide", data=fields)
    rich.get("/library")
    assert rich.flashes() == ["Checked in The Field Guide: 30 credits back, 260 in your account"]
    assert store(app).balance("rich@example.com") == 260
    before = counts(app)
    rich.client.post("/actions/return-field-guide", data=fields)  # the same button again
    assert counts(app) == before
    assert store(app).balance("rich@example.com") == 260


def test_a_stale_check_in_button_clicked_during_the_lock_is_refused(app: Flask) -> None:
    """Two tabs showed the check-in button; one checked in, then the item was borrowed again
    (a new lock): the other tab's button must not give the credits back while locked."""
    rich = logged_in(app, "rich@example.com")
    rich.get("/library")
    rich.click("borrow-field-guide")
    store(app).remove_tag("rich@example.com", "Lock Field Guide")  # the 3 days have passed
    rich.get("/library")
    stale = rich.button("return-field-guide")  # the other tab
    rich.get("/library")
    assert rich.click("return-field-guide").status_code == 303
    rich.get("/library")
    assert rich.click("borrow-field-guide").status_code == 303  # borrowed again: locked anew
    assert store(app).balance("rich@example.com") == 230
    before = counts(app)
    assert rich.client.post("/actions/return-field-guide", data=stale).status_code == 303
    html = rich.get("/library")
    assert rich.flashes()[-1] == (
        "The Field Guide is locked: you can check it in once its 3-day lock ends"
    )
    assert store(app).balance("rich@example.com") == 230
    assert {k: v for k, v in counts(app).items() if k != "actionset_runs"} == {
        k: v for k, v in before.items() if k != "actionset_runs"
    }
    assert re.search(r"you can check it in after \d\d \w+ 20\d\d at \d\d:\d\d UTC\.", html)
